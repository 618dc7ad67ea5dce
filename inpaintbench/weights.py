"""Every external weight file inpaintbench uses: where it comes from, its hash, and where it lives.

Why this exists: weights are otherwise downloaded behind the user's back by torch.hub, torchvision
and friends, into caches nobody can find offline, and hardly anyone checks a hash.
Here every file has a registry entry (:class:`WeightSpec`) and is found by :func:`resolve_weights`
in this order:

1. ``weights_dir`` (``--weights-dir``) if given, else ``$INPAINTBENCH_HOME/weights/``
   (default home ``~/.cache/inpaintbench``), file name = ``spec.filename``;
2. a per-id environment override ``INPAINTBENCH_WEIGHT_<ID>=/path`` (id upper-cased,
   non-alphanumerics replaced by ``_``);
3. a download from ``spec.urls`` with ``torch.hub.download_url_to_file`` (temp file in the target
   folder, sha256 prefix checked while streaming, rename), unless offline (``offline=True`` /
   ``--offline`` / ``INPAINTBENCH_OFFLINE=1``), which never opens a socket.

A missing file raises :class:`~inpaintbench.errors.WeightsError` naming the id, the expected path,
the URL(s) or manual instructions, the sha256 and the ``inpaintbench weights import`` command.
A hash mismatch is refused unless ``allow_unverified`` (then ``verified == "unverified"``, which
the run manifest records). Hashes of big files are cached, so a 100 MB file is not re-hashed on every
run: one JSON record per file in ``$INPAINTBENCH_HOME/cache/hashes/`` (never beside the user's file),
found by the file's resolved path and valid while its size, mtime, inode and ctime are unchanged.

``verified`` values: ``True`` (matches the published sha256, or torchvision's published hash
prefix), ``"recorded"`` (no published hash: the file matches the hash recorded when it was first
imported/seen — trust on first use), ``"unverified"`` (mismatch accepted by the user).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from inpaintbench.errors import UnknownNameError, WeightsError
from inpaintbench.file_hashes import (
    cached_sha256,
    hash_records_dir,
    read_hash_record,
    recorded_sha256,
    sha256_file,
    stat_fields,
    write_hash_record,
)
from inpaintbench.home import inpaintbench_home

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class WeightSpec:
    """One external weight file.

    ``sha256`` is the full published hash, or None when nobody publishes one (then
    ``sha256_prefix`` may hold the hash prefix the upstream file name carries, as torchvision's
    do, and the full hash is recorded on first import/fetch). ``urls=()`` with
    ``manual_instructions`` is for files that cannot be fetched automatically (OneDrive shares).
    """

    id: str
    filename: str
    urls: tuple[str, ...] = ()
    sha256: str | None = None
    size: int | None = None
    licence: str = ""
    description: str = ""
    manual_instructions: str | None = None
    sha256_prefix: str | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", self.id):
            raise ValueError(f"weight id {self.id!r}: use lower-case letters, digits, '.', '_', '-'")
        if "/" in self.filename or "\\" in self.filename or not self.filename:
            raise ValueError(f"weight {self.id}: filename must be a bare file name")
        for h in (self.sha256, self.sha256_prefix):
            if h is not None and not re.fullmatch(r"[0-9a-f]{4,64}", h):
                raise ValueError(f"weight {self.id}: hashes are lower-case hex")
        if self.sha256 is not None and len(self.sha256) != 64:
            raise ValueError(f"weight {self.id}: sha256 must have 64 hex digits")
        object.__setattr__(self, "urls", tuple(self.urls))


@dataclass(frozen=True)
class ResolvedWeights:
    """A weight file found on disk. ``sha256`` is always the file's actual hash."""

    id: str
    path: Path
    sha256: str
    verified: bool | str
    source: str = ""

    def to_manifest(self) -> dict[str, Any]:
        return {"id": self.id, "path": str(self.path), "sha256": self.sha256,
                "verified": self.verified, "source": self.source}


__all__ = [
    "BUILTIN", "ResolvedWeights", "WeightSpec", "cached_sha256", "default_weights_dir", "env_override_name",
    "expected_path", "get_weight_spec", "hash_records_dir", "import_weights", "inpaintbench_home", "is_offline",
    "list_weights", "read_hash_record", "recorded_sha256", "register_weights", "resolve_weights", "sha256_file",
    "unregister_weights", "weights_status", "write_hash_record",
]

_REGISTRY: dict[str, WeightSpec] = {}


def register_weights(spec: WeightSpec, replace: bool = False) -> WeightSpec:
    """Add ``spec`` to the registry. Re-registering an identical spec is a no-op; a different spec
    under an existing id needs ``replace=True`` (tests use that to register random weights)."""
    old = _REGISTRY.get(spec.id)
    if old is not None and old != spec and not replace:
        raise ValueError(f"weight id {spec.id!r} already registered with a different spec")
    _REGISTRY[spec.id] = spec
    return spec


def unregister_weights(weight_id: str) -> None:
    _REGISTRY.pop(weight_id, None)


def list_weights() -> list[WeightSpec]:
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_weight_spec(weight_id: str) -> WeightSpec:
    try:
        return _REGISTRY[weight_id]
    except KeyError:
        raise UnknownNameError("weight id", weight_id, list(_REGISTRY)) from None


# --------------------------------------------------------------------------- locations


def default_weights_dir() -> Path:
    return inpaintbench_home() / "weights"


def env_override_name(weight_id: str) -> str:
    return "INPAINTBENCH_WEIGHT_" + re.sub(r"[^A-Za-z0-9]", "_", weight_id).upper()


def is_offline(offline: bool | None = None) -> bool:
    """An explicit argument wins; otherwise ``INPAINTBENCH_OFFLINE``."""
    if offline is not None:
        return bool(offline)
    return os.environ.get("INPAINTBENCH_OFFLINE", "").strip().lower() in _TRUE


def expected_path(weight_id: str, weights_dir: str | os.PathLike[str] | None = None) -> Path:
    spec = get_weight_spec(weight_id)
    folder = Path(weights_dir).expanduser() if weights_dir else default_weights_dir()
    return folder / spec.filename


# --------------------------------------------------------------------------- verification


def _hash_ok(spec: WeightSpec, digest: str) -> bool | None:
    """True/False against a published hash (full or prefix); None when none is published."""
    if spec.sha256:
        return digest == spec.sha256
    if spec.sha256_prefix:
        return digest.startswith(spec.sha256_prefix)
    return None


def _expected_hash_text(spec: WeightSpec) -> str:
    if spec.sha256:
        return spec.sha256
    if spec.sha256_prefix:
        return f"{spec.sha256_prefix}… (published prefix; full hash recorded on first import)"
    return "not published (recorded on first import)"


def _verify(spec: WeightSpec, path: Path, allow_unverified: bool, source: str,
            rehash: bool = False) -> ResolvedWeights:
    digest = cached_sha256(path, rehash=rehash)
    published = _hash_ok(spec, digest)
    verified: bool | str = True
    if published is not None:
        ok, expected = published, spec.sha256 or f"{spec.sha256_prefix}…"
    else:  # nothing published: trust on first use, and catch later changes to the file
        record = read_hash_record(path)
        recorded = record.get("recorded_sha256")
        if recorded is None:
            record["recorded_sha256"] = digest
            write_hash_record(path, record)
            recorded = digest
        ok, expected, verified = recorded == digest, f"{recorded} (recorded at import)", "recorded"
    if not ok:
        if not allow_unverified:
            raise WeightsError(
                f"weights {spec.id!r} at {path} have sha256 {digest}, expected {expected}",
                f"re-fetch with `inpaintbench weights fetch {spec.id}` or import the right file with "
                f"`inpaintbench weights import {spec.id} PATH`; pass --allow-unverified-weights only "
                "if you know this file is what you want (the run is then marked unverified)",
            )
        verified = "unverified"
    return ResolvedWeights(spec.id, path, digest, verified, source)


def _missing_error(spec: WeightSpec, path: Path, why: str) -> WeightsError:
    where = ("URL(s): " + " , ".join(spec.urls)) if spec.urls else "no download URL"
    manual = f"; {spec.manual_instructions}" if spec.manual_instructions else ""
    return WeightsError(
        f"weights {spec.id!r} not found ({why}): expected at {path} [{where}{manual}; "
        f"sha256 {_expected_hash_text(spec)}; or set {env_override_name(spec.id)}=/path]",
        f"download it yourself and run `inpaintbench weights import {spec.id} PATH`"
        + ("" if not spec.urls else f", or `inpaintbench weights fetch {spec.id}` when online"),
    )


# --------------------------------------------------------------------------- download


_HUB_MISMATCH = re.compile(r'got "([0-9a-f]{64})"')


def _download(spec: WeightSpec, dest: Path, progress: bool = True) -> None:
    """Fetch ``spec`` to ``dest`` with ``torch.hub.download_url_to_file``: it streams into a temp file
    in ``dest``'s folder, checks the sha256 (``hash_prefix``: the full published hash or torchvision's
    prefix) and only then renames it into place. URLs are tried in order."""
    from torch.hub import download_url_to_file  # lazily: the registry itself stays torch-free

    dest.parent.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    for url in spec.urls:
        try:
            download_url_to_file(url, str(dest), hash_prefix=spec.sha256 or spec.sha256_prefix, progress=progress)
        except RuntimeError as e:
            if "invalid hash value" not in str(e):
                raise
            got = _HUB_MISMATCH.search(str(e))
            raise WeightsError(
                f"download of {spec.id!r} from {url} has sha256 {got.group(1) if got else '(another value)'}, "
                f"expected {_expected_hash_text(spec)}",
                "the server copy changed or is corrupt; try again, or import a known-good copy",
            ) from None
        except (OSError, ValueError) as e:  # URLError is an OSError; bad URLs raise ValueError
            errors.append(f"{url}: {e}")
            continue
        digest = cached_sha256(dest)
        record = read_hash_record(dest)
        record["source"] = url
        if _hash_ok(spec, digest) is None:
            record["recorded_sha256"] = digest
        write_hash_record(dest, record)
        return
    raise WeightsError(
        f"could not download weights {spec.id!r}: " + "; ".join(errors),
        f"download it by hand and run `inpaintbench weights import {spec.id} PATH`",
    )


# --------------------------------------------------------------------------- public API


def resolve_weights(
    weight_id: str,
    weights_dir: str | os.PathLike[str] | None = None,
    offline: bool | None = None,
    allow_unverified: bool = False,
    download: bool = True,
    progress: bool = True,
    rehash: bool = False,
) -> ResolvedWeights:
    """Find (and if allowed, fetch) one weight file and check its hash. See the module docstring.
    ``rehash=True`` ignores the cached hash (``inpaintbench weights verify``)."""
    spec = get_weight_spec(weight_id)
    path = expected_path(weight_id, weights_dir)
    if path.is_file():
        return _verify(spec, path, allow_unverified, "weights_dir" if weights_dir else "home", rehash)
    env = os.environ.get(env_override_name(weight_id))
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise WeightsError(
                f"{env_override_name(weight_id)}={env} does not point to a file",
                f"fix the path or unset {env_override_name(weight_id)}",
            )
        return _verify(spec, p, allow_unverified, "env", rehash)
    if is_offline(offline):
        raise _missing_error(spec, path, "offline mode: nothing is downloaded")
    if not download:
        raise _missing_error(spec, path, "downloads disabled")
    if not spec.urls:
        raise _missing_error(spec, path, "it cannot be downloaded automatically")
    _download(spec, path, progress=progress)
    return _verify(spec, path, allow_unverified, "download")


def import_weights(
    weight_id: str,
    path: str | os.PathLike[str],
    copy: bool = True,
    weights_dir: str | os.PathLike[str] | None = None,
    allow_unverified: bool = False,
) -> ResolvedWeights:
    """Hash ``path`` and place it in the cache (``copy=False`` symlinks instead of copying).

    With a published hash the file must match (unless ``allow_unverified``); without one, its
    hash is recorded so later changes to the cached file are caught.
    """
    spec = get_weight_spec(weight_id)
    src = Path(path).expanduser()
    if not src.is_file():
        raise WeightsError(f"cannot import {spec.id!r}: {src} is not a file", "check the path")
    digest = sha256_file(src)
    ok = _hash_ok(spec, digest)
    if ok is False and not allow_unverified:
        raise WeightsError(
            f"{src} has sha256 {digest}, but {spec.id!r} expects {_expected_hash_text(spec)}",
            "import the official file, or pass --allow-unverified-weights to import it anyway",
        )
    dest = expected_path(weight_id, weights_dir)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.resolve() != dest.resolve():
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            if copy:
                shutil.copyfile(src, tmp)
            else:
                tmp.unlink()
                os.symlink(src.resolve(), tmp)
            os.replace(tmp, dest)
        finally:
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
    write_hash_record(dest, {"sha256": digest, **stat_fields(dest.stat()), "source": str(src.resolve()),
                             "recorded_sha256": digest})
    verified: bool | str = "unverified" if ok is False else (True if ok else "recorded")
    return ResolvedWeights(spec.id, dest, digest, verified, "import")


def weights_status(weight_id: str, weights_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Where a file is (or would be) and whether it is present; never downloads, never raises
    for a missing or mismatching file (for ``weights list/where``)."""
    spec = get_weight_spec(weight_id)
    path = expected_path(weight_id, weights_dir)
    env_name = env_override_name(weight_id)
    env = os.environ.get(env_name)
    found = path if path.is_file() else (Path(env).expanduser() if env and Path(env).expanduser().is_file()
                                          else None)
    return {"id": spec.id, "expected_path": str(path), "env_var": env_name, "env_value": env,
            "found": str(found) if found else None, "spec": asdict(spec)}


# --------------------------------------------------------------------------- built-in entries
# Hashes: torch-fidelity's file and NVIDIA's TorchScript file as published alongside them and
# pinned by several independent projects; torchvision's AlexNet/VGG16 full hashes likewise (they
# start with the prefix torchvision puts in the file name and checks itself). VGG19's full hash
# is not pinned here: the torchvision prefix is checked and the full hash recorded on first use.

_TV_LICENCE = "BSD-3-Clause (torchvision); ImageNet-trained weights, research use"

BUILTIN: tuple[WeightSpec, ...] = (
    WeightSpec(
        id="inception-tf",
        filename="weights-inception-2015-12-05-6726825d.pth",
        urls=("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
              "weights-inception-2015-12-05-6726825d.pth",),
        sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
        size=95_628_359,
        licence="Apache-2.0 (TensorFlow models), converted by torch-fidelity/pytorch-fid",
        description="InceptionV3 2015-12-05 (TF graph) as a state dict for torch-fidelity's "
                    "FeatureExtractorInceptionV3 ('inception-tf' extractor: FID/KID/IDS).",
    ),
    WeightSpec(
        id="inception-stylegan2",
        filename="inception-2015-12-05.pt",
        urls=("https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/"
              "inception-2015-12-05.pt",),
        sha256="f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4",
        size=95_607_719,
        licence="Apache-2.0 (TensorFlow models); TorchScript translation by NVIDIA (StyleGAN2-ADA)",
        description="NVIDIA's TorchScript InceptionV3 used by MAT/StyleGAN2-ADA/clean-fid "
                    "('inception-stylegan2' extractor). TorchScript is code: loaded only when verified.",
    ),
    WeightSpec(
        id="torchvision-alexnet",
        filename="alexnet-owt-7be5be79.pth",
        urls=("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",),
        sha256="7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
        sha256_prefix="7be5be79",
        licence=_TV_LICENCE,
        description="torchvision AlexNet IMAGENET1K_V1: the LPIPS-alex trunk. The LPIPS linear "
                    "heads ship inside the lpips pip package (lpips/weights/v0.1/alex.pth), no download.",
    ),
    WeightSpec(
        id="torchvision-vgg16",
        filename="vgg16-397923af.pth",
        urls=("https://download.pytorch.org/models/vgg16-397923af.pth",),
        sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
        sha256_prefix="397923af",
        licence=_TV_LICENCE,
        description="torchvision VGG16 IMAGENET1K_V1: the LPIPS-vgg trunk (LaMa convention). Its "
                    "linear heads ship in the lpips package (lpips/weights/v0.1/vgg.pth).",
    ),
    WeightSpec(
        id="torchvision-vgg19",
        filename="vgg19-dcbb9e9d.pth",
        urls=("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",),
        sha256=None,
        sha256_prefix="dcbb9e9d",
        licence=_TV_LICENCE,
        description="torchvision VGG19 IMAGENET1K_V1: perceptual loss for MAT fine-tuning. Full "
                    "sha256 not pinned here: torchvision's prefix is checked, the full hash recorded.",
    ),
)

for _spec in BUILTIN:
    register_weights(_spec)
