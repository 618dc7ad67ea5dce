"""MaskSet folders: manifest contents, hashes recomputed independently, round trips, tampering."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaintbench.errors import InputError
from inpaintbench.masks import (
    MaskSet,
    MaskSetIntegrityError,
    build_mask_set,
    generate_mask,
    get_protocol,
    hole_ratio_bin,
)

N = 12


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> MaskSet:
    return build_mask_set("mat-large-256", N, 3, tmp_path_factory.mktemp("sets") / "mat")


def _copy(ms: MaskSet, dst: Path) -> Path:
    import shutil

    shutil.copytree(ms.path, dst)
    return dst


def _independent_digest(manifest: dict) -> str:
    """The documented digest: sha256 over '<id> <H>x<W> <sha256 of uint8 1=hole bytes>\\n' lines."""
    lines = "".join(f"{m['id']} {m['size'][0]}x{m['size'][1]} {m['sha256']}\n" for m in manifest["masks"])
    return "sha256:" + hashlib.sha256(lines.encode()).hexdigest()


def test_manifest_states_everything(built: MaskSet) -> None:
    m = json.loads((built.path / "manifest.json").read_text())
    proto = get_protocol("mat-large-256")
    assert m["protocol"] == "mat-large-256" and m["version"] == proto.version
    assert m["parameters"] == proto.params and m["seed"] == 3 and m["count"] == N
    assert m["resolution"] == [256, 256] and m["file_polarity"] == "255=hole"
    assert [e["id"] for e in m["masks"]] == [f"{i:06d}" for i in range(N)]
    assert m["digest"] == _independent_digest(m) == built.digest
    assert sum(m["hole_ratio_summary"]["bins"].values()) == N
    assert set(m["created_with"]) >= {"numpy", "pillow", "opencv", "inpaintbench"}


def test_files_are_8bit_L_with_255_hole_and_hashes_match(built: MaskSet) -> None:
    m = built.manifest
    for i, entry in enumerate(m["masks"]):
        with Image.open(built.path / entry["file"]) as im:
            assert im.mode == "L"
            arr = np.asarray(im)
        assert set(np.unique(arr)) <= {0, 255}
        expected = generate_mask("mat-large-256", i, 3)
        assert np.array_equal(arr == 255, expected)
        assert entry["sha256"] == hashlib.sha256((arr == 255).astype(np.uint8).tobytes()).hexdigest()
        assert entry["hole_ratio"] == float(np.count_nonzero(expected)) / expected.size
        assert entry["size"] == [256, 256]


def test_load_round_trip(built: MaskSet) -> None:
    ms = MaskSet.load(built.path)
    assert len(ms) == N and ms.ids == built.ids and ms.digest == built.digest
    assert ms.protocol == "mat-large-256" and ms.seed == 3 and ms.resolution == (256, 256)
    assert ms.verify() == built.digest
    hole = ms.get(5)
    assert hole.dtype == bool and hole.shape == (256, 256)
    assert np.array_equal(ms.get("000005"), hole) and np.array_equal(ms.get(-1), ms.get(N - 1))
    assert ms.hole_ratio(5) == pytest.approx(hole.mean(), abs=0) and ms.hole_ratio_bin(5) == hole_ratio_bin(
        hole.mean())
    assert np.allclose(ms.hole_ratios, [ms.get(i).mean() for i in range(N)])
    assert MaskSet.load(built.path / "manifest.json").digest == built.digest
    with pytest.raises(IndexError):
        ms.get(N)
    with pytest.raises(InputError, match="no mask with id"):
        ms.get("999999")
    d = ms.describe()
    assert d["digest"] == built.digest and d["count"] == N and d["file_polarity"] == "255=hole"


def test_in_memory_sets_match_the_folder(built: MaskSet) -> None:
    mem = MaskSet.generate("mat-large-256", N, 3)
    assert mem.path is None and mem.digest == built.digest
    assert mem.manifest["masks"] == built.manifest["masks"]
    arrays = MaskSet.from_arrays([built.get(i) for i in range(N)])
    assert arrays.digest == built.digest  # the digest covers content, not labels


def test_save_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    holes = [rng.random((40, 30)) < 0.3 for _ in range(3)] + [rng.random((20, 20)) < 0.5]
    saved = MaskSet.from_arrays(holes, name="mine").save(tmp_path / "s")
    assert saved.resolution is None  # mixed sizes
    for i, h in enumerate(holes):
        assert np.array_equal(saved.get(i), h)
    saved.verify()


@pytest.mark.parametrize("damage", ["pixel", "delete", "ratio", "digest", "entry_sha", "polarity", "count",
                                    "garbage", "rgb"])
def test_tampering_is_detected(built: MaskSet, tmp_path: Path, damage: str) -> None:
    root = _copy(built, tmp_path / "copy")
    mpath = root / "manifest.json"
    m = json.loads(mpath.read_text())
    if damage == "pixel":
        arr = np.asarray(Image.open(root / "000004.png")).copy()
        arr[0, 0] = 255 - arr[0, 0]
        Image.fromarray(arr).save(root / "000004.png")
    elif damage == "delete":
        (root / "000007.png").unlink()
    elif damage == "ratio":
        m["masks"][2]["hole_ratio"] += 1e-6
    elif damage == "digest":
        m["digest"] = "sha256:" + "0" * 64
    elif damage == "entry_sha":  # entry and digest rewritten consistently: the file still disagrees
        m["masks"][1]["sha256"] = "f" * 64
        m["digest"] = _independent_digest(m)
    elif damage == "polarity":
        m["file_polarity"] = "0=hole"
    elif damage == "count":
        m["count"] = N + 1
    elif damage == "garbage":
        (root / "000003.png").write_bytes(b"not a png")
    elif damage == "rgb":
        arr = np.asarray(Image.open(root / "000003.png"))
        Image.fromarray(np.stack([arr] * 3, -1)).save(root / "000003.png")
    mpath.write_text(json.dumps(m))
    with pytest.raises(MaskSetIntegrityError) as err:
        MaskSet.load(root).verify()
    assert str(root) in err.value.message


def test_reencoding_a_png_does_not_change_identity(built: MaskSet, tmp_path: Path) -> None:
    root = _copy(built, tmp_path / "copy")
    for f in ("000000.png", "000001.png"):
        arr = np.asarray(Image.open(root / f))
        Image.fromarray(arr).save(root / f, compress_level=9)
    assert MaskSet.load(root).verify() == built.digest


def test_build_refuses_non_empty_folder_and_overwrite_replaces(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(InputError, match="not empty"):
        build_mask_set("box-256", 2, 0, out)
    with pytest.raises(InputError, match="not a mask set"):
        build_mask_set("box-256", 2, 0, out, overwrite=True)  # never deletes a non-mask-set folder
    assert (out / "precious.txt").read_text() == "keep me"
    first = build_mask_set("box-256", 2, 0, tmp_path / "set")
    second = build_mask_set("mat-small-256", 3, 0, tmp_path / "set", overwrite=True)
    assert len(second) == 3 and second.digest != first.digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "set"]  # no temporary folders left


def test_failed_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from inpaintbench.masks import protocols

    real = protocols.Protocol.generate

    def boom(self, index, seed=0):  # noqa: ANN001
        if index == 3:
            raise RuntimeError("disk on fire")
        return real(self, index, seed)

    monkeypatch.setattr(protocols.Protocol, "generate", boom)
    with pytest.raises(RuntimeError):
        build_mask_set("mat-small-256", 6, 0, tmp_path / "set")
    assert list(tmp_path.iterdir()) == []


def test_load_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no mask set"):
        MaskSet.load(tmp_path / "nowhere")
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputError, match="masks import"):
        MaskSet.load(tmp_path / "plain")
    with pytest.raises(InputError):
        build_mask_set("box-256", 0, 0, tmp_path / "zero")
    with pytest.raises(InputError):
        MaskSet.generate("box-256", 0)
