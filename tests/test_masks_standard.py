"""The committed standard definitions in masks/ are reproduced by `masks build` (the issue's "done
when"), and resolve_mask_set builds, caches, re-checks and refuses as documented."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from inpaintbench.errors import InputError, UnknownNameError
from inpaintbench.masks import (
    DigestMismatchError,
    MaskSet,
    list_protocols,
    resolve_mask_set,
    standard_definitions,
)
from inpaintbench.masks import standard as S

# The committed definitions as the package sees them (package data; in a checkout this is also the
# folder a wheel is built from).
REPO_MASKS = Path(__file__).resolve().parents[1] / "masks"  # the committed definitions (shipped as package data)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("INPAINTBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("INPAINTBENCH_MASK_DEFINITIONS", raising=False)
    return tmp_path / "home"


@pytest.fixture
def small_defs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    """Definitions with n=8 (real digests, computed here) so resolve tests stay fast."""
    folder = tmp_path / "defs"
    for name in ("mat-small-256", "box-256"):
        S.write_definition(name, n=8, folder=folder)
    monkeypatch.setenv("INPAINTBENCH_MASK_DEFINITIONS", str(folder))
    return folder


def test_every_protocol_has_a_committed_definition() -> None:
    files = sorted(p.stem for p in REPO_MASKS.glob("*.json"))
    assert files == sorted(list_protocols())
    defs = standard_definitions()
    for name, d in defs.items():
        raw = json.loads(d.path.read_text())
        assert d.path.parent.resolve() == REPO_MASKS.resolve() and raw["protocol"] == name
        assert (d.n, d.seed, d.quick_check_n) == (1000, 0, 100)
        assert raw["file_polarity"] == "255=hole" and d.digest.startswith("sha256:")
        assert sum(raw["bins"].values()) == d.n
    assert sum(p.stat().st_size for p in REPO_MASKS.iterdir()) < 60_000  # definitions only, no PNGs


@pytest.mark.parametrize("name", sorted(list_protocols()))
def test_quick_check_digests_are_reproduced(name: str) -> None:
    d = standard_definitions()[name]
    assert MaskSet.generate(name, d.quick_check_n, d.seed).digest == d.quick_check_digest


def test_masks_build_reproduces_the_default_set_through_the_cli(home: Path) -> None:
    from inpaintbench.cli import main

    assert main(["masks", "build", "mat-large-256", "--workers", "2"]) == 0
    d = standard_definitions()["mat-large-256"]
    ms = MaskSet.load(S.cache_path("mat-large-256"))
    assert len(ms) == 1000 and ms.verify() == d.digest
    assert main(["masks", "verify", "mat-large-256"]) == 0
    assert main(["masks", "verify", str(ms.path)]) == 0


def test_box_512_full_digest_is_reproduced() -> None:
    d = standard_definitions()["box-512"]
    assert MaskSet.generate("box-512", d.n, d.seed).digest == d.digest


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(list_protocols()))
def test_all_full_digests_are_reproduced(name: str) -> None:
    d = standard_definitions()[name]
    assert MaskSet.generate(name, d.n, d.seed).digest == d.digest


def test_committed_stats_agree_with_the_masks() -> None:
    d = standard_definitions()["mat-small-256"]
    ms = MaskSet.generate("mat-small-256", d.quick_check_n, d.seed)
    # quick check masks are the first 100 of the set: their ratios lie within the committed range
    assert d.hole_ratio["min"] <= ms.hole_ratios.min() and ms.hole_ratios.max() <= d.hole_ratio["max"]


def test_resolve_builds_once_then_uses_the_cache(small_defs: Path, home: Path) -> None:
    ms = resolve_mask_set("mat-small-256")
    assert ms.path == S.cache_path("mat-small-256") and str(ms.path).startswith(str(home / "masks"))
    assert ms.digest == standard_definitions()["mat-small-256"].digest and len(ms) == 8
    stamp = (ms.path / "manifest.json").stat().st_mtime_ns
    again = resolve_mask_set("mat-small-256")
    assert again.digest == ms.digest and (again.path / "manifest.json").stat().st_mtime_ns == stamp
    # MaskSet.load opens folders only; names resolve in one place (resolve_mask_set), and load says so
    with pytest.raises(InputError, match="resolve_mask_set"):
        MaskSet.load("mat-small-256")


def test_resolve_rebuilds_a_damaged_cache(small_defs: Path, home: Path) -> None:
    ms = resolve_mask_set("box-256")
    (ms.path / "000002.png").write_bytes(b"junk")
    with pytest.warns(UserWarning, match="rebuilding"):
        fixed = resolve_mask_set("box-256")
    assert fixed.verify() == ms.digest


def test_resolve_refuses_a_digest_that_differs_from_the_definition(tmp_path: Path, home: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "bad_defs"
    S.write_definition("mat-small-256", n=8, folder=folder)
    raw = json.loads((folder / "mat-small-256.json").read_text())
    raw["digest"] = "sha256:" + "0" * 64
    (folder / "mat-small-256.json").write_text(json.dumps(raw))
    monkeypatch.setenv("INPAINTBENCH_MASK_DEFINITIONS", str(folder))
    with pytest.raises(DigestMismatchError, match="commits"):
        resolve_mask_set("mat-small-256")
    from inpaintbench.cli import main

    with pytest.warns(UserWarning, match="rebuilding"):  # the cached set is re-checked, rebuilt, refused
        assert main(["masks", "verify", "mat-small-256"]) == 1


def test_resolve_refuses_a_definition_of_another_protocol_version(tmp_path: Path, home: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "old_defs"
    S.write_definition("box-256", n=4, folder=folder)
    raw = json.loads((folder / "box-256.json").read_text())
    raw["version"] = 0
    (folder / "box-256.json").write_text(json.dumps(raw))
    monkeypatch.setenv("INPAINTBENCH_MASK_DEFINITIONS", str(folder))
    with pytest.raises(DigestMismatchError, match="version"):
        resolve_mask_set("box-256")


def test_resolve_variants_and_folders(small_defs: Path, home: Path, tmp_path: Path) -> None:
    variant = resolve_mask_set("mat-small-256", n=4, seed=9)
    assert variant.path == S.cache_path("mat-small-256", 4, 9) and len(variant) == 4
    assert variant.digest == MaskSet.generate("mat-small-256", 4, 9).digest
    folder = resolve_mask_set(str(variant.path))
    assert folder.digest == variant.digest
    assert resolve_mask_set(variant.path, n=2).digest == MaskSet.generate("mat-small-256", 2, 9).digest
    with pytest.raises(InputError, match="seed"):
        resolve_mask_set(variant.path, seed=1)
    with pytest.raises(UnknownNameError, match="mat-small-256"):
        resolve_mask_set("mat-giant-256")


def test_cache_root_follows_inpaintbench_home(home: Path) -> None:
    assert S.cache_root() == home / "masks"
    assert os.environ["INPAINTBENCH_HOME"] == str(home)
