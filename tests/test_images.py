"""Image reading/writing: canonical uint8 RGB, explicit conversions, clear errors for bad files."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image, ImageCms

from inpaintbench.errors import InputError
from inpaintbench.images import (
    ImageConversionWarning,
    array_sha256,
    composite_over_white,
    file_sha256,
    probe_image,
    read_image,
    to_uint8_from_16bit,
    write_png,
)


def png_bytes(arr: np.ndarray, bitdepth: int, colortype: int) -> bytes:
    """A minimal PNG encoder (no filtering), independent of Pillow and OpenCV, for 16-bit test files.

    colortype: 0 gray, 2 RGB, 4 gray+alpha, 6 RGBA (PNG spec, section 11.2.2).
    """
    h, w = arr.shape[:2]
    a = np.ascontiguousarray(arr.astype(">u2" if bitdepth == 16 else "u1")).reshape(h, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in a)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, bitdepth, colortype, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def rng_img(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def read_quiet(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImageConversionWarning)
        return read_image(path, **kw)


def conversion_messages(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, ImageConversionWarning)]


# --- plain RGB -----------------------------------------------------------------------------------


def test_rgb_png_round_trip_is_exact_and_silent(tmp_path):
    img = rng_img((17, 23, 3))
    p = write_png(tmp_path / "a.png", img)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = read_image(p)
    assert out.dtype == np.uint8 and out.shape == (17, 23, 3)
    np.testing.assert_array_equal(out, img)
    assert out.flags.writeable and out.flags.c_contiguous


@settings(max_examples=25, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12), st.sampled_from([3]))))
def test_png_round_trip_property(tmp_path_factory, img):
    p = write_png(tmp_path_factory.mktemp("rt") / "x.png", img)
    np.testing.assert_array_equal(read_image(p), img)


def test_jpeg_is_read_close_to_original(tmp_path):
    x = np.linspace(0, 255, 64)
    img = np.stack([np.tile(x, (64, 1)), np.tile(x[:, None], (1, 64)), np.full((64, 64), 128.0)], -1)
    img = img.astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "a.jpg", quality=95)
    out = read_image(tmp_path / "a.jpg")
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - img).mean() < 2.0


def test_lossless_webp_is_exact(tmp_path):
    img = rng_img((20, 30, 3), seed=3)
    Image.fromarray(img).save(tmp_path / "a.webp", lossless=True)
    np.testing.assert_array_equal(read_image(tmp_path / "a.webp"), img)


# --- grayscale, palette, bilevel -----------------------------------------------------------------


def test_grayscale_is_replicated_with_a_warning_naming_the_file(tmp_path):
    g = rng_img((9, 11))
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    with pytest.warns(ImageConversionWarning, match=r"g\.png.*grayscale"):
        out = read_image(tmp_path / "g.png")
    assert out.shape == (9, 11, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], g)


def test_bilevel_becomes_0_and_255(tmp_path):
    bits = rng_img((8, 8)) > 127
    Image.fromarray(bits).convert("1").save(tmp_path / "b.png")
    with pytest.warns(ImageConversionWarning) as rec:
        out = read_image(tmp_path / "b.png")
    assert any("1-bit" in m for m in conversion_messages(rec))
    np.testing.assert_array_equal(out[..., 0], np.where(bits, 255, 0))


def test_multi_frame_file_uses_the_first_frame(tmp_path):
    frames = [rng_img((6, 6, 3), seed=s) for s in (1, 2)]
    Image.fromarray(frames[0]).save(tmp_path / "anim.webp", save_all=True, lossless=True,
                                    append_images=[Image.fromarray(frames[1])])
    with pytest.warns(ImageConversionWarning, match=r"anim\.webp.*2 frames"):
        out = read_image(tmp_path / "anim.webp")
    np.testing.assert_array_equal(out, frames[0])


def test_palette_is_expanded_through_its_palette(tmp_path):
    palette = rng_img((16, 3), seed=7)
    index = rng_img((10, 10), seed=8) % 16
    im = Image.fromarray(index, "P")
    im.putpalette(palette.flatten().tolist())
    im.save(tmp_path / "p.png")
    with pytest.warns(ImageConversionWarning, match="palette"):
        out = read_image(tmp_path / "p.png")
    np.testing.assert_array_equal(out, palette[index])


def test_palette_transparency_is_refused_by_default(tmp_path):
    index = np.zeros((4, 4), np.uint8)
    index[0, 0] = 1
    im = Image.fromarray(index, "P")
    im.putpalette([10, 20, 30, 200, 100, 0] + [0] * 762)
    im.save(tmp_path / "pt.png", transparency=1)
    with pytest.raises(InputError, match=r"pt\.png.*transparency"):
        read_quiet(tmp_path / "pt.png")
    out = read_quiet(tmp_path / "pt.png", alpha="composite-white")
    assert out[0, 0].tolist() == [255, 255, 255] and out[1, 1].tolist() == [10, 20, 30]


# --- alpha ---------------------------------------------------------------------------------------


def test_rgba_with_transparency_is_refused_naming_file_and_fix(tmp_path):
    rgba = rng_img((6, 6, 4))
    rgba[..., 3] = 255
    rgba[2, 3, 3] = 10
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    with pytest.raises(InputError) as exc:
        read_quiet(tmp_path / "t.png")
    msg = str(exc.value)
    assert "t.png" in msg and "--alpha composite-white" in msg and "1 of 36" in msg


def test_fully_opaque_rgba_is_accepted_with_a_note(tmp_path):
    rgba = rng_img((6, 6, 4))
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "o.png")
    with pytest.warns(ImageConversionWarning, match=r"o\.png.*opaque"):
        out = read_image(tmp_path / "o.png")
    np.testing.assert_array_equal(out, rgba[..., :3])


def test_composite_white_matches_exact_rational_rounding_for_every_pair():
    c = np.repeat(np.arange(256, dtype=np.uint8), 256).reshape(256, 256, 1)
    a = np.tile(np.arange(256, dtype=np.uint8), 256).reshape(256, 256)
    got = composite_over_white(c, a)[..., 0]
    # Reference: round-half-up of the exact rational value, with Python Fractions.
    for ci in range(0, 256, 5):
        for ai in range(256):
            v = Fraction(ci * ai + 255 * (255 - ai), 255)
            assert got[ci, ai] == int(v + Fraction(1, 2)), (ci, ai)
    assert (got[:, 255] == np.arange(256)).all() and (got[:, 0] == 255).all()


def test_rgba_composite_white_applied_on_read(tmp_path):
    rgba = rng_img((5, 7, 4), seed=2)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "c.png")
    out = read_image(tmp_path / "c.png", alpha="composite-white")
    np.testing.assert_array_equal(out, composite_over_white(rgba[..., :3], rgba[..., 3]))


def test_gray_alpha_is_refused_then_composited(tmp_path):
    la = rng_img((4, 4, 2), seed=4)
    la[..., 1] = 128
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    with pytest.raises(InputError, match="transparency"):
        read_quiet(tmp_path / "la.png")
    out = read_quiet(tmp_path / "la.png", alpha="composite-white")
    exp = composite_over_white(la[..., :1], la[..., 1])[..., 0]
    for ch in range(3):
        np.testing.assert_array_equal(out[..., ch], exp)


def test_unknown_alpha_policy_is_an_input_error(tmp_path):
    p = write_png(tmp_path / "a.png", rng_img((2, 2, 3)))
    with pytest.raises(InputError, match="alpha policy"):
        read_image(p, alpha="drop")


# --- 16 bit --------------------------------------------------------------------------------------


def test_16bit_scaling_is_round_v_over_257_for_every_value():
    v = np.arange(65536)
    got = to_uint8_from_16bit(v)
    np.testing.assert_array_equal(got, np.round(v / 257.0).astype(np.uint8))
    assert got[0] == 0 and got[65535] == 255 and (np.diff(got.astype(int)) >= 0).all()


# Values where round(v/257) differs from Pillow's high-byte truncation floor(v/256).
_TRICKY = np.array([0, 128, 129, 511, 0x01FF, 0x7F80, 0x80FF, 65407, 65408, 65535], dtype=np.uint16)


def test_16bit_gray_png(tmp_path):
    g = np.resize(_TRICKY, (4, 5))
    (tmp_path / "g16.png").write_bytes(png_bytes(g, 16, 0))
    with pytest.warns(ImageConversionWarning) as rec:
        out = read_image(tmp_path / "g16.png")
    msgs = conversion_messages(rec)
    assert any("16-bit" in m for m in msgs) and any("grayscale" in m for m in msgs)
    np.testing.assert_array_equal(out[..., 1], np.round(g / 257.0).astype(np.uint8))


def test_48bit_rgb_png_is_rounded_not_truncated(tmp_path):
    planes = [np.resize(_TRICKY, (3, 4)), np.resize(_TRICKY[::-1], (3, 4)), np.full((3, 4), 0x01FF)]
    rgb = np.stack(planes, -1)
    (tmp_path / "c16.png").write_bytes(png_bytes(rgb, 16, 2))
    with pytest.warns(ImageConversionWarning, match="16-bit"):
        out = read_image(tmp_path / "c16.png")
    expected = np.round(rgb / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    assert (out[..., 2] == 2).all()  # floor(0x01FF/256) would be 1
    assert probe_image(tmp_path / "c16.png")[2] == "RGB;16"


def test_64bit_rgba_png_alpha_policy(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint16)
    rgba[..., :3] = np.resize(_TRICKY, (2, 3, 3))
    rgba[..., 3] = 65535
    (tmp_path / "opaque.png").write_bytes(png_bytes(rgba, 16, 6))
    np.testing.assert_array_equal(read_quiet(tmp_path / "opaque.png"),
                                  np.round(rgba[..., :3] / 257.0).astype(np.uint8))
    rgba[0, 0, 3] = 30000
    (tmp_path / "semi.png").write_bytes(png_bytes(rgba, 16, 6))
    with pytest.raises(InputError, match=r"semi\.png.*transparency"):
        read_quiet(tmp_path / "semi.png")
    out = read_quiet(tmp_path / "semi.png", alpha="composite-white")
    c8, a8 = to_uint8_from_16bit(rgba[..., :3]), to_uint8_from_16bit(rgba[..., 3])
    np.testing.assert_array_equal(out, composite_over_white(c8, a8))


def test_16bit_gray_alpha_png(tmp_path):
    la = np.stack([np.resize(_TRICKY, (2, 5)), np.full((2, 5), 65535)], -1)
    (tmp_path / "la16.png").write_bytes(png_bytes(la, 16, 4))
    with pytest.warns(ImageConversionWarning) as rec:
        out = read_image(tmp_path / "la16.png")
    assert any("grayscale" in m for m in conversion_messages(rec))
    for ch in range(3):
        np.testing.assert_array_equal(out[..., ch], np.round(la[..., 0] / 257.0).astype(np.uint8))


# --- metadata ------------------------------------------------------------------------------------


def test_exif_orientation_is_not_applied_but_announced(tmp_path):
    img = rng_img((10, 20, 3))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(img).save(tmp_path / "rot.png", exif=exif.tobytes())
    with pytest.warns(ImageConversionWarning, match=r"rot\.png.*EXIF orientation 6"):
        out = read_image(tmp_path / "rot.png")
    np.testing.assert_array_equal(out, img)  # stored grid, not rotated to 20x10


def _icc(profile: str) -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile(profile)).tobytes()


def test_srgb_icc_is_silent_and_other_profiles_warn_without_changing_pixels(tmp_path):
    img = rng_img((6, 6, 3))
    Image.fromarray(img).save(tmp_path / "srgb.png", icc_profile=_icc("sRGB"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(read_image(tmp_path / "srgb.png"), img)
    Image.fromarray(img).save(tmp_path / "xyz.png", icc_profile=_icc("XYZ"))
    with pytest.warns(ImageConversionWarning, match=r"xyz\.png.*non-sRGB ICC"):
        np.testing.assert_array_equal(read_image(tmp_path / "xyz.png"), img)
    Image.fromarray(img).save(tmp_path / "junk.png", icc_profile=b"not a profile")
    with pytest.warns(ImageConversionWarning, match="could not be parsed"):
        np.testing.assert_array_equal(read_image(tmp_path / "junk.png"), img)


# --- broken files --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp"])
def test_truncated_file_is_an_input_error_naming_it(tmp_path, fmt):
    buf = io.BytesIO()
    Image.fromarray(rng_img((64, 64, 3))).save(buf, format={"jpg": "JPEG"}.get(fmt, fmt.upper()))
    data = buf.getvalue()
    p = tmp_path / f"cut.{fmt}"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=rf"cut\.{fmt}"):
        read_image(p)


def test_garbage_missing_and_directory_are_input_errors(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"this is not an image")
    with pytest.raises(InputError, match=r"junk\.png.*not a readable image"):
        read_image(tmp_path / "junk.png")
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(InputError, match="directory"):
        read_image(tmp_path)


def test_corrupt_png_data_is_an_input_error(tmp_path):
    good = png_bytes(rng_img((8, 8, 3)), 8, 2)
    idat = good.index(b"IDAT")
    bad = bytearray(good)
    bad[idat + 6: idat + 12] = b"\xff" * 6  # damage the zlib stream (and the CRC)
    (tmp_path / "bad.png").write_bytes(bytes(bad))
    with pytest.raises(InputError, match=r"bad\.png"):
        read_image(tmp_path / "bad.png")


# --- writing and hashing -------------------------------------------------------------------------


def test_write_png_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    dst = tmp_path / "sub" / "x.png"
    first = rng_img((4, 4, 3), seed=1)
    write_png(dst, first)
    assert [p.name for p in dst.parent.iterdir()] == ["x.png"]

    def boom(self, *a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        write_png(dst, rng_img((4, 4, 3), seed=2))
    monkeypatch.undo()
    assert [p.name for p in dst.parent.iterdir()] == ["x.png"]
    np.testing.assert_array_equal(read_image(dst), first)


def test_write_png_modes_and_rejections(tmp_path):
    g = rng_img((3, 5))
    write_png(tmp_path / "g.png", g)
    with Image.open(tmp_path / "g.png") as im:
        assert im.mode == "L"
        np.testing.assert_array_equal(np.asarray(im), g)
    with pytest.raises(ValueError, match="uint8"):
        write_png(tmp_path / "f.png", g.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        write_png(tmp_path / "f.png", np.zeros((2, 2, 2), np.uint8))


def test_write_png_is_deterministic(tmp_path):
    img = rng_img((16, 16, 3))
    a, b = write_png(tmp_path / "a.png", img), write_png(tmp_path / "b.png", img)
    assert a.read_bytes() == b.read_bytes()
    assert file_sha256(a) == file_sha256(b)


def test_array_sha256_depends_on_shape_dtype_and_bytes():
    a = np.arange(12, dtype=np.uint8)
    assert array_sha256(a) == array_sha256(a.copy())
    assert array_sha256(a) != array_sha256(a.reshape(3, 4))
    assert array_sha256(a) != array_sha256(a.astype(np.int8))
    b = a.copy()
    b[5] += 1
    assert array_sha256(a) != array_sha256(b)


def test_file_sha256_matches_hashlib(tmp_path):
    import hashlib

    p = Path(tmp_path / "f.bin")
    p.write_bytes(bytes(range(256)) * 5000)
    assert file_sha256(p, chunk=4096) == hashlib.sha256(p.read_bytes()).hexdigest()
