"""Importing foreign mask folders and reading single mask files: every bad case has a clear message."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from inpaintbench.errors import InputError
from inpaintbench.masks import MaskFileWarning, MaskSet, import_mask_folder, load_mask_file, read_mask_file


def _hole(h: int = 64, w: int = 64, seed: int = 0, p: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hole = np.zeros((h, w), bool)
    for _ in range(4):
        y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
        hole[y : y + rng.integers(4, 16), x : x + rng.integers(4, 16)] = True
    hole |= rng.random((h, w)) < p * 0.1
    return hole


def _file(hole: np.ndarray, hole_value: int) -> np.ndarray:
    return np.where(hole, np.uint8(hole_value), np.uint8(255 - hole_value))


def _save(arr: np.ndarray, path: Path, **kw) -> Path:  # noqa: ANN003
    Image.fromarray(arr).save(path, **kw)
    return path


@pytest.mark.parametrize("hole_value", [0, 255])
def test_import_folder_in_both_polarities(tmp_path: Path, hole_value: int) -> None:
    src = tmp_path / "src"
    src.mkdir()
    holes = [_hole(seed=s) for s in range(3)]
    for name, h in zip(("b.png", "a.png", "c.png"), holes, strict=True):
        _save(_file(h, hole_value), src / name)
    (src / "readme.txt").write_text("not a mask")
    ms = import_mask_folder(src, hole_value, tmp_path / "out")
    order = [1, 0, 2]  # sorted by file name: a, b, c
    assert len(ms) == 3 and ms.ids == ["000000", "000001", "000002"]
    for i, k in enumerate(order):
        assert np.array_equal(ms.get(i), holes[k])
    m = ms.manifest
    assert [e["source_file"] for e in m["masks"]] == ["a.png", "b.png", "c.png"]
    assert m["source"]["kind"] == "imported" and m["source"]["hole_value"] == hole_value
    assert m["file_polarity"] == "255=hole" and ms.resolution == (64, 64)
    assert MaskSet.load(tmp_path / "out").verify() == ms.digest
    # stored files are always 255 = hole, whatever the source polarity
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "000000.png")) == 255, holes[1])


def test_three_identical_channels_are_accepted_with_a_note(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    h = _hole()
    _save(np.stack([_file(h, 0)] * 3, -1), src / "rgb.png")
    _save(_file(_hole(seed=1), 0), src / "gray.png")
    ms = import_mask_folder(src, 0, tmp_path / "out")
    assert np.array_equal(ms.get(1), h)
    notes = ms.manifest["source"]["notes"]
    assert any("identical channels" in n and "rgb.png" in n for n in notes)


def test_channels_that_differ_are_refused_with_a_fix(tmp_path: Path) -> None:
    f = _file(_hole(), 255)
    rgb = np.stack([f, f, 255 - f], -1)
    path = _save(rgb, tmp_path / "colour.png")
    with pytest.raises(InputError, match="colour.png") as err:
        load_mask_file(path, 255)
    assert "channels" in err.value.message and "grayscale" in err.value.fix


def test_nearly_grey_channels_use_their_mean(tmp_path: Path) -> None:
    h = _hole()
    f = _file(h, 255).astype(np.int16)
    rgb = np.stack([f, np.clip(f + 1, 0, 255), np.clip(f - 2, 0, 255)], -1).astype(np.uint8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = load_mask_file(_save(rgb, tmp_path / "m.png"), 255)
    assert any("differ by at most 2" in str(w.message) for w in caught)
    assert np.array_equal(got, h)


def test_rgba_opaque_alpha_is_ignored_transparent_alpha_refused(tmp_path: Path) -> None:
    h = _hole()
    f = _file(h, 255)
    opaque = np.dstack([f, f, f, np.full_like(f, 255)])
    with pytest.warns(MaskFileWarning, match="alpha"):
        assert np.array_equal(load_mask_file(_save(opaque, tmp_path / "o.png"), 255), h)
    transparent = np.dstack([f, f, f, np.where(h, 255, 0).astype(np.uint8)])
    with pytest.raises(InputError, match="alpha") as err:
        load_mask_file(_save(transparent, tmp_path / "t.png"), 255)
    assert "t.png" in err.value.message and "single-channel" in err.value.fix


def test_blurred_mask_warns_with_the_count_and_thresholds_at_127(tmp_path: Path) -> None:
    h = _hole()
    blurred = cv2.GaussianBlur(_file(h, 255), (7, 7), 2.0)
    in_between = int(np.count_nonzero((blurred > 0) & (blurred < 255)))
    assert in_between > 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = load_mask_file(_save(blurred, tmp_path / "blur.png"), 255)
    msgs = [str(w.message) for w in caught if issubclass(w.category, MaskFileWarning)]
    assert any(f"{in_between} pixels" in m and "127" in m and "blur.png" in m for m in msgs)
    assert np.array_equal(got, blurred > 127)
    hole, report = read_mask_file(tmp_path / "blur.png", 255)  # the report variant emits nothing
    assert report.in_between == in_between and np.array_equal(hole, got)
    assert any("127" in w for w in report.warnings)


def test_jpeg_mask_of_odd_size(tmp_path: Path) -> None:
    h = _hole(41, 40)
    path = _save(_file(h, 255), tmp_path / "m.jpg", quality=90)
    with pytest.warns(MaskFileWarning):
        got = load_mask_file(path, 255, expected_size=(41, 40))
    assert (got != h).mean() < 0.02  # lossy, but the threshold recovers nearly every pixel
    with pytest.raises(InputError) as err:
        load_mask_file(path, 255, expected_size=(40, 40))
    assert "m.jpg" in err.value.message and "40x41" in err.value.message and "40x40" in err.value.message
    with pytest.raises(InputError):
        load_mask_file(path, 255, expected_size=64)


@pytest.mark.parametrize("case", ["all_hole", "no_hole"])
def test_trivial_masks_are_refused_naming_the_file(tmp_path: Path, case: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _save(_file(_hole(), 255), src / "fine.png")
    value = 255 if case == "all_hole" else 0
    _save(np.full((64, 64), value, np.uint8), src / "bad.png")
    with pytest.raises(InputError, match="bad.png") as err:
        import_mask_folder(src, 255, tmp_path / "out")
    assert ("entirely hole" if case == "all_hole" else "no hole") in err.value.message
    assert not (tmp_path / "out").exists()  # validation happens before anything is written
    hole = load_mask_file(src / "bad.png", 255, allow_trivial=True)
    assert hole.all() if case == "all_hole" else not hole.any()


def test_inverted_polarity_is_detected(tmp_path: Path) -> None:
    h = np.zeros((64, 64), bool)
    h[:8, :8] = True  # 1.6% hole
    path = _save(_file(h, 255), tmp_path / "lama_style.png")
    with pytest.raises(InputError, match="wrong polarity") as err:
        load_mask_file(path, 0)  # wrong: this file is 255 = hole
    assert "--hole-value 255" in err.value.fix and "lama_style.png" in err.value.message
    assert load_mask_file(path, 0, max_hole_ratio=1.0).mean() > 0.9  # explicit override


def test_protocol_hint_warns_about_range_and_size(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    big = np.zeros((64, 64), bool)
    big[:, :40] = True  # 62.5% > LaMa's 0.5 cap
    _save(_file(big, 255), src / "big.png")
    with pytest.warns(MaskFileWarning) as rec:
        ms = import_mask_folder(src, 255, tmp_path / "out", protocol_hint="lama-thick-256")
    text = " ".join(str(w.message) for w in rec)
    assert "outside lama-thick-256's range" in text and "not 256x256" in text
    assert ms.protocol == "lama-thick-256" and ms.manifest["version"] is None


def test_other_modes(tmp_path: Path) -> None:
    h = _hole()
    sixteen = np.where(h, 65535, 0).astype(np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "16.png")
    warnings.simplefilter("ignore", MaskFileWarning)  # conversions are tested above
    assert np.array_equal(load_mask_file(tmp_path / "16.png", 255), h)
    Image.fromarray(_file(h, 255)).convert("P").save(tmp_path / "p.png")
    assert np.array_equal(load_mask_file(tmp_path / "p.png", 255), h)
    Image.fromarray(h).save(tmp_path / "1bit.png")
    assert np.array_equal(load_mask_file(tmp_path / "1bit.png", 255), h)
    (tmp_path / "junk.png").write_bytes(b"\x89PNG junk")
    with pytest.raises(InputError, match="junk.png"):
        load_mask_file(tmp_path / "junk.png", 255)
    with pytest.raises(InputError, match="does not exist"):
        load_mask_file(tmp_path / "missing.png", 255)


def test_bad_arguments(tmp_path: Path) -> None:
    _save(_file(_hole(), 255), tmp_path / "m.png")
    with pytest.raises(InputError, match="0 or 255"):
        load_mask_file(tmp_path / "m.png", 1)
    with pytest.raises(InputError, match="no mask images"):
        (tmp_path / "empty").mkdir()
        import_mask_folder(tmp_path / "empty", 255, tmp_path / "o1")
    with pytest.raises(InputError, match="not a folder"):
        import_mask_folder(tmp_path / "m.png", 255, tmp_path / "o2")
    src = tmp_path / "src"
    src.mkdir()
    _save(_file(_hole(), 255), src / "m.png")
    import_mask_folder(src, 255, tmp_path / "o3")
    with pytest.raises(InputError, match="not empty"):
        import_mask_folder(src, 255, tmp_path / "o3")


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10**6), hole_value=st.sampled_from([0, 255]),
    h=st.integers(4, 48), w=st.integers(4, 48), p=st.floats(0.05, 0.85),
)
def test_round_trip_any_binary_mask(tmp_path_factory: pytest.TempPathFactory, seed: int, hole_value: int,
                                    h: int, w: int, p: float) -> None:
    rng = np.random.default_rng(seed)
    hole = rng.random((h, w)) < p
    hole[0, 0], hole[-1, -1] = True, False  # never trivial
    path = _save(_file(hole, hole_value), tmp_path_factory.mktemp("rt") / "m.png")
    assert np.array_equal(load_mask_file(path, hole_value, expected_size=(h, w), max_hole_ratio=1.0), hole)
