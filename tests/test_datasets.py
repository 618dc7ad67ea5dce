"""Datasets: the embedded samples set, folder scanning and ids, resize policies, digests, errors."""

from __future__ import annotations

import hashlib
import shutil
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from inpaintbench import datasets as D
from inpaintbench.datasets import (
    RESIZE_POLICIES,
    ResizePolicyWarning,
    apply_policy,
    list_datasets,
    load_dataset,
)
from inpaintbench.errors import InputError, UnknownNameError
from inpaintbench.images import write_png


def rng_img(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def pil_bicubic(img, w, h):
    return np.asarray(Image.fromarray(img).resize((w, h), Image.Resampling.BICUBIC))


# --- samples -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def samples():
    return load_dataset("samples")


def _reference_photograph(source):
    """The source photograph through its package's public API (a check on our direct file read)."""
    package, filename = D.SAMPLE_SOURCES[source]
    if package == "skimage":
        import skimage.data

        if source == "motorcycle_left":
            return skimage.data.stereo_motorcycle()[0]
        return getattr(skimage.data, source)()
    if package == "sklearn":
        from sklearn.datasets import load_sample_image

        return load_sample_image(filename)
    import matplotlib.cbook

    with Image.open(matplotlib.cbook.get_sample_data(filename)) as im:
        return np.asarray(im.convert("RGB"))


def test_samples_shape_count_and_ids(samples):
    assert len(samples) == len(D.SAMPLE_WINDOWS)
    assert samples.ids == [w[0] for w in D.SAMPLE_WINDOWS]
    assert len(set(samples.ids)) == len(samples)
    for image_id, img in samples:
        assert img.shape == (256, 256, 3) and img.dtype == np.uint8
        assert image_id.rsplit("_", 1)[1].isdigit()
    # every listed photograph is used, and licensed
    assert {w[1] for w in D.SAMPLE_WINDOWS} == set(D.SAMPLE_SOURCES) == set(D.SAMPLE_LICENSES)


def _overlap(a, b):
    """Do two (x, y, size) squares share at least one pixel?"""
    (xa, ya, sa), (xb, yb, sb) = a, b
    return max(xa, xb) < min(xa + sa, xb + sb) and max(ya, yb) < min(ya + sa, yb + sb)


def test_overlap_helper():
    assert _overlap((0, 0, 256), (255, 255, 256)) and _overlap((0, 0, 256), (10, 10, 20))  # contained
    assert not _overlap((0, 0, 256), (256, 0, 256)) and not _overlap((0, 0, 256), (0, 256, 256))


def test_sample_windows_never_overlap_within_a_photograph():
    # Independence for the bootstrap and the paired tests: no pixel is in two windows.
    w = D.SAMPLE_WINDOWS
    for i in range(len(w)):
        for j in range(i + 1, len(w)):
            if w[i][1] == w[j][1]:
                assert not _overlap(w[i][2:], w[j][2:]), (w[i][0], w[j][0])
    # the same, counted pixel by pixel
    for source in D.SAMPLE_SOURCES:
        h, wd = D._load_source(source).shape[:2]
        cover = np.zeros((h, wd), np.int32)
        for _, s, x, y, size in w:
            if s == source:
                cover[y:y + size, x:x + size] += 1
        assert cover.max() == 1, source


def test_every_sample_window_is_inside_its_photograph():
    for image_id, source, x, y, size in D.SAMPLE_WINDOWS:
        h, w = D._load_source(source).shape[:2]
        assert size > 0 and 0 <= x and 0 <= y and x + size <= w and y + size <= h, (image_id, w, h)


def test_sample_windows_are_native_and_as_many_as_fit():
    assert all(w[4] == 256 for w in D.SAMPLE_WINDOWS)  # nothing is resampled at the default resolution
    for source in D.SAMPLE_SOURCES:
        h, w = D._load_source(source).shape[:2]
        n = sum(1 for win in D.SAMPLE_WINDOWS if win[1] == source)
        assert n == (w // 256) * (h // 256), source  # the most disjoint 256-squares the photograph holds


def test_samples_are_pairwise_different(samples):
    imgs = np.stack([img for _, img in samples]).astype(np.int16)
    for i in range(len(imgs)):
        diffs = np.abs(imgs[i + 1:] - imgs[i]).mean(axis=(1, 2, 3))
        assert (diffs > 2.0).all(), (samples.ids[i], diffs.min())


def test_samples_are_colour_photographs(samples):
    for image_id, img in samples:
        f = img.astype(np.float64)
        chroma = np.abs(f - f.mean(axis=2, keepdims=True)).mean()
        assert chroma > 2.0, image_id  # not grayscale
        assert f.std() > 10.0, image_id  # not a flat patch


def test_sample_windows_match_the_source_photographs(samples):
    refs = {source: _reference_photograph(source) for source in D.SAMPLE_SOURCES}
    for (image_id, img), (wid, source, x, y, size) in zip(samples, D.SAMPLE_WINDOWS, strict=True):
        assert image_id == wid
        np.testing.assert_array_equal(img, refs[source][y:y + size, x:x + size], err_msg=image_id)


def test_samples_digest_is_stable_and_matches_its_definition(samples):
    assert D.SAMPLES_DIGEST_TAG == b"inpaintbench-samples-v2\n"
    D._build_samples.cache_clear()
    D._load_source.cache_clear()
    again = load_dataset("samples")
    assert again.digest == samples.digest and again.ids == samples.ids
    for (_, a), (_, b) in zip(again, samples, strict=True):
        np.testing.assert_array_equal(a, b)
    h = hashlib.sha256(b"inpaintbench-samples-v2\n")
    for image_id, img in again:
        h.update(f"{image_id}\0{img.shape}\n".encode())
        h.update(img.tobytes())
    assert h.hexdigest() == samples.digest


def test_samples_arrays_are_read_only(samples):
    with pytest.raises(ValueError):
        samples[0][1][0, 0, 0] = 1


def test_samples_at_512_are_upscaled_with_a_warning(samples):
    with pytest.warns(ResizePolicyWarning, match="upscaled"):
        big = load_dataset("samples", resolution=512)
    assert len(big) == len(samples) and big.ids == samples.ids
    _, img = big[0]
    assert img.shape == (512, 512, 3)
    np.testing.assert_array_equal(img, pil_bicubic(samples[0][1], 512, 512))
    assert big.digest != samples.digest
    assert big.describe()["upscaled"] == sum(w[4] < 512 for w in D.SAMPLE_WINDOWS)
    assert samples.describe()["upscaled"] == 0


def test_samples_describe(samples):
    d = samples.describe()
    assert d["name"] == "samples" and d["n"] == len(samples) and d["digest"] == samples.digest
    assert d["resolution"] == 256 and "grace_hopper" in d["sources"]
    assert d["n_photographs"] == len({w[1] for w in D.SAMPLE_WINDOWS}) == len(d["sources"])
    assert set(d["licenses"]) == set(d["sources"])
    assert samples.path_of(0) is None


def test_indexing(samples):
    assert samples[-1][0] == samples.ids[-1]
    with pytest.raises(IndexError):
        samples[len(samples)]
    with pytest.raises(TypeError):
        samples["astronaut_00"]


# --- folder: scanning and ids --------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "imgs"
    write_png(root / "b.png", rng_img(32, 32, 1))
    write_png(root / "a" / "z.png", rng_img(32, 32, 2))
    Image.fromarray(rng_img(32, 32, 3)).save(root / "a" / "y.JPG", quality=95)
    Image.fromarray(rng_img(32, 32, 4)).save(root / "c.webp", lossless=True)
    write_png(root / ".hidden.png", rng_img(32, 32, 5))
    write_png(root / ".cache" / "x.png", rng_img(32, 32, 6))
    (root / "notes.txt").write_text("not an image")
    Image.fromarray(rng_img(32, 32, 8)).save(root / "d.tif")  # TIFF is read, as `score` reads it
    return root


def test_folder_scan_is_recursive_sorted_with_stable_ids(tree):
    ds = load_dataset(f"folder:{tree}", resolution=32)
    assert ds.ids == ["a/y", "a/z", "b", "c", "d"]
    assert ds.path_of(0) == (tree / "a" / "y.JPG").resolve()
    np.testing.assert_array_equal(ds[2][1], rng_img(32, 32, 1))
    np.testing.assert_array_equal(ds[3][1], rng_img(32, 32, 4))
    np.testing.assert_array_equal(ds[4][1], rng_img(32, 32, 8))
    d = ds.describe()
    assert d["name"] == "folder" and d["n"] == 5 and d["root"] == str(tree.resolve())
    assert d["spec"] == f"folder:{tree.resolve()}" and d["geometry_counts"] == {"exact": 5}


def test_duplicate_ids_name_both_files(tree):
    Image.fromarray(rng_img(32, 32, 7)).save(tree / "b.jpg")
    with pytest.raises(InputError) as exc:
        load_dataset(f"folder:{tree}", resolution=32)
    assert "b.jpg" in str(exc.value) and "b.png" in str(exc.value) and "'b'" in str(exc.value)


def test_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("x")
    with pytest.raises(InputError, match="no images found"):
        load_dataset(f"folder:{tmp_path / 'empty'}")
    with pytest.raises(InputError, match="no such directory"):
        load_dataset(f"folder:{tmp_path / 'missing'}")
    with pytest.raises(InputError, match="folder:"):
        load_dataset(str(tmp_path / "empty"))  # a bare path is not guessed
    with pytest.raises(InputError, match="needs a path"):
        load_dataset("folder:")
    with pytest.raises(UnknownNameError, match="samples"):
        load_dataset("imagenet")


def test_corrupt_header_fails_at_load_and_truncated_data_is_found_by_verify(tmp_path):
    root = tmp_path / "d"
    write_png(root / "ok.png", rng_img(16, 16))
    (root / "junk.png").write_bytes(b"nope")
    with pytest.raises(InputError, match=r"junk\.png"):
        load_dataset(f"folder:{root}", resolution=16)
    data = (root / "ok.png").read_bytes()
    (root / "junk.png").write_bytes(data[: len(data) - 30])  # valid header, truncated pixels
    ds = load_dataset(f"folder:{root}", resolution=16)
    problems = ds.verify()
    assert [p[0] for p in problems] == ["junk"] and "junk.png" in problems[0][1]
    with pytest.raises(InputError, match=r"junk\.png"):
        ds[0]


def test_transparency_is_refused_at_load_time(tmp_path):
    root = tmp_path / "d"
    rgba = np.dstack([rng_img(16, 16), np.full((16, 16), 255, np.uint8)])
    rgba[0, 0, 3] = 0
    write_png(root / "t.png", rgba)
    with pytest.raises(InputError, match=r"t\.png.*--alpha composite-white"):
        load_dataset(f"folder:{root}", resolution=16)
    ds = load_dataset(f"folder:{root}", resolution=16, alpha="composite-white")
    assert ds[0][1][0, 0].tolist() == [255, 255, 255]
    assert ds.describe()["alpha"] == "composite-white"


def test_folder_digest_tracks_ids_and_bytes_not_location(tree, tmp_path):
    ds = load_dataset(f"folder:{tree}", resolution=32)
    moved = shutil.copytree(tree, tmp_path / "elsewhere")
    assert load_dataset(f"folder:{moved}", resolution=32).digest == ds.digest
    # other geometry, same files: same digest (geometry is recorded separately)
    assert load_dataset(f"folder:{moved}", resolution=16).digest == ds.digest
    write_png(moved / "b.png", rng_img(32, 32, 99))
    assert load_dataset(f"folder:{moved}", resolution=32).digest != ds.digest
    (moved / "b.png").rename(moved / "b2.png")
    write_png(moved / "b2.png", rng_img(32, 32, 1))  # original bytes, new id
    assert load_dataset(f"folder:{moved}", resolution=32).digest != ds.digest


def test_folder_digest_matches_its_definition(tree):
    ds = load_dataset(f"folder:{tree}", resolution=32)
    h = hashlib.sha256(b"inpaintbench-folder-v1\n")
    for i, image_id in enumerate(ds.ids):
        h.update(f"{image_id}\0{hashlib.sha256(ds.path_of(i).read_bytes()).hexdigest()}\n".encode())
    assert ds.digest == h.hexdigest()


# --- resize policies -----------------------------------------------------------------------------


def test_center_crop_larger_image_and_refuse_smaller(tmp_path):
    big = rng_img(40, 50, 1)
    write_png(tmp_path / "d" / "big.png", big)
    ds = load_dataset(f"folder:{tmp_path / 'd'}", resolution=32)
    np.testing.assert_array_equal(ds[0][1], big[4:36, 9:41])
    write_png(tmp_path / "d" / "small.png", rng_img(30, 50, 2))
    with pytest.raises(InputError) as exc:
        load_dataset(f"folder:{tmp_path / 'd'}", resolution=32)
    msg = str(exc.value)
    assert "small.png" in msg and "50x30" in msg and "--resize-policy" in msg


def test_pad_policy_mirrors_bottom_right_then_crops(tmp_path):
    small = rng_img(20, 40, 3)
    write_png(tmp_path / "d" / "s.png", small)
    with pytest.warns(ResizePolicyWarning, match="1 mirror-padded"):
        ds = load_dataset(f"folder:{tmp_path / 'd'}", resolution=32, resize_policy="pad")
    out = ds[0][1]
    assert out.shape == (32, 32, 3)
    np.testing.assert_array_equal(out[:20], small[:, 4:36])
    np.testing.assert_array_equal(out[20:], small[18:6:-1, 4:36])  # reflect: row 18 first, edge not repeated
    assert ds.describe()["geometry_counts"] == {"pad": 1}


def test_resize_policy_matches_pil_bicubic_and_warns_about_aspect(tmp_path):
    img = rng_img(48, 64, 4)
    write_png(tmp_path / "d" / "r.png", img)
    with pytest.warns(ResizePolicyWarning, match="aspect"):
        ds = load_dataset(f"folder:{tmp_path / 'd'}", resolution=32, resize_policy="resize")
    np.testing.assert_array_equal(ds[0][1], pil_bicubic(img, 32, 32))
    assert ds.describe()["aspect_changed"] == 1


def test_short_side_policy(tmp_path):
    img = rng_img(64, 96, 5)
    write_png(tmp_path / "d" / "s.png", img)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a downscale keeping the aspect is not worth a warning
        ds = load_dataset(f"folder:{tmp_path / 'd'}", resolution=32, resize_policy="short-side")
    np.testing.assert_array_equal(ds[0][1], pil_bicubic(img, 48, 32)[:, 8:40])


def test_upscaling_is_announced(tmp_path):
    write_png(tmp_path / "d" / "u.png", rng_img(16, 16))
    for policy in ("resize", "short-side"):
        with pytest.warns(ResizePolicyWarning, match="1 upscaled"):
            ds = load_dataset(f"folder:{tmp_path / 'd'}", resolution=32, resize_policy=policy)
        assert ds[0][1].shape == (32, 32, 3)


@pytest.mark.parametrize("policy", RESIZE_POLICIES)
def test_exact_size_passes_through_untouched(policy):
    img = rng_img(24, 24, 6)
    assert apply_policy(img, 24, policy) is img


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 70), w=st.integers(1, 70), r=st.sampled_from([16, 32]),
       policy=st.sampled_from(RESIZE_POLICIES))
def test_every_policy_gives_r_by_r_or_a_clear_error(h, w, r, policy):
    img = rng_img(h, w, 7)
    if policy == "center-crop" and min(h, w) < r:
        with pytest.raises(InputError, match="resize-policy"):
            apply_policy(img, r, policy)
        return
    out = apply_policy(img, r, policy)
    assert out.shape == (r, r, 3) and out.dtype == np.uint8
    if policy in ("center-crop", "pad") and min(h, w) >= r:
        # native-scale crop: every output row is a contiguous piece of an input row
        y, x = (h - r) // 2, (w - r) // 2
        np.testing.assert_array_equal(out, img[y:y + r, x:x + r])


def test_bad_arguments(tmp_path):
    with pytest.raises(InputError, match="resize policy"):
        load_dataset("samples", resize_policy="stretch")
    with pytest.raises(InputError, match="resolution"):
        load_dataset("samples", resolution=0)
    with pytest.raises(InputError, match="alpha"):
        load_dataset("samples", alpha="drop")


def test_list_datasets_names_the_builtins():
    rows = list_datasets()
    specs = [r["spec"] for r in rows]
    assert "samples" in specs and "folder:PATH" in specs
    assert all(r["summary"] for r in rows)
    row = [r for r in rows if r["spec"] == "samples"][0]
    assert row["n"] == len(D.SAMPLE_WINDOWS)
    assert row["summary"].startswith(f"{len(D.SAMPLE_WINDOWS)} non-overlapping")
