"""The "lamafill-v1" deterministic fill rule, re-implemented from its specification, and its checks.

The rule (``lama_fill.py`` docstring in the project's LaMa notes) decides every tensor of the big-lama
generator from its canonical state-dict key K (the ``generator.`` prefix removed) and shape: a fresh CPU
``torch.Generator`` seeded with ``zlib.crc32(K)`` makes at most one float64 draw N (normal) or U
(uniform), first match wins:
``num_batches_tracked`` -> int64 zeros (no draw); ``running_mean`` -> 0.1 N; ``running_var`` -> 0.5 + U;
1-D ``weight`` -> 1 + 0.1 N; ``bias`` -> 0.1 N; 4-D ``weight`` -> N * gain / sqrt(shape[1]*shape[2]*shape[3])
with gain 0.4 inside the ResNet blocks (``model.<n>.conv{1,2}.ffc.``) and sqrt(2) elsewhere; then one cast
to float32. Other LaMa tests import :func:`fill_module`, :func:`load_fixture` and :func:`manifest` from here.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zlib
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"
PARITY_FIXTURE = FIXTURES / "lama_parity_256.pt"
MANIFEST = FIXTURES / "lama-param-manifest.tsv"
RULE = "lamafill-v1"
PREFIX = "generator."
_RESBLOCK = re.compile(r"model\.\d+\.conv[12]\.ffc\.")


def canonical(key: str) -> str:
    return key[len(PREFIX):] if key.startswith(PREFIX) else key


def fill_value(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    k = canonical(key)
    shape = tuple(int(s) for s in shape)
    leaf = k.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return torch.zeros(shape, dtype=torch.int64)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(zlib.crc32(k.encode("utf-8")) & 0xFFFFFFFF)

    def normal() -> torch.Tensor:
        return torch.randn(shape, generator=gen, dtype=torch.float64)

    if leaf == "running_mean":
        v = 0.1 * normal()
    elif leaf == "running_var":
        v = 0.5 + torch.rand(shape, generator=gen, dtype=torch.float64)
    elif leaf == "weight" and len(shape) == 1:
        v = 1.0 + 0.1 * normal()
    elif leaf == "bias":
        v = 0.1 * normal()
    elif leaf == "weight" and len(shape) == 4:
        gain = 0.4 if _RESBLOCK.match(k) else math.sqrt(2.0)
        v = normal() * (gain / math.sqrt(shape[1] * shape[2] * shape[3]))
    else:
        raise ValueError(f"{RULE} has no rule for {key!r} {shape}")
    return v.to(torch.float32)


@torch.no_grad()
def fill_module(module: torch.nn.Module) -> torch.nn.Module:
    """Fill every state-dict entry of ``module`` under lamafill-v1 (strict)."""
    module.load_state_dict({k: fill_value(k, tuple(t.shape)) for k, t in module.state_dict().items()}, strict=True)
    return module


def state_sha256(sd: dict[str, torch.Tensor]) -> str:
    """The rule's digest: for each canonical key in sorted order, its UTF-8 bytes, b"\\0", the raw bytes."""
    h = hashlib.sha256()
    for k, v in sorted((canonical(k), v) for k, v in sd.items()):
        h.update(k.encode("utf-8") + b"\0")
        t = v.detach().cpu().contiguous()
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def manifest() -> dict[str, tuple[tuple[int, ...], str, str]]:
    """``lama-param-manifest.tsv``: checkpoint key -> (shape, dtype, kind)."""
    out = {}
    lines = MANIFEST.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    ki, si, di, kd = header.index("key"), header.index("shape"), header.index("dtype"), header.index("kind")
    for line in lines[1:]:
        if line.strip() and not line.startswith("#"):
            cols = line.split("\t")
            out[cols[ki]] = (tuple(json.loads(cols[si])), cols[di], cols[kd])
    return out


def load_fixture() -> dict:
    return torch.load(PARITY_FIXTURE, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def filled_state() -> dict[str, torch.Tensor]:
    return {canonical(k): fill_value(k, shape) for k, (shape, _, _) in manifest().items()}


def test_manifest_is_big_lama() -> None:
    man = manifest()
    assert len(man) == 989
    assert all(k.startswith(PREFIX) for k in man)
    n_params = sum(math.prod(s) for s, _, kind in man.values() if kind == "param")
    assert n_params == 50_975_875  # lama-facts §2


@pytest.mark.slow
def test_fill_matches_fixture_digest(filled_state) -> None:
    fx = load_fixture()
    assert fx["rule_version"] == RULE
    sums = fx["weights_key_sums"]
    assert set(sums) == set(filled_state)
    bad = [k for k, v in filled_state.items() if not math.isclose(float(v.double().sum()), sums[k],
                                                                    rel_tol=1e-9, abs_tol=1e-9)]
    assert not bad, f"per-key sums differ for {bad[:5]}"
    assert state_sha256(filled_state) == fx["weights_sha256"]


def test_rule_is_per_key_and_refuses_unknown_leaves() -> None:
    a = fill_value("generator.model.5.conv1.ffc.convl2l.weight", (4, 4, 3, 3))
    b = fill_value("model.5.conv1.ffc.convl2l.weight", (4, 4, 3, 3))
    assert torch.equal(a, b)
    assert fill_value("model.1.bn_l.num_batches_tracked", ()).dtype == torch.int64
    with pytest.raises(ValueError):
        fill_value("model.1.something.alpha", (3,))
