"""Training data: ``data split`` (prepare + hash train/val/test lists) and the training image sampler.

Everything random is a pure function of ``(seed, global sample index k)``: which image sample ``k``
is (a seeded permutation per epoch), its crop offset and flip, and its mask (index ``k`` of the
training mask protocol). So a resumed run draws exactly the samples the uninterrupted run would
have drawn, whatever the number of processes, and there is no RNG state to save.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import threading
import uuid
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inpaintbench.errors import InputError
from inpaintbench.results import atomic_write_json

SPLITS_FORMAT = "inpaintbench-splits"
SPLITS_VERSION = 1
SPLITS_FILE = "splits.json"
SPLIT_NAMES = ("train", "val", "test")

# Stream tags, so that data, noise and augmentation draws never share a stream.
_TAG_ORDER = 0x0D17A
_TAG_CROP = 0xC209


class DataWarning(UserWarning):
    """Some training or split images were skipped (corrupt, unreadable, too small)."""


def sample_rng(*entropy: int) -> np.random.Generator:
    """A private numpy generator for one draw site (entropy = tags, seed, indices)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(e) for e in entropy])))


# --------------------------------------------------------------------------------------------------
# data split


@dataclass
class SplitResult:
    out: Path
    counts: dict[str, int]
    skipped: list[dict[str, str]]
    duplicates: int
    manifest: dict[str, Any] = field(repr=False, default_factory=dict)


def parse_ratios(text: str | Sequence[float]) -> tuple[float, float, float]:
    """``"0.85,0.10,0.05"`` -> (0.85, 0.1, 0.05); must be three non-negative numbers summing to 1."""
    try:
        values = [float(v) for v in (text.split(",") if isinstance(text, str) else text)]
    except ValueError:
        raise InputError(f"--ratios {text!r} is not a list of numbers", "e.g. --ratios 0.85,0.10,0.05") from None
    if len(values) != 3 or any(not math.isfinite(v) or v < 0 for v in values):
        raise InputError(f"--ratios needs three non-negative numbers (train,val,test), got {text!r}",
                         "e.g. --ratios 0.85,0.10,0.05")
    if abs(sum(values) - 1.0) > 1e-6:
        raise InputError(f"--ratios must sum to 1, got {sum(values):.6g}", "e.g. --ratios 0.85,0.10,0.05")
    return values[0], values[1], values[2]


def split_counts(n: int, ratios: Sequence[float]) -> list[int]:
    """Exact split sizes summing to ``n`` (largest remainder; ties go to the earlier split)."""
    raw = [n * r for r in ratios]
    counts = [math.floor(x) for x in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def _prepare_one(args: tuple[str, str, int, str, str, str]) -> dict[str, Any]:
    """Read, bring to R x R by the policy, write a staged PNG; returns a record or the skip reason.

    Runs in worker processes: everything is passed by value, warnings are returned as text.
    """
    image_id, path, resolution, policy, alpha, staged = args
    from inpaintbench.datasets import apply_policy
    from inpaintbench.images import array_sha256, read_image, write_png

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            img = read_image(path, alpha=alpha)
        except InputError as e:
            return {"id": image_id, "source": path, "skip": "unreadable", "reason": e.message}
        try:
            img = apply_policy(img, resolution, policy, name=path)
        except InputError as e:
            return {"id": image_id, "source": path, "skip": "size", "reason": e.message}
        write_png(staged, img)
    return {"id": image_id, "source": path, "pixels_sha256": array_sha256(img),
            "notes": sorted({str(w.message).replace(f"{path}: ", "") for w in caught})}


def split_folder(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    ratios: Sequence[float] = (0.85, 0.10, 0.05),
    seed: int = 123,
    resolution: int = 256,
    resize_policy: str = "center-crop",
    alpha: str = "refuse",
    workers: int = 1,
    overwrite: bool = False,
) -> SplitResult:
    """Prepare a folder of images for training: ``OUT/{train,val,test}/<id>.png`` + ``OUT/splits.json``.

    Each image is read once, brought to ``resolution`` x ``resolution`` by ``resize_policy`` (the same
    policies as ``folder:`` datasets; nothing is resampled unless the policy says so) and written as
    PNG. Unreadable files and, under ``center-crop``, images smaller than the resolution are skipped
    with a count and a :class:`DataWarning`.

    Assignment: images are grouped by the sha256 of their prepared pixels (so exact duplicates can
    never straddle train and test), groups are ordered by ``sha256(seed, pixel hash)``, and the
    ordered list is cut into exact sizes (largest remainder of ``n * ratio``). The result depends only
    on the image contents, the seed and the ratios, not on file order or names.

    The folder appears atomically (built under a temporary name, then renamed).
    """
    from inpaintbench.datasets import RESIZE_POLICIES, scan_image_folder
    from inpaintbench.images import file_sha256

    ratios = parse_ratios(ratios)
    if resize_policy not in RESIZE_POLICIES:
        raise InputError(f"unknown resize policy {resize_policy!r}", f"use one of: {', '.join(RESIZE_POLICIES)}")
    src_path = Path(src).expanduser()
    if not src_path.is_dir():
        raise InputError(f"{src_path}: not a directory", "pass the folder that holds your images")
    src_path = src_path.resolve()
    out_path = Path(out).expanduser().resolve()
    if out_path == src_path or src_path in out_path.parents:
        raise InputError(f"--out {out_path} is inside the source folder {src_path}",
                         "write the splits somewhere else")
    if out_path.exists() and not overwrite:
        raise InputError(f"{out_path} already exists", "choose another --out or pass --overwrite")
    found = scan_image_folder(src_path)
    if not found:
        raise InputError(f"{src_path}: no images found", "point it at a folder of PNG/JPEG/WebP files")

    tmp = out_path.parent / f".{out_path.name}.tmp-{uuid.uuid4().hex[:8]}"
    stage = tmp / "_staged"
    stage.mkdir(parents=True)
    try:
        jobs = [(image_id, str(path), resolution, resize_policy, alpha, str(stage / f"{i:08d}.png"))
                for i, (image_id, path) in enumerate(found)]
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                records = list(pool.map(_prepare_one, jobs, chunksize=16))
        else:
            records = [_prepare_one(j) for j in jobs]
        for rec, job in zip(records, jobs, strict=True):
            rec["staged"] = job[5]
        good = [r for r in records if "skip" not in r]
        skipped = [{"id": r["id"], "source": str(Path(r["source"]).relative_to(src_path)), "kind": r["skip"],
                    "reason": r["reason"]} for r in records if "skip" in r]
        if not good:
            raise InputError(f"{src_path}: none of the {len(found)} images could be used "
                             f"(first problem: {skipped[0]['reason']})", "check the files and --resize-policy")

        groups: dict[str, list[dict[str, Any]]] = {}
        for r in good:
            groups.setdefault(r["pixels_sha256"], []).append(r)
        order = sorted(groups, key=lambda h: hashlib.sha256(f"{seed}\0{h}".encode()).hexdigest())
        targets = split_counts(len(good), ratios)
        assigned: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLIT_NAMES}
        bounds = np.cumsum(targets)
        placed = 0
        for h in order:
            # A duplicate group goes where its first member would go, so copies stay together.
            split = SPLIT_NAMES[int(np.searchsorted(bounds, placed, side="right"))] if placed < len(good) \
                else SPLIT_NAMES[-1]
            assigned[split].extend(groups[h])
            placed += len(groups[h])

        manifest_splits: dict[str, list[dict[str, Any]]] = {}
        for name in SPLIT_NAMES:
            rows = []
            for r in sorted(assigned[name], key=lambda r: r["id"]):
                rel = f"{name}/{r['id']}.png"
                dst = tmp / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(r["staged"], dst)
                row = {"id": r["id"], "file": rel, "sha256": file_sha256(dst), "pixels_sha256": r["pixels_sha256"],
                       "source": str(Path(r["source"]).relative_to(src_path))}
                if r["notes"]:
                    row["notes"] = r["notes"]
                rows.append(row)
            (tmp / name).mkdir(exist_ok=True)
            manifest_splits[name] = rows
        shutil.rmtree(stage)
        counts = {name: len(rows) for name, rows in manifest_splits.items()}
        manifest = {
            "format": SPLITS_FORMAT,
            "version": SPLITS_VERSION,
            "source": str(src_path),
            "seed": seed,
            "ratios": list(ratios),
            "resolution": resolution,
            "resize_policy": resize_policy,
            "alpha": alpha,
            "assignment": "group by sha256 of prepared pixels; order groups by sha256('<seed>\\0<pixel hash>'); "
                          "cut into exact sizes (largest remainder of n*ratio); duplicates stay together",
            "n_source_files": len(found),
            "n_images": len(good),
            "counts": counts,
            "duplicates": len(good) - len(groups),
            "skipped": skipped,
            "digests": {name: list_digest(rows) for name, rows in manifest_splits.items()},
            "digest_method": "sha256 over 'id NUL sha256(png file)' lines, sorted by id",
            "splits": manifest_splits,
        }
        atomic_write_json(tmp / SPLITS_FILE, manifest)
        if out_path.exists():
            old = out_path.parent / f".{out_path.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(out_path, old)
            os.replace(tmp, out_path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            out_path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, out_path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if skipped:
        kinds = {k: sum(1 for s in skipped if s["kind"] == k) for k in ("unreadable", "size")}
        warnings.warn(f"{src_path}: skipped {len(skipped)} of {len(found)} images ({kinds['unreadable']} "
                      f"unreadable, {kinds['size']} too small for {resize_policy}); first: {skipped[0]['source']}: "
                      f"{skipped[0]['reason']}; all listed in {out_path / SPLITS_FILE}", DataWarning, stacklevel=2)
    return SplitResult(out_path, counts, skipped, manifest["duplicates"], manifest)


def list_digest(rows: Sequence[dict[str, Any]]) -> str:
    h = hashlib.sha256(b"inpaintbench-split-v1\n")
    for r in sorted(rows, key=lambda r: r["id"]):
        h.update(f"{r['id']}\0{r['sha256']}\n".encode())
    return h.hexdigest()


def read_splits(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``splits.json`` of a split folder (or of the folder containing a split)."""
    p = Path(path)
    for cand in (p / SPLITS_FILE, p.parent / SPLITS_FILE, p):
        if cand.is_file() and cand.name == SPLITS_FILE:
            data = json.loads(cand.read_text())
            if data.get("format") != SPLITS_FORMAT:
                raise InputError(f"{cand} is not an inpaintbench splits file", "re-create it with `data split`")
            return data
    raise InputError(f"no {SPLITS_FILE} at {p}", "create one with `inpaintbench data split`")


# --------------------------------------------------------------------------------------------------
# training images


class TrainImages:
    """The training images of one folder, verified once, sampled by global sample index.

    ``sample(k)`` returns sample ``k`` of the endless training stream: epoch ``k // n`` visits every
    image once in a seeded random order; each sample gets a random ``resolution`` crop (images
    smaller than that are first padded at the bottom/right with OpenCV's ``BORDER_REFLECT`` (numpy
    ``symmetric``), as MAT's loader does; MAT never
    resizes training images) and, with ``xflip``, a horizontal flip with probability 1/2 (the
    official ``--mirror`` doubles the dataset with flipped copies instead: same distribution).
    """

    def __init__(self, root: str | os.PathLike[str], resolution: int, seed: int, xflip: bool = True,
                 alpha: str = "refuse"):
        from inpaintbench.datasets import scan_image_folder
        from inpaintbench.images import read_image

        path = Path(root).expanduser()
        if not path.is_dir():
            raise InputError(f"--data {path}: not a directory", "pass a folder of training images "
                             "(e.g. SPLITS/train from `inpaintbench data split`)")
        self.root = path.resolve()
        self.resolution, self.seed, self.xflip, self.alpha = resolution, seed, xflip, alpha
        found = scan_image_folder(self.root)
        ids, paths, skipped = [], [], []
        h = hashlib.sha256(b"inpaintbench-train-v1\n")
        sizes: dict[str, int] = {}
        for image_id, p in found:
            try:
                data = p.read_bytes()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    img = read_image(p, alpha=alpha)
            except (InputError, OSError) as e:
                skipped.append((str(p), getattr(e, "message", str(e))))
                continue
            ids.append(image_id)
            paths.append(p)
            h.update(f"{image_id}\0{hashlib.sha256(data).hexdigest()}\n".encode())
            key = "exact" if img.shape[:2] == (resolution, resolution) else (
                "crop" if min(img.shape[:2]) >= resolution else "pad")
            sizes[key] = sizes.get(key, 0) + 1
        self.ids, self.paths, self.skipped = ids, paths, skipped
        self.geometry_counts = sizes
        self.digest = h.hexdigest()
        if skipped:
            warnings.warn(f"{self.root}: skipped {len(skipped)} unreadable image(s) of {len(found)}; first: "
                          f"{skipped[0][0]}: {skipped[0][1]}", DataWarning, stacklevel=2)
        # (epoch, permutation) in one attribute, replaced as a whole under a lock, so that threads
        # sampling different epochs never see one epoch's number with another's permutation.
        self._perm_cache: tuple[int, np.ndarray] | None = None
        self._perm_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.ids)

    def check_batch(self, batch: int) -> None:
        if len(self) < batch:
            raise InputError(f"--data {self.root}: {len(self)} usable image(s), fewer than one batch of {batch}"
                             + (f" ({len(self.skipped)} skipped as unreadable)" if self.skipped else ""),
                             "add images or lower --batch")

    def describe(self) -> dict[str, Any]:
        return {"root": str(self.root), "n": len(self), "digest": self.digest,
                "digest_method": "sha256 over 'id NUL sha256(file bytes)' lines, sorted by id",
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
                "geometry_counts": self.geometry_counts,
                "augmentation": "random crop (BORDER_REFLECT pad bottom/right if smaller)"
                                + (" + x-flip p=0.5" if self.xflip else "")}

    def order(self, epoch: int) -> np.ndarray:
        """The seeded visiting order of ``epoch`` (thread-safe; the last epoch's order is cached)."""
        cached = self._perm_cache
        if cached is not None and cached[0] == epoch:
            return cached[1]
        with self._perm_lock:
            cached = self._perm_cache
            if cached is None or cached[0] != epoch:
                cached = (epoch, sample_rng(_TAG_ORDER, self.seed, epoch).permutation(len(self)))
                self._perm_cache = cached
        return cached[1]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_perm_lock")  # data-loader workers get their own
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._perm_lock = threading.Lock()

    def index_of(self, k: int) -> int:
        epoch, pos = divmod(int(k), len(self))
        return int(self.order(epoch)[pos])

    def sample(self, k: int) -> np.ndarray:
        """uint8 [R, R, 3] training sample ``k`` (see the class docstring)."""
        from inpaintbench.images import read_image

        i = self.index_of(k)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = read_image(self.paths[i], alpha=self.alpha)
        r = self.resolution
        h, w = img.shape[:2]
        if h < r or w < r:
            # OpenCV BORDER_REFLECT (edge pixel repeated: numpy "symmetric"), bottom/right only, as
            # MAT's datasets/dataset_256.py pads images smaller than the crop.
            img = np.pad(img, ((0, max(0, r - h)), (0, max(0, r - w)), (0, 0)), mode="symmetric")
            h, w = img.shape[:2]
        rng = sample_rng(_TAG_CROP, self.seed, k)
        y = int(rng.integers(0, h - r + 1))
        x = int(rng.integers(0, w - r + 1))
        out = img[y:y + r, x:x + r]
        if self.xflip and rng.random() < 0.5:
            out = out[:, ::-1]
        return np.ascontiguousarray(out)
