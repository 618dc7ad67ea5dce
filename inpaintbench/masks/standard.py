"""The standard mask sets: committed definitions, a local cache, and the one place where a mask-set
name (or folder) becomes a :class:`MaskSet` (:func:`resolve_mask_set`).

Each ``<name>.json`` definition fixes a protocol, version, seed and count and records the digest of the
resulting set (plus the digest of its first ``quick_check.n`` masks, for fast checks). The PNGs are
never committed: :func:`resolve_mask_set` rebuilds a set into the cache (``$INPAINTBENCH_HOME/masks``
or ``~/.cache/inpaintbench/masks``) and refuses it when its digest differs from the committed one.

Definitions are looked up in ``$INPAINTBENCH_MASK_DEFINITIONS`` if set, then in the package data
folder ``inpaintbench/masks/definitions/`` (what a wheel installs, via ``[tool.setuptools.package-data]``),
then in a source checkout's top-level ``masks/`` folder. The first folder holding ``*.json`` wins.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from inpaintbench.atomic import atomic_write_text
from inpaintbench.errors import InpaintBenchError, InputError, UnknownNameError
from inpaintbench.home import inpaintbench_home
from inpaintbench.masks.maskset import (
    FILE_POLARITY,
    MaskSet,
    MaskSetIntegrityError,
    build_mask_set,
    library_versions,
)
from inpaintbench.masks.protocols import get_protocol

DEFAULT_N = 1000
DEFAULT_SEED = 0
QUICK_CHECK_N = 100


class DigestMismatchError(InpaintBenchError):
    """A rebuilt standard mask set whose digest differs from the committed definition."""


@dataclass(frozen=True)
class StandardDefinition:
    """One committed standard mask set (``masks/<name>.json``)."""

    name: str
    protocol: str
    version: int
    resolution: int
    seed: int
    n: int
    digest: str
    quick_check_n: int
    quick_check_digest: str
    hole_ratio: dict[str, Any]
    path: Path

    def expected_digest(self, n: int, seed: int) -> str | None:
        """The committed digest for ``(n, seed)``, or ``None`` when that variant is not committed."""
        if seed != self.seed:
            return None
        if n == self.n:
            return self.digest
        if n == self.quick_check_n:
            return self.quick_check_digest
        return None


def definitions_dir() -> Path:
    """Folder holding the ``<name>.json`` definitions (see module docstring for the search order)."""
    here = Path(__file__).resolve().parent
    candidates = [here / "definitions", here.parents[1] / "masks"]  # package data, then a checkout
    env = os.environ.get("INPAINTBENCH_MASK_DEFINITIONS")
    if env:
        candidates.insert(0, Path(env))
    for c in candidates:
        if c.is_dir() and any(c.glob("*.json")):
            return c
    return candidates[-1]


@lru_cache(maxsize=8)
def _load_definitions(folder: str) -> dict[str, StandardDefinition]:
    out = {}
    for p in sorted(Path(folder).glob("*.json")):
        d = json.loads(p.read_text(encoding="utf-8"))
        qc = d.get("quick_check") or {}
        out[d["name"]] = StandardDefinition(
            name=d["name"], protocol=d["protocol"], version=int(d["version"]),
            resolution=int(d["resolution"]), seed=int(d["seed"]), n=int(d["n"]), digest=d["digest"],
            quick_check_n=int(qc.get("n", 0)), quick_check_digest=qc.get("digest", ""),
            hole_ratio=d.get("hole_ratio", {}), path=p,
        )
    return out


def standard_definitions() -> dict[str, StandardDefinition]:
    """All committed standard mask sets by name."""
    return dict(_load_definitions(str(definitions_dir())))


def standard_names() -> list[str]:
    return sorted(standard_definitions())


def get_definition(name: str) -> StandardDefinition:
    defs = standard_definitions()
    if name not in defs:
        raise UnknownNameError("mask set", name, list(defs))
    return defs[name]


def cache_root() -> Path:
    """Where standard sets are built: ``$INPAINTBENCH_HOME/masks`` or ``~/.cache/inpaintbench/masks``."""
    return inpaintbench_home() / "masks"


def cache_path(name: str, n: int | None = None, seed: int | None = None) -> Path:
    """Cache folder of standard set ``name`` with ``n`` masks under ``seed`` (defaults: committed)."""
    d = get_definition(name)
    n = d.n if n is None else n
    seed = d.seed if seed is None else seed
    return cache_root() / f"{name}-v{d.version}-seed{seed}-n{n}"


def _matches(ms: MaskSet, d: StandardDefinition, n: int, seed: int) -> bool:
    m = ms._header
    return (m.get("protocol") == d.protocol and m.get("version") == get_protocol(d.protocol).version
            and m.get("seed") == seed and len(ms) == n)


def resolve_mask_set(name_or_path: str | os.PathLike, n: int | None = None, seed: int | None = None,
                     workers: int = 1, verify: bool = True) -> MaskSet:
    """A mask set from a standard name or a folder.

    * Folder (with ``manifest.json``): loaded (and verified unless ``verify=False``); ``n`` keeps the
      first ``n`` masks; ``seed`` is refused (a folder's masks are fixed).
    * Standard name: built into the cache when missing or damaged (``n``/``seed`` default to the
      committed definition). When ``(n, seed)`` is a committed variant, the digest must match the
      committed one, else :class:`DigestMismatchError`. Other variants are built and recorded but
      have nothing to be checked against.
    """
    text = str(name_or_path)
    if text.startswith("folder:"):  # the spelling of --data, accepted for masks too
        text = text[len("folder:"):]
    path = Path(text)
    defs = standard_definitions()
    if text not in defs:
        if not path.exists():
            raise UnknownNameError("mask set", text, list(defs))
        if path.is_dir() and not (path / "manifest.json").is_file():
            raise InputError(
                f"{path} is a folder of mask files, not an inpaintbench mask set (no manifest.json)",
                f"import it once with its polarity stated: `inpaintbench masks import {path} --hole-value 0|255 "
                f"--out {path.name}-set`, then pass --masks {path.name}-set",
            )
        if seed is not None:
            raise InputError(f"--seed does not apply to the mask folder {path}",
                             "drop --seed, or give a standard mask-set name")
        ms = MaskSet.load(path)
        if verify:
            ms.verify()
        return ms.head(n) if n is not None and n != len(ms) else ms
    d = defs[text]
    proto = get_protocol(d.protocol)
    if proto.version != d.version:
        raise DigestMismatchError(f"{d.path} was made with {d.protocol} version {d.version}, this "
                                  f"inpaintbench generates version {proto.version}",
                                  "update the definition with `masks build NAME --write-definition`")
    n = d.n if n is None else int(n)
    seed = d.seed if seed is None else int(seed)
    expected = d.expected_digest(n, seed)
    folder = cache_path(text, n, seed)
    on_exists = "keep"
    if (folder / "manifest.json").is_file():
        try:
            ms = MaskSet.load(folder)
            if not _matches(ms, d, n, seed):
                raise MaskSetIntegrityError(f"{folder} holds a different mask set", "rebuild")
            if verify:
                ms.verify()
            if expected is None or ms.digest == expected:
                return ms
            raise MaskSetIntegrityError(f"{folder} has digest {ms.digest}, expected {expected}", "rebuild")
        except MaskSetIntegrityError as e:
            warnings.warn(f"rebuilding cached mask set {text}: {e.message}", stacklevel=2)
            on_exists = "replace"
    ms = build_mask_set(proto, n, seed, folder, workers=workers, name=text, _on_exists=on_exists)
    if expected is not None and ms.digest != expected:
        raise DigestMismatchError(
            f"mask set {text} (n={n}, seed={seed}) built here has digest {ms.digest}, but {d.path.name} "
            f"commits {expected}: this environment generates different masks "
            f"(versions: {library_versions()})",
            "report it with the versions above; results on these masks are not comparable")
    return ms


def definition_record(name: str, protocol: str, ms_full: MaskSet, ms_quick: MaskSet) -> dict[str, Any]:
    """The JSON content of ``masks/<name>.json`` for a freshly built set (maintainers only)."""
    proto = get_protocol(protocol)
    summary = ms_full.manifest["hole_ratio_summary"]
    return {
        "name": name,
        "protocol": protocol,
        "version": proto.version,
        "resolution": proto.resolution,
        "seed": ms_full.seed,
        "n": len(ms_full),
        "digest": ms_full.digest,
        "quick_check": {"n": len(ms_quick), "digest": ms_quick.digest},
        "file_polarity": FILE_POLARITY,
        "hole_ratio": {k: v for k, v in summary.items() if k not in ("bins", "count")},
        "bins": summary["bins"],
        "parameters": proto.params,
        "source": proto.source,
        "built_with": library_versions(),
        "note": f"Masks are not committed; `inpaintbench masks build {name}` regenerates them and "
                "checks this digest.",
    }


def write_definition(name: str, protocol: str | None = None, n: int = DEFAULT_N, seed: int = DEFAULT_SEED,
                     folder: Path | None = None, workers: int = 1) -> Path:
    """(Re)write ``masks/<name>.json`` from a fresh in-memory build (maintainers only)."""
    protocol = protocol or name
    full = MaskSet.generate(protocol, n, seed, name=name)
    if workers > 1:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            full = build_mask_set(protocol, n, seed, Path(tmp) / "set", workers=workers, name=name)
            record = definition_record(name, protocol, full, MaskSet.generate(protocol, QUICK_CHECK_N, seed))
    else:
        record = definition_record(name, protocol, full, full.head(min(QUICK_CHECK_N, n)))
    out = (folder or definitions_dir()) / f"{name}.json"
    atomic_write_text(out, json.dumps(record, indent=2) + "\n")
    _load_definitions.cache_clear()
    return out
