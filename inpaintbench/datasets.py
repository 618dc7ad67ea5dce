"""Datasets: an ordered list of (stable id, uint8 RGB R×R image) with a digest and a stated geometry.

Two kinds, chosen by a spec string:

* ``samples``: the embedded default set, 19 non-overlapping native 256×256 crops of the 8 colour
  photographs that ship with scikit-image (astronaut, coffee, chelsea, rocket, motorcycle_left),
  matplotlib (Grace Hopper) and scikit-learn (china, flower). Built at runtime, deterministically,
  without network. Crops of one photograph share its scene, so the set is 8 independent photographs,
  not 19. See :data:`SAMPLE_WINDOWS`.
* ``folder:PATH``: every ``.png/.jpg/.jpeg/.webp`` file (any case) below PATH, recursively; hidden
  files and directories (name starting with ``.``) are skipped, symlinked directories are not followed.
  Files are sorted by relative POSIX path; the id is that path without its extension
  (``sub/img_01``). A bare directory path is *not* accepted as a spec (it could collide with a
  built-in name); the error says to write ``folder:PATH``.

Every image leaves the dataset as exactly ``resolution × resolution``. How it gets there is the
*resize policy*; it is always explicit, recorded by :meth:`Dataset.describe`, and an image that is
already R×R is passed through untouched under every policy:

* ``center-crop`` (default): both sides must be ≥ R, else :class:`InputError` naming the file, its
  size and the fix. Larger images are centre-cropped at native scale (offset ``(side - R) // 2``),
  like MAT's ``*_val`` loaders. No resampling ever happens.
* ``pad``: sides shorter than R are reflect-padded (mirror without repeating the edge,
  ``numpy.pad(mode="reflect")``) at the bottom/right up to R, as MAT's loaders do; then centre crop.
  The padded pixels become part of the ground truth: they are recorded in the counts.
* ``resize``: resized straight to R×R (aspect ratio not kept).
* ``short-side``: short side resized to R (long side ``round(long * R / short)``), then centre crop;
  the usual "resize then crop" preparation for large photographs (LaMa's Places evaluation).

Resampling always uses Pillow's bicubic filter, which is antialiased when shrinking. Upscaling and
aspect changes are counted in :meth:`Dataset.describe` and announced once with a
:class:`ResizePolicyWarning` when the dataset is loaded.

Sizes, and for ``alpha="refuse"`` any transparency, are checked when the dataset is loaded, so a run
fails at the start rather than hours in. Corrupt pixel data is only found when an image is decoded;
:meth:`Dataset.verify` decodes everything up front.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from inpaintbench.errors import InputError, UnknownNameError
from inpaintbench.images import ALPHA_POLICIES, may_have_alpha, probe_image, read_image

RESIZE_POLICIES = ("center-crop", "pad", "resize", "short-side")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
RESIZE_FILTER = "PIL bicubic (antialiased when shrinking)"
PAD_MODE = "reflect (numpy mode='reflect'), bottom/right"
_SIZE_FIX = "pass --resize-policy pad (mirror-pad small images) or resize/short-side (resample them)"


class ResizePolicyWarning(UserWarning):
    """The resize policy upscaled, padded or changed the aspect ratio of some images."""


# ----------------------------------------------------------------------------------------------------
# Geometry


def _resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((width, height), Image.Resampling.BICUBIC), dtype=np.uint8)


def _center_crop(img: np.ndarray, r: int) -> np.ndarray:
    h, w = img.shape[:2]
    y, x = (h - r) // 2, (w - r) // 2
    return np.ascontiguousarray(img[y:y + r, x:x + r])


def plan_geometry(width: int, height: int, r: int, policy: str) -> str:
    """What ``policy`` does to a ``width × height`` image: one of ``exact``, ``crop``, ``pad``,
    ``resize``, ``upscale``, ``too-small`` (the last only for ``center-crop``)."""
    if (width, height) == (r, r):
        return "exact"
    if policy == "center-crop":
        return "crop" if min(width, height) >= r else "too-small"
    if policy == "pad":
        return "crop" if min(width, height) >= r else "pad"
    if policy == "resize":
        return "upscale" if min(width, height) < r else "resize"
    if policy == "short-side":
        return "upscale" if min(width, height) < r else ("crop" if min(width, height) == r else "resize")
    raise InputError(f"unknown resize policy {policy!r}", f"use one of: {', '.join(RESIZE_POLICIES)}")


def apply_policy(img: np.ndarray, r: int, policy: str, name: str = "image") -> np.ndarray:
    """Bring a uint8 [H, W, 3] image to [r, r, 3] under ``policy`` (see the module docstring)."""
    h, w = img.shape[:2]
    plan = plan_geometry(w, h, r, policy)
    if plan == "exact":
        return img
    if plan == "too-small":
        raise InputError(f"{name}: {w}x{h} is smaller than {r}x{r} and the resize policy is center-crop",
                         _SIZE_FIX)
    if policy == "pad":
        ph, pw = max(0, r - h), max(0, r - w)
        if ph or pw:
            img = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="reflect")
        return _center_crop(img, r)
    if policy == "center-crop":
        return _center_crop(img, r)
    if policy == "resize":
        return _resize(img, r, r)
    # short-side
    short = min(w, h)
    if short != r:
        nw, nh = (r, max(r, round(h * r / w))) if w <= h else (max(r, round(w * r / h)), r)
        img = _resize(img, nw, nh)
    return _center_crop(img, r)


def _check_args(resolution: int, resize_policy: str, alpha: str) -> None:
    if not isinstance(resolution, int) or resolution < 8:
        raise InputError(f"resolution must be an integer >= 8, got {resolution!r}", "e.g. --resolution 256")
    if resize_policy not in RESIZE_POLICIES:
        raise InputError(f"unknown resize policy {resize_policy!r}",
                         f"use one of: {', '.join(RESIZE_POLICIES)}")
    if alpha not in ALPHA_POLICIES:
        raise InputError(f"unknown alpha policy {alpha!r}", f"use one of: {', '.join(ALPHA_POLICIES)}")


# ----------------------------------------------------------------------------------------------------
# Base class


class Dataset:
    """Ordered, indexable images with stable ids. Subclasses implement ``_load(i)`` and ``_digest()``."""

    name: str = "dataset"

    def __init__(self, spec: str, ids: Sequence[str], resolution: int, resize_policy: str):
        self.spec = spec
        self.ids: list[str] = list(ids)
        self.resolution = resolution
        self.resize_policy = resize_policy
        self._digest_cache: str | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[str, np.ndarray]:
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"dataset indices must be integers, got {type(i).__name__}")
        n = len(self.ids)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {n} images")
        i = int(i) % n
        return self.ids[i], self._load(i)

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        for i in range(len(self)):
            yield self[i]

    def path_of(self, i: int) -> Path | None:
        """The source file of image ``i``, or ``None`` for built-in sets."""
        return None

    @property
    def digest(self) -> str:
        """sha256 identifying the image list and content (computed once, on first use)."""
        if self._digest_cache is None:
            self._digest_cache = self._digest()
        return self._digest_cache

    def describe(self) -> dict[str, Any]:
        """Everything a run manifest needs to say which images, in which order and geometry."""
        return {
            "name": self.name,
            "spec": self.spec,
            "n": len(self),
            "digest": self.digest,
            "resolution": self.resolution,
            "resize_policy": self.resize_policy,
        }

    def verify(self) -> list[tuple[str, str]]:
        """Decode every image; return ``(id, problem)`` for each one that fails (empty list = all good)."""
        problems = []
        for i, image_id in enumerate(self.ids):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self._load(i)
            except InputError as e:
                problems.append((image_id, str(e)))
        return problems

    def _load(self, i: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _digest(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


# ----------------------------------------------------------------------------------------------------
# folder:PATH


@dataclass(frozen=True)
class _FolderItem:
    image_id: str
    path: Path
    width: int
    height: int
    mode: str
    plan: str


def scan_image_folder(root: Path) -> list[tuple[str, Path]]:
    """``(id, path)`` for every image below ``root``, sorted by relative POSIX path; duplicate ids fail."""
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for fn in filenames:
            if fn.startswith(".") or os.path.splitext(fn)[1].lower() not in IMAGE_EXTENSIONS:
                continue
            path = Path(dirpath) / fn
            found.append((path.relative_to(root).as_posix(), path))
    found.sort(key=lambda t: t[0])
    seen: dict[str, str] = {}
    out = []
    for rel, path in found:
        image_id = os.path.splitext(rel)[0]
        if image_id in seen:
            raise InputError(
                f"{root}: two files give the same image id {image_id!r}: {seen[image_id]} and {rel}",
                "rename or remove one of them; ids are relative paths without extension",
            )
        seen[image_id] = rel
        out.append((image_id, path))
    return out


class FolderDataset(Dataset):
    """Images from a directory tree (see the module docstring for ordering, ids and geometry)."""

    name = "folder"

    def __init__(self, root: str | os.PathLike[str], resolution: int = 256,
                 resize_policy: str = "center-crop", alpha: str = "refuse"):
        _check_args(resolution, resize_policy, alpha)
        root_path = Path(root).expanduser()
        if not root_path.exists():
            raise InputError(f"{root_path}: no such directory", "check the path given after folder:")
        if not root_path.is_dir():
            raise InputError(f"{root_path}: not a directory", "folder: needs a directory of images")
        root_path = root_path.resolve()
        found = scan_image_folder(root_path)
        if not found:
            raise InputError(
                f"{root_path}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)} recursively)",
                "point folder: at a directory that contains PNG, JPEG or WebP files",
            )
        self.root = root_path
        self.alpha = alpha
        items = []
        for image_id, path in found:
            w, h, mode, _fmt = probe_image(path)
            plan = plan_geometry(w, h, resolution, resize_policy)
            if plan == "too-small":
                raise InputError(f"{path}: {w}x{h} is smaller than {resolution}x{resolution} and the resize "
                                 "policy is center-crop", _SIZE_FIX)
            if alpha == "refuse" and may_have_alpha(mode):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    read_image(path, alpha=alpha)  # raises InputError on real transparency
            items.append(_FolderItem(image_id, path, w, h, mode, plan))
        self._items = items
        super().__init__(f"folder:{root_path}", [it.image_id for it in items], resolution, resize_policy)
        self.plan_counts = dict(sorted(Counter(it.plan for it in items).items()))
        self.n_aspect_changed = sum(1 for it in items if resize_policy == "resize" and it.width != it.height)
        _announce(self.spec, self.plan_counts, self.n_aspect_changed, len(items))

    def path_of(self, i: int) -> Path:
        return self._items[i].path

    def _load(self, i: int) -> np.ndarray:
        it = self._items[i]
        img = read_image(it.path, alpha=self.alpha)
        if img.shape[:2] != (it.height, it.width):
            raise InputError(f"{it.path}: size changed since the dataset was loaded", "reload the dataset")
        return apply_policy(img, self.resolution, self.resize_policy, name=str(it.path))

    def _digest(self) -> str:
        # One line per image: id, NUL, sha256 of the file bytes. Independent of resolution and policy,
        # which describe() records next to it.
        h = hashlib.sha256(b"inpaintbench-folder-v1\n")
        for it in self._items:
            fh = hashlib.sha256(it.path.read_bytes()).hexdigest()
            h.update(f"{it.image_id}\0{fh}\n".encode())
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({
            "root": str(self.root),
            "digest_method": "sha256 over 'id NUL sha256(file bytes)' lines in order",
            "alpha": self.alpha,
            "extensions": list(IMAGE_EXTENSIONS),
            "resize_filter": RESIZE_FILTER,
            "pad_mode": PAD_MODE,
            "geometry_counts": self.plan_counts,
            "aspect_changed": self.n_aspect_changed,
            "exif_orientation": "ignored (stored pixel grid)",
            "color_management": "none (pixel values as stored)",
        })
        return d


def _announce(spec: str, counts: dict[str, int], n_aspect: int, n: int) -> None:
    notes = []
    if counts.get("upscale"):
        notes.append(f"{counts['upscale']} upscaled")
    if counts.get("pad"):
        notes.append(f"{counts['pad']} mirror-padded")
    if n_aspect:
        notes.append(f"{n_aspect} with changed aspect ratio")
    if notes:
        warnings.warn(f"{spec}: of {n} images, " + ", ".join(notes), ResizePolicyWarning, stacklevel=4)


# ----------------------------------------------------------------------------------------------------
# samples: the embedded default set

# (id, source, x, y, size): square window in source pixel coordinates (x = column, y = row).
#
# Why these windows: the bootstrap CIs and the paired tests (Wilcoxon, paired bootstrap) treat images as
# independent draws. Version 1 of this set was 48 windows of 6 photographs that overlapped, some
# containing others, so the same pixels were scored several times and the CIs and p-values claimed
# more precision than the data hold. Here no two windows of a photograph share a single pixel (tested
# from this table) and every window is native 256x256: at the default resolution nothing is resampled.
# That allows floor(w/256) * floor(h/256) windows per photograph, 19 from 8 photographs; the spare
# margin of each photograph is spent to centre the windows on content. Remaining caveat: windows cut
# from one photograph share its scene, camera and lighting, so they are still correlated; the set
# holds only 8 independent photographs, and its intervals should be read with that in mind.
#
# Left out on purpose: grayscale files (camera, moon, brick, grass, gravel, coins, cell, ...), which
# would be converted with a warning; motorcycle_right (the stereo twin of motorcycle_left, almost the
# same pixels); non-photographs (logo, colour wheel, text, page, chessboards); and the scientific
# images hubble_deep_field (mostly black sky), immunohistochemistry (microscopy) and retina (fundus
# photograph on black), which are not natural scenes.
SAMPLE_WINDOWS: tuple[tuple[str, str, int, int, int], ...] = (
    ("astronaut_00", "astronaut", 0, 0, 256),
    ("astronaut_01", "astronaut", 256, 0, 256),
    ("astronaut_02", "astronaut", 0, 256, 256),
    ("astronaut_03", "astronaut", 256, 256, 256),
    ("grace_hopper_00", "grace_hopper", 0, 44, 256),
    ("grace_hopper_01", "grace_hopper", 256, 44, 256),
    ("grace_hopper_02", "grace_hopper", 0, 300, 256),
    ("grace_hopper_03", "grace_hopper", 256, 300, 256),
    ("coffee_00", "coffee", 44, 72, 256),
    ("coffee_01", "coffee", 300, 72, 256),
    ("chelsea_00", "chelsea", 100, 22, 256),
    ("rocket_00", "rocket", 0, 171, 256),
    ("rocket_01", "rocket", 270, 171, 256),
    ("motorcycle_00", "motorcycle_left", 100, 200, 256),
    ("motorcycle_01", "motorcycle_left", 356, 200, 256),
    ("china_00", "china", 40, 100, 256),
    ("china_01", "china", 320, 100, 256),
    ("flower_00", "flower", 128, 20, 256),
    ("flower_01", "flower", 384, 100, 256),
)

# Source photographs: (package, file inside that package's bundled data folder, see _DATA_DIRS).
# All ship inside the installed wheels (no download).
SAMPLE_SOURCES: dict[str, tuple[str, str]] = {
    "astronaut": ("skimage", "astronaut.png"),
    "grace_hopper": ("matplotlib", "grace_hopper.jpg"),
    "coffee": ("skimage", "coffee.png"),
    "chelsea": ("skimage", "chelsea.png"),
    "rocket": ("skimage", "rocket.jpg"),
    "motorcycle_left": ("skimage", "motorcycle_left.png"),
    "china": ("sklearn", "china.jpg"),
    "flower": ("sklearn", "flower.jpg"),
}

# Licences as stated by the shipping packages (skimage.data docstrings, matplotlib's sample data,
# sklearn/datasets/images/README.txt).
SAMPLE_LICENSES: dict[str, str] = {
    "astronaut": "public domain (NASA; Eileen Collins)",
    "grace_hopper": "public domain (US Navy)",
    "coffee": "CC0 (Rachel Michetti)",
    "chelsea": "CC0 (Stefan van der Walt)",
    "rocket": "public domain (SpaceX, DSCOVR launch)",
    "motorcycle_left": "Middlebury 2014 stereo benchmark (Scharstein et al.), as redistributed by scikit-image",
    "china": "CC BY 2.0 (danielbuechele, Flickr)",
    "flower": "CC BY 2.0 (vultilion, Flickr)",
}

SAMPLES_DIGEST_TAG = b"inpaintbench-samples-v2\n"  # v2: 19 non-overlapping native windows, 8 photographs

_DISTRIBUTIONS = {"skimage": "scikit-image", "sklearn": "scikit-learn"}
_DATA_DIRS: dict[str, str] = {
    "skimage": "data",
    "matplotlib": "mpl-data/sample_data",
    "sklearn": "datasets/images",
}


def _source_path(source: str) -> Path:
    """Where the bundled file of ``source`` lies (found without importing its package)."""
    package, filename = SAMPLE_SOURCES[source]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"the samples dataset needs {filename} from {package}, which is not installed",
                         f"pip install {_DISTRIBUTIONS.get(package, package)}")
    path = Path(next(iter(spec.submodule_search_locations))) / _DATA_DIRS[package] / filename
    if not path.is_file():
        raise InputError(f"the samples dataset needs {filename} from {package}, missing at {path}",
                         f"reinstall {package} from a wheel that bundles its data files")
    return path


@functools.cache
def _load_source(source: str) -> np.ndarray:
    with Image.open(_source_path(source)) as img:
        arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    arr.setflags(write=False)
    return arr


@functools.lru_cache(maxsize=4)
def _build_samples(resolution: int) -> tuple[tuple[str, np.ndarray], ...]:
    """``(id, read-only image)`` per window; a window of another size is bicubic-resized to it."""
    out = []
    for image_id, source, x, y, size in SAMPLE_WINDOWS:
        src = _load_source(source)
        h, w = src.shape[:2]
        if x < 0 or y < 0 or x + size > w or y + size > h:  # the bundled file changed shape
            raise RuntimeError(f"samples window {image_id} ({x},{y},{size}) is outside {source} ({w}x{h})")
        win = np.ascontiguousarray(src[y:y + size, x:x + size])
        img = win if size == resolution else _resize(win, resolution, resolution)
        img.setflags(write=False)
        out.append((image_id, img))
    return tuple(out)


class SamplesDataset(Dataset):
    """The embedded default set: non-overlapping native windows of the bundled colour photographs
    (see :data:`SAMPLE_WINDOWS` for why, and the caveat). Images are read-only arrays; above the
    windows' size they are upscaled, with a :class:`ResizePolicyWarning`."""

    name = "samples"

    def __init__(self, resolution: int = 256, resize_policy: str = "center-crop", alpha: str = "refuse"):
        _check_args(resolution, resize_policy, alpha)
        self._items = _build_samples(resolution)
        super().__init__("samples", [i for i, _ in self._items], resolution, resize_policy)
        self.n_upscaled = sum(1 for w in SAMPLE_WINDOWS if w[4] < resolution)
        if self.n_upscaled:
            warnings.warn(f"samples at {resolution}: {self.n_upscaled} of {len(self)} crops are upscaled "
                          "from smaller windows, so they are softer than real photographs at this size",
                          ResizePolicyWarning, stacklevel=3)

    def _load(self, i: int) -> np.ndarray:
        return self._items[i][1]

    def _digest(self) -> str:
        h = hashlib.sha256(SAMPLES_DIGEST_TAG)
        for image_id, img in self._items:
            h.update(f"{image_id}\0{img.shape}\n".encode())
            h.update(img.tobytes())
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({
            "resize_policy": "n/a (fixed windows resized to the resolution)",
            "digest_method": "sha256 over id, shape and pixel bytes in order",
            "resize_filter": RESIZE_FILTER,
            "upscaled": self.n_upscaled,
            "sources": {k: f"{pkg}:{fn}" for k, (pkg, fn) in SAMPLE_SOURCES.items()},
            "licenses": dict(SAMPLE_LICENSES),
            "n_photographs": len({w[1] for w in SAMPLE_WINDOWS}),
            "overlap": "none: windows of one photograph are disjoint (they still share its scene)",
            "windows": "inpaintbench.datasets.SAMPLE_WINDOWS (id, source, x, y, size)",
        })
        return d


# ----------------------------------------------------------------------------------------------------
# Entry points


_BUILTIN = {
    "samples": (
        f"{len(SAMPLE_WINDOWS)} non-overlapping native 256x256 crops of "
        f"{len({w[1] for w in SAMPLE_WINDOWS})} colour photographs bundled with scikit-image, matplotlib and "
        "scikit-learn (portraits, a cat, coffee, a rocket launch, a motorcycle, a pagoda, a flower); built "
        "offline; exact at 256, upscaled above"
    ),
}


def load_dataset(spec: str, resolution: int = 256, resize_policy: str = "center-crop",
                 alpha: str = "refuse", options: dict[str, Any] | None = None, offline: bool | None = None) -> Dataset:
    """Open a dataset by spec: ``samples``, ``folder:PATH`` or ``hf:NAME_OR_PATH[:split]``.

    ``options`` are the ``hf:`` settings (``image_column``, ``filters``, ``id_column``; see
    :mod:`inpaintbench.hf_data`); other kinds take none.

    Raises:
        InputError: bad folder, image too small for the policy, transparency with ``alpha="refuse"``...
        UnknownNameError: any other spec.
    """
    options = {k: v for k, v in (options or {}).items() if v not in (None, (), [], {})}
    if spec.startswith("hf:"):
        from inpaintbench.hf_data import load_hf_dataset

        return load_hf_dataset(spec, resolution, resize_policy, alpha,
                               image_column_name=options.pop("image_column", None),
                               filters=options.pop("filters", None), id_column=options.pop("id_column", None),
                               offline=offline, **options)
    if options:
        raise InputError(f"dataset options {', '.join(sorted(options))} only apply to hf: datasets",
                         "drop the --hf-* options, or use --data hf:NAME")
    if spec == "samples":
        return SamplesDataset(resolution, resize_policy, alpha)
    if spec.startswith("folder:"):
        path = spec[len("folder:"):]
        if not path:
            raise InputError("folder: needs a path", "write folder:/path/to/images")
        return FolderDataset(path, resolution, resize_policy, alpha)
    if os.path.isdir(spec):
        raise InputError(f"{spec!r} is a directory, but dataset specs name their kind",
                         f"write folder:{spec}")
    raise UnknownNameError("dataset", spec, [*_BUILTIN, "folder:PATH", "hf:NAME_OR_PATH[:split]"])


def list_datasets() -> list[dict[str, Any]]:
    """The dataset kinds the CLI can name, with a one-line summary each (for ``inpaintbench datasets``)."""
    return [
        {"spec": "samples", "n": len(SAMPLE_WINDOWS), "summary": _BUILTIN["samples"]},
        {"spec": "folder:PATH", "n": None,
         "summary": "every PNG/JPEG/WebP below PATH (recursive, sorted; id = relative path, no extension)"},
        {"spec": "hf:NAME_OR_PATH[:split]", "n": None,
         "summary": "a Hugging Face dataset (hub name, cached when offline, or a save_to_disk folder); "
                    "--hf-image-column, --hf-filter COLUMN=LABEL, --hf-id-column (pip install inpaintbench[hf])"},
    ]
