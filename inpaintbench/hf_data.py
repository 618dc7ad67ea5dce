"""``hf:NAME_OR_PATH[:split]``: a Hugging Face ``datasets`` dataset as evaluation images.

* ``NAME_OR_PATH`` is a ``save_to_disk`` directory (read with ``datasets.load_from_disk``), another
  local directory ``datasets.load_dataset`` understands (a cloned hub repository, an image folder),
  or a hub name such as ``huggan/wikiart``. Offline (``--offline``, ``HF_DATASETS_OFFLINE=1`` or
  ``HF_HUB_OFFLINE=1``) a hub name is read from the local ``datasets`` cache only; when it is not
  there the error names the cache and the command that downloads it.
* The image column is the one ``Image`` feature (``--hf-image-column`` when there are several).
* ``--hf-filter COLUMN=VALUE`` (repeatable) keeps the rows whose label matches: ClassLabel columns
  are matched by label *name* (``genre=portrait``), other columns by value. Filters on one column are
  OR-ed, filters on different columns AND-ed.
* Ids come from a stated key: the row index in the split, before filtering (default; zero-padded),
  or ``--hf-id-column`` (its values, which must be unique). Either way they are stable under filters.
* The digest is sha256 over ``id NUL sha256(encoded image bytes)`` lines in order, so it covers the
  bytes of every image used (and changes with the filters). Images are decoded by Pillow here, not by
  ``datasets``, with the same alpha policy as ``folder:``.

``datasets`` is an optional extra (``pip install inpaintbench[hf]``); it is imported only here.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inpaintbench.dataset_base import Dataset
from inpaintbench.errors import InputError
from inpaintbench.resize_policies import (
    _SIZE_FIX,
    RESIZE_FILTER,
    _announce,
    _check_args,
    apply_policy,
    plan_geometry,
)

PREFIX = "hf:"
_SPLIT = re.compile(r"^[A-Za-z0-9_.\-]+$")
#: files ``save_to_disk`` writes (a Dataset, a DatasetDict)
_SAVED_MARKERS = ("state.json", "dataset_dict.json")


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``hf:SOURCE[:split]`` -> (source, split or None). An existing directory wins over a split suffix."""
    body = spec[len(PREFIX):] if spec.startswith(PREFIX) else spec
    if not body:
        raise InputError("hf: needs a dataset name or directory", "write e.g. hf:huggan/wikiart:train")
    if os.path.isdir(os.path.expanduser(body)):
        return body, None
    source, sep, split = body.rpartition(":")
    if sep and source and _SPLIT.match(split):
        return source, split
    return body, None


def parse_filters(items: str | Sequence[str] | Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    """``["genre=portrait", ...]`` or ``{"genre": "portrait" | [...]}`` -> sorted (column, value) pairs."""
    if not items:
        return ()
    out: list[tuple[str, str]] = []
    if isinstance(items, Mapping):
        for col, value in items.items():
            for v in value if isinstance(value, (list, tuple, set)) else [value]:
                out.append((str(col), str(v)))
    else:
        for item in [items] if isinstance(items, str) else items:
            col, sep, value = str(item).partition("=")
            if not sep or not col.strip() or not value.strip():
                raise InputError(f"--hf-filter {item!r} is not COLUMN=VALUE", "write e.g. --hf-filter genre=portrait")
            out.append((col.strip(), value.strip()))
    return tuple(sorted(set(out)))


def dataset_options(data: str, image_column: str | None = None,
                    filters: Sequence[str] | Mapping[str, Any] | None = None,
                    id_column: str | None = None) -> dict[str, Any]:
    """``RunConfig.dataset_options`` in canonical form (filters sorted, unset keys absent); {} when none
    is set, and an error when one is set for a dataset that is not ``hf:``."""
    options: dict[str, Any] = {}
    if image_column:
        options["image_column"] = image_column
    if filters:
        options["filters"] = [f"{c}={v}" for c, v in parse_filters(filters)]
    if id_column:
        options["id_column"] = id_column
    if options and not data.startswith(PREFIX):
        raise InputError(f"the hf options ({', '.join(options)}) need an hf: dataset, not {data!r}",
                         "use data='hf:NAME_OR_PATH[:split]' or drop them")
    return options


def _is_offline(offline: bool | None) -> bool:
    if offline:
        return True
    return any(os.environ.get(k, "").upper() in ("1", "ON", "YES", "TRUE")
               for k in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE", "INPAINTBENCH_OFFLINE"))


@contextlib.contextmanager
def _offline_mode(on: bool) -> Iterator[None]:
    """Make ``datasets``/``huggingface_hub`` offline for the duration (they read the env at import)."""
    if not on:
        yield
        return
    import datasets.config as dc
    import huggingface_hub.constants as hc

    saved = (dc.HF_HUB_OFFLINE, hc.HF_HUB_OFFLINE, os.environ.get("HF_HUB_OFFLINE"))
    dc.HF_HUB_OFFLINE = hc.HF_HUB_OFFLINE = True
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        dc.HF_HUB_OFFLINE, hc.HF_HUB_OFFLINE = saved[0], saved[1]
        if saved[2] is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved[2]


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise InputError("hf: datasets need the `datasets` package", 'pip install "inpaintbench[hf]"') from None
    return datasets


def _pick_split(obj: Any, split: str | None, where: str) -> Any:
    """A Dataset from what ``datasets`` returned (a Dataset, or a DatasetDict needing a split)."""
    if hasattr(obj, "keys") and not hasattr(obj, "features"):  # DatasetDict
        names = list(obj.keys())
        if split is None:
            if len(names) == 1:
                return obj[names[0]]
            raise InputError(f"{where} has splits {', '.join(names)}", f"name one: hf:{where}:{names[0]}")
        if split not in names:
            raise InputError(f"{where} has no split {split!r} (it has {', '.join(names)})",
                             f"use one of: {', '.join(names)}")
        return obj[split]
    if split is not None and getattr(obj, "split", None) not in (None, split):
        raise InputError(f"{where} holds the split {obj.split!r}, not {split!r}", f"write hf:{where} without :{split}")
    return obj


def open_hf(source: str, split: str | None, offline: bool | None = None) -> tuple[Any, dict[str, Any]]:
    """The ``datasets.Dataset`` behind a spec, and how it was found (for the manifest)."""
    datasets = _import_datasets()
    path = Path(os.path.expanduser(source))
    off = _is_offline(offline)
    with _offline_mode(off), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if path.is_dir() and any((path / m).is_file() for m in _SAVED_MARKERS):
            obj = datasets.load_from_disk(str(path))
            return _pick_split(obj, split, source), {"kind": "save_to_disk directory", "path": str(path.resolve())}
        if path.is_dir():
            obj = datasets.load_dataset(str(path), split=split)
            return _pick_split(obj, split, source), {"kind": "local data directory", "path": str(path.resolve())}
        try:
            obj = datasets.load_dataset(source, split=split)
        except Exception as exc:  # datasets raises FileNotFoundError, ConnectionError, DatasetNotFoundError...
            cache = datasets.config.HF_DATASETS_CACHE
            split_arg = f", split={split!r}" if split else ""
            fetch = f"python -c \"import datasets; datasets.load_dataset({source!r}{split_arg})\""
            if off:
                raise InputError(f"hf:{source} is not in the local datasets cache ({cache}) and inpaintbench is "
                                 f"offline ({type(exc).__name__})",
                                 f"download it once while online: {fetch} (or set HF_DATASETS_CACHE to where it "
                                 "is cached)") from None
            raise InputError(f"cannot load hf:{source}: {type(exc).__name__}: {exc}",
                             f"check the name on huggingface.co/datasets; download with: {fetch}") from None
    found = {"kind": "hub", "name": source, "cache": str(datasets.config.HF_DATASETS_CACHE), "offline": off}
    return _pick_split(obj, split, source), found


def image_column(features: Mapping[str, Any], wanted: str | None) -> str:
    """The Image column: ``wanted`` (checked), or the only Image feature."""
    import datasets

    images = [k for k, f in features.items() if isinstance(f, datasets.Image)]
    if wanted is not None:
        if wanted not in features:
            raise InputError(f"no column {wanted!r} (columns: {', '.join(features)})", "pass --hf-image-column NAME")
        if not isinstance(features[wanted], datasets.Image):
            raise InputError(f"column {wanted!r} is {type(features[wanted]).__name__}, not an Image feature",
                             f"use one of: {', '.join(images) or '(none)'}")
        return wanted
    if len(images) == 1:
        return images[0]
    if not images:
        raise InputError(f"the dataset has no Image column (columns: {', '.join(features)})",
                         "cast the column to datasets.Image() before saving it, or pass --hf-image-column")
    raise InputError(f"the dataset has several Image columns ({', '.join(images)})",
                     f"pass --hf-image-column {images[0]}")


def _filter_values(feature: Any, column: str, values: list[str]) -> set[Any]:
    """The stored values a filter on ``column`` accepts (ClassLabel names -> their integers)."""
    import datasets

    if isinstance(feature, datasets.ClassLabel):
        out = set()
        for v in values:
            if v in feature.names:
                out.add(feature.str2int(v))
            else:
                shown = ", ".join(feature.names[:20]) + (" ..." if len(feature.names) > 20 else "")
                raise InputError(f"--hf-filter {column}={v}: {v!r} is not a label of {column} ({shown})",
                                 "use one of the label names")
        return out
    dtype = getattr(feature, "dtype", "string")
    if isinstance(feature, datasets.Value) and ("int" in dtype or dtype == "bool"):
        try:
            return {int(v) if dtype != "bool" else v.lower() in ("1", "true", "yes") for v in values}
        except ValueError:
            raise InputError(f"--hf-filter {column}: {values} are not integers", "compare with a number") from None
    if isinstance(feature, datasets.Value):
        return set(values)
    raise InputError(f"--hf-filter {column}: cannot filter on a {type(feature).__name__} column",
                     "filter on a ClassLabel, integer or string column")


def select_rows(ds: Any, filters: Sequence[tuple[str, str]]) -> list[int]:
    """Row indices (in split order) that pass every filter."""
    if not filters:
        return list(range(len(ds)))
    by_column: dict[str, list[str]] = {}
    for col, value in filters:
        by_column.setdefault(col, []).append(value)
    keep = np.ones(len(ds), dtype=bool)
    for col, values in by_column.items():
        if col not in ds.features:
            raise InputError(f"--hf-filter {col}: no such column (columns: {', '.join(ds.features)})",
                             "filter on one of the dataset's label columns")
        accepted = _filter_values(ds.features[col], col, values)
        column = ds.data.column(col).to_pylist() if ds._indices is None else list(ds.select_columns([col])[col])
        keep &= np.fromiter((v in accepted for v in column), dtype=bool, count=len(ds))
    rows = np.flatnonzero(keep).tolist()
    if not rows:
        raise InputError(f"no rows pass the filters {', '.join(f'{c}={v}' for c, v in filters)}",
                         "check the label names (ClassLabel columns are matched by name)")
    return rows


def row_ids(ds: Any, rows: list[int], id_column: str | None) -> list[str]:
    """Stable ids: zero-padded row index in the split (before filtering), or the id column's values."""
    if id_column is None:
        width = max(6, len(str(max(len(ds) - 1, 0))))
        return [f"{i:0{width}d}" for i in rows]
    if id_column not in ds.features:
        raise InputError(f"--hf-id-column {id_column}: no such column (columns: {', '.join(ds.features)})",
                         "name a column with one unique value per row, or leave it out (row index)")
    values = ds.select_columns([id_column])
    ids = [str(values[i][id_column]) for i in rows]
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise InputError(f"--hf-id-column {id_column}: value {i!r} occurs twice", "choose a column of unique ids")
        seen.add(i)
    return ids


def decode_image(entry: Mapping[str, Any], label: str, alpha: str) -> tuple[np.ndarray, bytes]:
    """uint8 RGB [H,W,3] and the encoded bytes of an undecoded ``datasets.Image`` entry."""
    from PIL import Image

    from inpaintbench.images import _to_rgb

    data = _encoded(entry, label)
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as e:  # Pillow raises many types for corrupt data
        raise InputError(f"{label}: corrupt image ({type(e).__name__}: {e})", "remove the row or filter it out") from e
    with img:
        return _to_rgb(Path(label), img, alpha), data



class HFDataset(Dataset):
    """Rows of a ``datasets.Dataset`` (built by :func:`load_hf_dataset`)."""

    name = "hf"

    def __init__(self, spec: str, raw: Any, column: str, rows: list[int], ids: list[str], resolution: int,
                 resize_policy: str, alpha: str, digest: str, details: dict[str, Any]):
        super().__init__(spec, ids, resolution, resize_policy)
        self._raw, self._column, self._rows = raw, column, rows
        self.alpha = alpha
        self._digest_value = digest
        self._details = details

    def _label(self, i: int) -> str:
        return f"{self.spec}[{self.ids[i]}]"

    def _load(self, i: int) -> np.ndarray:
        img, _ = decode_image(self._raw[self._rows[i]][self._column], self._label(i), self.alpha)
        return apply_policy(img, self.resolution, self.resize_policy, name=self._label(i))

    def _digest(self) -> str:
        return self._digest_value

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(self._details)
        d.update({"digest_method": "sha256 over 'id NUL sha256(encoded image bytes)' lines in order",
                  "alpha": self.alpha, "resize_filter": RESIZE_FILTER})
        return d


def _encoded(entry: Mapping[str, Any], label: str) -> bytes:
    data = entry.get("bytes")
    if data is None and entry.get("path"):
        data = Path(entry["path"]).read_bytes()
    if data is None:
        raise InputError(f"{label}: the image has neither bytes nor a readable path", "re-save the dataset")
    return data


def load_hf_dataset(spec: str, resolution: int = 256, resize_policy: str = "center-crop", alpha: str = "refuse",
                    image_column_name: str | None = None, filters: Sequence[str] | Mapping[str, Any] | None = None,
                    id_column: str | None = None, offline: bool | None = None) -> HFDataset:
    """Open ``hf:...`` as an :class:`inpaintbench.datasets.Dataset` (see the module docstring).

    One pass over the encoded bytes computes the digest and checks every image's size against the
    resize policy (headers only), so a run fails at the start rather than hours in.
    """
    from collections import Counter

    from PIL import Image

    from inpaintbench.images import may_have_alpha

    _check_args(resolution, resize_policy, alpha)
    source, split = parse_spec(spec)
    ds, found = open_hf(source, split, offline)
    datasets = _import_datasets()
    column = image_column(ds.features, image_column_name)
    pairs = parse_filters(filters)
    rows = select_rows(ds, pairs)
    ids = row_ids(ds, rows, id_column)
    # Undecoded: {"bytes", "path"} per row (a metadata-only cast; nothing is written).
    raw = ds.cast_column(column, datasets.Image(decode=False)).select_columns([column])

    h = hashlib.sha256(b"inpaintbench-hf-v1\n")
    plans: Counter[str] = Counter()
    n_aspect = 0
    for image_id, r in zip(ids, rows, strict=True):
        label = f"{spec}[{image_id}]"
        entry = raw[r][column]
        data = _encoded(entry, label)
        h.update(f"{image_id}\0{hashlib.sha256(data).hexdigest()}\n".encode())
        try:
            with Image.open(io.BytesIO(data)) as im:
                (w, hgt), mode = im.size, im.mode
        except Exception as e:  # Pillow raises many types for a corrupt header
            raise InputError(f"{label}: corrupt image ({type(e).__name__})", "remove the row or filter it out") from e
        plan = plan_geometry(w, hgt, resolution, resize_policy)
        if plan == "too-small":
            raise InputError(f"{label}: {w}x{hgt} is smaller than {resolution}x{resolution} and the resize "
                             "policy is center-crop", _SIZE_FIX)
        if alpha == "refuse" and may_have_alpha(mode):
            decode_image(entry, label, alpha)  # raises on real transparency
        plans[plan] += 1
        n_aspect += int(resize_policy == "resize" and w != hgt)
    counts = dict(sorted(plans.items()))
    details = {
        "source": found, "split": split, "image_column": column, "n_rows_in_split": len(ds),
        "filters": [f"{c}={v}" for c, v in pairs],
        "filter_rule": "ClassLabel columns matched by label name; OR within a column, AND across columns",
        "ids": f"column {id_column}" if id_column else "row index in the split, before filtering",
        "geometry_counts": counts,
    }
    out = HFDataset(spec, raw, column, rows, ids, resolution, resize_policy, alpha, h.hexdigest(), details)
    _announce(spec, counts, n_aspect, len(ids))
    return out
