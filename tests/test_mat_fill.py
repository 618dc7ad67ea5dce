"""The "matfill-v1" deterministic fill rule, re-implemented from its specification, and its checks.

The rule (project MAT notes, ``mat_fill.py`` docstring) decides every tensor of a MAT network from its
state-dict key and shape, so that our networks and the official ones can be filled identically without
any weight file. Other MAT tests import :func:`fill_module` and :func:`load_fixture` from here.

Rule, first match wins; ``N(key)`` = standard normal float32 drawn by a fresh CPU ``torch.Generator``
seeded with ``zlib.crc32(key)``:
``.resample_filter`` -> outer([1,3,3,1])/64; ``.attn_mask`` -> shifted-window mask (0/-100);
``.noise_const`` -> N; ``.noise_strength`` -> 0.1; ``mapping.w_avg`` -> N; ``mapping.fc<i>.weight`` ->
100 N; ``mapping.fc<i>.bias`` -> 10 N; ``.affine.weight`` -> N; ``.affine.bias`` -> 1 + 0.1 N;
``.weight`` -> N; ``.bias`` -> 0.1 N; anything else is an error.
"""

from __future__ import annotations

import math
import re
import zlib
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"
PARITY_FIXTURE = FIXTURES / "mat_parity_256.pt"
RULE = "matfill-v1"


def normal_for(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    gen = torch.Generator(device="cpu")
    gen.manual_seed(zlib.crc32(key.encode("utf-8")))
    return torch.randn(tuple(shape), generator=gen, dtype=torch.float32)


def fir_1331(shape: tuple[int, ...]) -> torch.Tensor:
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = torch.outer(taps, taps)
    f = f / f.sum()
    assert tuple(shape) == (4, 4)
    return f


def shifted_window_mask(shape: tuple[int, ...]) -> torch.Tensor:
    """[nW, ws^2, ws^2]: label each token of the square grid by its (row strip, col strip), where the
    strips are [0, n-ws), [n-ws, n-ws/2), [n-ws/2, n); -100 between tokens with different labels."""
    n_win, n_tok, _ = shape
    ws = math.isqrt(n_tok)
    per_side = math.isqrt(n_win)
    side = ws * per_side
    shift = ws // 2

    def strip(i: int) -> int:
        return 0 if i < side - ws else (1 if i < side - shift else 2)

    lab = torch.tensor([[strip(y) * 3 + strip(x) for x in range(side)] for y in range(side)])
    win = lab.reshape(per_side, ws, per_side, ws).permute(0, 2, 1, 3).reshape(n_win, n_tok)
    same = win[:, :, None] == win[:, None, :]
    return torch.where(same, torch.tensor(0.0), torch.tensor(-100.0))


def fill_value(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    if key.endswith(".resample_filter"):
        return fir_1331(shape)
    if key.endswith(".attn_mask"):
        return shifted_window_mask(shape)
    if key.endswith(".noise_const"):
        return normal_for(key, shape)
    if key.endswith(".noise_strength"):
        return torch.full(shape, 0.1)
    if key == "mapping.w_avg":
        return normal_for(key, shape)
    if re.fullmatch(r"mapping\.fc\d+\.weight", key):
        return normal_for(key, shape) * 100.0
    if re.fullmatch(r"mapping\.fc\d+\.bias", key):
        return normal_for(key, shape) * 10.0
    if key.endswith(".affine.weight"):
        return normal_for(key, shape)
    if key.endswith(".affine.bias"):
        return 1.0 + 0.1 * normal_for(key, shape)
    if key.endswith(".weight"):
        return normal_for(key, shape)
    if key.endswith(".bias"):
        return 0.1 * normal_for(key, shape)
    raise KeyError(f"{RULE}: no rule for {key!r}")


@torch.no_grad()
def fill_module(module: torch.nn.Module) -> dict[str, float]:
    """Fill every state-dict tensor of ``module`` in place; returns {key: float64 sum} like the fixture."""
    sums = {}
    for key, t in module.state_dict(keep_vars=True).items():
        v = fill_value(key, tuple(t.shape)).to(t.dtype)
        t.copy_(v)
        sums[key] = float(v.double().sum())
    return sums


_FIXTURE_CACHE: dict[str, object] = {}


def load_fixture() -> dict:
    if "d" not in _FIXTURE_CACHE:
        _FIXTURE_CACHE["d"] = torch.load(PARITY_FIXTURE, weights_only=True)
    return _FIXTURE_CACHE["d"]  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------


def test_fixture_is_the_expected_rule() -> None:
    d = load_fixture()
    assert d["rule_version"] == RULE
    assert d["resolution"] == 256 and d["generator_kwargs"]["img_resolution"] == 256


@pytest.mark.parametrize("net", ["G", "D"])
def test_fill_checksums_match_fixture_key_by_key(net: str) -> None:
    from inpaintbench.models.mat import Discriminator, Generator

    d = load_fixture()
    module = Generator(256) if net == "G" else Discriminator(256)
    sums = fill_module(module)
    ref = d[f"fill_checksums_{net}"]
    assert list(sums) == list(ref)  # same keys, same order as the official state dict
    # Bound from the arithmetic, not from the checksum (a sum of N(0,1) draws cancels to ~sqrt(n)
    # of its n terms). torch.randn's Box-Muller runs in float32 through CPU-specific kernels (SIMD vs
    # scalar: ATEN_CPU_CAPABILITY=default moved these sums by up to 8e-3 relative): each value
    # r*cos(t) differs by at most ~4 ulp of its radius r (log, sqrt, cos at <= 1 ulp, one product),
    # and sum(r) <= 2*sum|v| for normal draws (E r / E|v| = pi/2), so |dsum| <= 8*eps32*sum|v|; the
    # float64 summation adds n*eps64*sum|v|, negligible. Measured worst: 0.65*eps32*sum|v|. A wrong
    # rule (seed, scale, key) moves a sum by ~sqrt(n) or more, far above this bound.
    eps32, eps64 = torch.finfo(torch.float32).eps, torch.finfo(torch.float64).eps
    state = module.state_dict()
    bad = {}
    for k in ref:
        v = state[k].double()
        bound = (8 * eps32 + v.numel() * eps64) * float(v.abs().sum())
        if abs(sums[k] - ref[k]) > bound:
            bad[k] = (sums[k], ref[k])
    assert not bad, f"{len(bad)} tensors filled differently, e.g. {list(bad.items())[:3]}"


def test_shift_mask_rule_matches_our_buffers() -> None:
    """Our registered attn_mask buffers (official values) equal the rule's geometric definition."""
    from inpaintbench.models.mat import Generator

    G = Generator(256)
    masks = {k: v for k, v in G.state_dict().items() if k.endswith("attn_mask")}
    assert len(masks) == 4
    for k, v in masks.items():
        assert torch.equal(v, shifted_window_mask(tuple(v.shape))), k
