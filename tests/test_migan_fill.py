"""The "miganfill-v1" deterministic fill rule, re-implemented from its specification, and its checks.

The rule (project MI-GAN notes, ``migan_fill.py`` docstring) decides every tensor of the MI-GAN inference
generator from its state-dict key and shape alone, so that our network and the official one can be
filled identically without any weight file. Other MI-GAN tests import :func:`fill_module`,
:func:`load_fixture` and :func:`read_manifest` from here.

Rule, first matching key suffix wins; ``N(key)`` = one float32 standard-normal draw of the whole shape by a
fresh CPU ``torch.Generator`` seeded with ``zlib.crc32(key)``:
``.downsample.filter.weight`` -> outer([1,3,3,1])/64 per channel; ``.upsample.filter.weight`` ->
outer([1,3,3,1])/16; ``.filter_const`` -> 1 at (even row, even col) else 0; ``.noise_const`` -> N;
``.noise_strength`` -> 0.1 N; ``.bias`` -> 0.1 N; ``.weight`` (4-d) -> N scaled to unit L2 norm per output
filter (``N * rsqrt(sum(N^2 over dims 1..3) + 1e-8)``), then x 1/8 for ``.torgb.`` keys; anything else is
an error.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"
PARITY_256 = FIXTURES / "migan_parity_256.pt"
RULE = "miganfill-v1"


def manifest_path(resolution: int) -> Path:
    return FIXTURES / f"migan-param-manifest-{resolution}.tsv"


def read_manifest(resolution: int) -> list[tuple[str, tuple[int, ...], str, str, int]]:
    """Rows ``(key, shape, dtype, kind, numel)`` in file order (two ``#`` lines, then a header)."""
    rows = []
    lines = manifest_path(resolution).read_text().splitlines()
    body = [ln for ln in lines if ln and not ln.startswith("#")]
    assert body[0].split("\t")[:5] == ["key", "shape", "dtype", "kind", "numel"]
    for line in body[1:]:
        key, shape, dtype, kind, numel = line.split("\t")[:5]
        dims = tuple(int(d) for d in shape.strip("[]").split(",") if d.strip())
        rows.append((key, dims, dtype, kind, int(numel)))
    return rows


def _normal(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    gen = torch.Generator(device="cpu")
    gen.manual_seed(zlib.crc32(key.encode("utf-8")))
    return torch.randn(tuple(shape), generator=gen, dtype=torch.float32)


def _fir(shape: tuple[int, ...], divisor: float) -> torch.Tensor:
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    assert len(shape) == 4 and shape[1:] == (1, 4, 4), shape
    return (torch.outer(taps, taps) / divisor).expand(shape[0], 1, 4, 4).contiguous()


def fill_value(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    shape = tuple(int(d) for d in shape)
    if key.endswith(".downsample.filter.weight"):
        return _fir(shape, 64.0)
    if key.endswith(".upsample.filter.weight"):
        return _fir(shape, 16.0)
    if key.endswith(".filter_const"):
        rows = torch.arange(shape[2]) % 2 == 0
        cols = torch.arange(shape[3]) % 2 == 0
        return (rows[:, None] & cols[None, :]).to(torch.float32).reshape(shape)
    n = _normal(key, shape)
    if key.endswith(".noise_const"):
        return n
    if key.endswith(".noise_strength") or key.endswith(".bias"):
        return n * 0.1
    if key.endswith(".weight") and n.ndim == 4:
        w = n * (n.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).rsqrt()
        return w * 0.125 if ".torgb." in key else w
    raise KeyError(f"miganfill-v1 has no rule for {key}")


def fill_state_dict(template: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: fill_value(k, tuple(v.shape)) for k, v in template.items()}


def fill_module(module: torch.nn.Module) -> torch.nn.Module:
    """Overwrite every parameter and buffer in place (strict)."""
    module.load_state_dict(fill_state_dict(module.state_dict()), strict=True)
    return module


def load_fixture(path: Path = PARITY_256) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


# ------------------------------------------------------------------ checks of the rule itself


def test_fill_reproduces_the_fixture_checksums() -> None:
    """Our fill equals the one the fixture was made with: per-key float64 sum and abs-sum of every tensor.

    Bound: the checksums are float64 sums of the same float32 values; summing them in another order
    changes a sum of n terms of size <= m by at most n * m * 2^-52 (~1e-9 for the largest tensors here),
    so 1e-6 absolute + 1e-9 relative can only fail when values differ.
    """
    fx = load_fixture()
    assert fx["rule_version"] == RULE
    rows = read_manifest(256)
    sums = fx["fill_checksums"]
    assert [r[0] for r in rows] == list(sums)
    for key, shape, *_ in rows:
        t = fill_value(key, shape).double()
        s, a = sums[key]
        assert float(t.sum()) == pytest.approx(s, rel=1e-9, abs=1e-6), key
        assert float(t.abs().sum()) == pytest.approx(a, rel=1e-9, abs=1e-6), key


def test_fill_categories_follow_the_manifest() -> None:
    """The manifest names each key's fill branch; ours must pick the same one."""
    def branch(key: str, shape: tuple[int, ...]) -> str:
        for suffix, name in ((".downsample.filter.weight", "fixed_down_filter"),
                             (".upsample.filter.weight", "fixed_up_filter"),
                             (".filter_const", "fixed_filter_const"), (".noise_const", "randn_noise_const"),
                             (".noise_strength", "randn_x0.1_noise_strength"), (".bias", "randn_x0.1_bias")):
            if key.endswith(suffix):
                return name
        return "randn_unitnorm_torgb_x0.125" if ".torgb." in key else "randn_unitnorm"

    for res in (256, 512):
        lines = [ln.split("\t") for ln in manifest_path(res).read_text().splitlines()
                 if ln and not ln.startswith("#")][1:]
        for key, _shape, _dtype, _kind, _numel, fill in lines:
            assert branch(key, ()) == fill, key


def test_unknown_key_is_an_error() -> None:
    with pytest.raises(KeyError):
        fill_value("encoder.b256.fromrgb.something", (3,))
