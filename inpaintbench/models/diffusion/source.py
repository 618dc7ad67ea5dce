"""Where a diffusers pipeline comes from, checked before anything heavy loads.

``diffusers:<target>`` names either a local directory (``save_pretrained`` output, a cloned hub repo or a
hub-cache snapshot) or a hub id found in the Hugging Face cache. inpaintbench never downloads a pipeline
(several GB, behind the user's back): a hub id missing from the cache is a
:class:`~inpaintbench.errors.WeightsError` naming the cache folder and the download command. So
``HF_HUB_OFFLINE=1`` and a machine without internet behave the same.

The description records the repo id, the revision (the snapshot's commit) and the sha256 of every file the
pipeline loads (``model_index.json`` plus its component folders), cached by path, size, mtime, inode and
ctime in ``$INPAINTBENCH_HOME/cache/diffusers-sha256.json`` so that a rerun does not re-hash gigabytes.
Importing this module does not import torch or diffusers.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inpaintbench.errors import InputError, WeightsError

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
_COMMIT = re.compile(r"[0-9a-f]{40}")
#: files in component folders that do not change what the pipeline computes
_SKIP_SUFFIXES = (".md", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".lock", ".incomplete")


@dataclass
class PipelineSource:
    """A pipeline directory and what is known about its origin."""

    path: Path
    kind: str  # "local" or "hub-cache"
    repo_id: str | None = None
    revision: str | None = None
    index: dict[str, Any] = field(default_factory=dict)

    @property
    def class_name(self) -> str:
        return str(self.index.get("_class_name", ""))

    def components(self) -> list[str]:
        """Component folders named by ``model_index.json`` (``unet``, ``vae``...), skipping ``[null, null]``."""
        out = []
        for key, value in self.index.items():
            if key.startswith("_") or not isinstance(value, list) or len(value) != 2 or value[0] is None:
                continue
            out.append(key)
        return sorted(out)

    def component_config(self, component: str) -> dict[str, Any] | None:
        """``<component>/config.json`` as a dict, or None when absent/unreadable."""
        try:
            data = json.loads((self.path / component / "config.json").read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


# --------------------------------------------------------------------------- locating


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment at call time (``HF_HUB_CACHE``, ``HF_HOME``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.environ["HUGGINGFACE_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(home).expanduser() / "hub"


def repo_cache_folder(repo_id: str) -> Path:
    return hub_cache_dir() / ("models--" + repo_id.replace("/", "--"))


def _download_fix(repo_id: str, revision: str | None) -> str:
    rev = f" --revision {revision}" if revision and revision != "main" else ""
    return (f"run `hf download {repo_id}{rev}` (older huggingface_hub: `huggingface-cli download {repo_id}{rev}`) "
            f"on a machine with internet and copy {hub_cache_dir()} here, or pass a local directory: "
            "--model diffusers:/path/to/pipeline")


def _looks_like_path(target: str) -> bool:
    return target.startswith(("/", ".", "~")) or "\\" in target or target.count("/") > 1 or not _HUB_ID.fullmatch(
        target)


def _snapshot_from_cache(repo_id: str, revision: str) -> tuple[Path, str]:
    """(snapshot folder, commit) of ``repo_id`` at ``revision`` (a branch, tag or commit) from the cache only."""
    folder = repo_cache_folder(repo_id)
    missing = WeightsError(
        f"diffusers pipeline {repo_id!r} (revision {revision}) is not in the Hugging Face cache: no snapshot under "
        f"{folder} (inpaintbench never downloads pipelines)", _download_fix(repo_id, revision))
    if _COMMIT.fullmatch(revision):
        commit = revision
    else:
        try:
            commit = (folder / "refs" / revision).read_text().strip()
        except OSError:
            raise missing from None
    snap = folder / "snapshots" / commit
    if not (snap / "model_index.json").is_file():
        raise missing
    return snap, commit


def _local_revision(path: Path) -> tuple[str | None, str | None]:
    """(repo id, commit) when a local folder is a hub-cache snapshot or a git clone, else (None, None)."""
    real = path.resolve()
    if real.parent.name == "snapshots" and real.parent.parent.name.startswith("models--") and _COMMIT.fullmatch(
            real.name):
        return real.parent.parent.name[len("models--"):].replace("--", "/"), real.name
    head = real / ".git" / "HEAD"
    try:
        text = head.read_text().strip()
    except OSError:
        return None, None
    if text.startswith("ref:"):
        ref = text[4:].strip()
        try:
            text = (real / ".git" / ref).read_text().strip()
        except OSError:
            text = _packed_ref(real / ".git" / "packed-refs", ref) or ""
    return None, text if _COMMIT.fullmatch(text) else None


def _packed_ref(packed: Path, ref: str) -> str | None:
    try:
        for line in packed.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == ref:
                return parts[0]
    except OSError:
        pass
    return None


def locate(target: str, revision: str | None = None) -> PipelineSource:
    """The pipeline directory behind ``target`` (a local folder, else a hub id in the cache), with its index."""
    if not target:
        raise InputError("model 'diffusers:' needs a hub id or a directory",
                         "use --model diffusers:ORG/NAME or --model diffusers:/path/to/pipeline")
    local = Path(target).expanduser()
    if local.exists() or _looks_like_path(target):
        if not local.exists():
            raise InputError(f"diffusers pipeline directory {local} does not exist",
                             "pass a folder written by save_pretrained (holding model_index.json) or a hub id")
        if not local.is_dir():
            raise InputError(f"diffusers: {local} is a file, not a pipeline directory",
                             "pass the folder that holds model_index.json (single-file .ckpt/.safetensors "
                             "checkpoints: convert them with diffusers' from_single_file + save_pretrained)")
        if revision is not None:
            raise InputError(f"diffusers: revision={revision!r} applies to hub ids, not to the directory {local}",
                             "drop the revision option, or check out that revision into the folder")
        repo_id, commit = _local_revision(local)
        src = PipelineSource(local, "local", repo_id, commit)
    else:
        snap, commit = _snapshot_from_cache(target, revision or "main")
        src = PipelineSource(snap, "hub-cache", target, commit)
    src.index = read_index(src.path)
    return src


def read_index(path: Path) -> dict[str, Any]:
    index_file = path / "model_index.json"
    if not index_file.is_file():
        hint = ""
        if (path / "config.json").is_file():
            hint = " (it holds a single model's config.json, not a whole pipeline)"
        raise InputError(f"diffusers: {path} is not a diffusers pipeline directory: no model_index.json{hint}",
                         "pass the pipeline's root folder (save_pretrained output or a hub snapshot)")
    try:
        data = json.loads(index_file.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"diffusers: cannot read {index_file}: {exc}", "re-download or re-save the pipeline") from None
    if not isinstance(data, dict) or not data.get("_class_name"):
        raise InputError(f"diffusers: {index_file} has no _class_name", "re-download or re-save the pipeline")
    return data


def check_inpainting(src: PipelineSource) -> None:
    """Refuse a text-to-image UNet before loading gigabytes: inpainting UNets take the noisy latents, the
    masked image's latents and the mask (``2 * latent_channels + 1`` inputs, 9 for Stable Diffusion)."""
    unet = src.component_config("unet")
    vae = src.component_config("vae")
    if unet is None or vae is None:
        return
    latent = int(vae.get("latent_channels", 4))
    in_ch = int(unet.get("in_channels", 0))
    if in_ch == latent:
        raise InputError(
            f"diffusers: {src.path} ({src.class_name}) is a text-to-image pipeline (UNet in_channels={in_ch}), "
            "not an inpainting one (in_channels=9)",
            "use an inpainting checkpoint, e.g. diffusers:stable-diffusion-v1-5/stable-diffusion-inpainting or "
            "diffusers:diffusers/stable-diffusion-xl-1.0-inpainting-0.1")


# --------------------------------------------------------------------------- hashing


def pipeline_files(src: PipelineSource) -> list[Path]:
    """``model_index.json`` and every file of the component folders, sorted (what loading can read)."""
    files = [src.path / "model_index.json"]
    for comp in src.components():
        folder = src.path / comp
        if not folder.is_dir():
            continue
        for p in sorted(folder.rglob("*")):
            rel = p.relative_to(src.path)
            if any(part.startswith(".") for part in rel.parts) or p.name.endswith(_SKIP_SUFFIXES):
                continue
            if p.is_file():
                files.append(p)
    return files


def _hash_cache_file() -> Path:
    from inpaintbench.weights import inpaintbench_home

    return inpaintbench_home() / "cache" / "diffusers-sha256.json"


def _load_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_cache(path: Path, data: dict[str, Any]) -> None:
    """Atomic write; a read-only home only costs re-hashing next time."""
    from inpaintbench.atomic import atomic_write_text

    try:
        atomic_write_text(path, json.dumps(data, indent=0, sort_keys=True))
    except OSError:
        pass


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_files(src: PipelineSource, rehash: bool = False) -> list[dict[str, Any]]:
    """``[{file, size, sha256}]`` for :func:`pipeline_files`; unchanged files reuse the cached hash.

    The cache key is the resolved path (a hub-cache snapshot links to content-addressed blobs); a file is
    re-hashed when its size, mtime, inode or ctime changed, as :func:`inpaintbench.weights.cached_sha256` does.
    """
    cache_path = _hash_cache_file()
    cache = _load_cache(cache_path)
    changed = False
    out = []
    for p in pipeline_files(src):
        real = p.resolve()
        st = real.stat()
        key = str(real)
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]
        entry = cache.get(key)
        if rehash or not isinstance(entry, dict) or entry.get("stamp") != stamp or not entry.get("sha256"):
            entry = {"stamp": stamp, "sha256": _sha256(real)}
            cache[key] = entry
            changed = True
        out.append({"file": p.relative_to(src.path).as_posix(), "size": st.st_size, "sha256": entry["sha256"]})
    if changed:
        _save_cache(cache_path, cache)
    return out


def content_digest(files: list[dict[str, Any]]) -> str:
    """One sha256 over the sorted (file, sha256) pairs: the pipeline's identity in one string."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f["file"]):
        h.update(f"{f['file']}\0{f['sha256']}\n".encode())
    return h.hexdigest()
