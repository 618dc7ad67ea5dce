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

import hashlib
import os
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# The base class, the resize policies and the samples' images live in their own modules; every name
# is re-exported here for the callers of its old location (hf_data, train/data, tests).
from inpaintbench.dataset_base import Dataset
from inpaintbench.errors import InputError, UnknownNameError
from inpaintbench.images import (  # noqa: F401
    ALPHA_POLICIES,
    IMAGE_EXTENSIONS,  # one list for every folder input
    may_have_alpha,
    probe_image,
    read_image,
)
from inpaintbench.resize_policies import (  # noqa: F401
    _SIZE_FIX,
    PAD_MODE,
    RESIZE_FILTER,
    RESIZE_POLICIES,
    ResizePolicyWarning,
    _announce,
    _center_crop,
    _check_args,
    _resize,
    apply_policy,
    plan_geometry,
)
from inpaintbench.sample_images import (  # noqa: F401
    _DATA_DIRS,
    _DISTRIBUTIONS,
    SAMPLE_LICENSES,
    SAMPLE_SOURCES,
    SAMPLE_WINDOWS,
    SAMPLES_DIGEST_TAG,
    _build_samples,
    _load_source,
    _source_path,
)

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


# ----------------------------------------------------------------------------------------------------
# samples: the embedded default set


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
