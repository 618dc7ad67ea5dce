"""Where fine-tuning starts: resolve ``--init`` to network weights and build G, D and G_ema.

``--init`` may be (tried in this order):

1. a training run directory or snapshot folder written by ``inpaintbench train`` (its best snapshot,
   else the latest): G, G_ema and D are all restored (optimizer states are not: a new run);
2. a checkpoint file: an official MAT pickle (read through the restricted unpickler), a state dict,
   our safetensors (see :mod:`inpaintbench.models.mat.checkpoint`), or a network file of a snapshot;
3. a locally registered fine-tune (``inpaintbench register-model``);
4. a weight id from the weights registry (``mat-celebahq-256``), resolved offline-aware.

The network shape comes from the checkpoint. Its resolution must equal ``--resolution``, and a
``--config`` given explicitly must match its widths; both mismatches are errors. A checkpoint
without a discriminator (e.g. a released generator-only file) starts D from scratch, with a warning.
"""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from inpaintbench.errors import InputError, WeightsError
from inpaintbench.train.config import TrainConfig


@dataclass
class InitCheckpoint:
    """State dicts found in the init checkpoint and where they came from."""

    G: dict[str, torch.Tensor] | None
    G_ema: dict[str, torch.Tensor] | None
    D: dict[str, torch.Tensor] | None
    g_kwargs: dict[str, Any]
    d_kwargs: dict[str, Any] | None
    record: dict[str, Any] = field(default_factory=dict)


def _sha256(path: Path) -> str:
    from inpaintbench.weights import cached_sha256

    return cached_sha256(path)


def _recorded_sha256(path: Path) -> str:
    """The hash recorded in a MAT checkpoint's sidecar (no re-hash, nothing written into the snapshot)."""
    side = path.with_name(path.name + ".json")
    try:
        return str(json.loads(side.read_text())["sha256"])
    except (OSError, ValueError, KeyError):
        from inpaintbench.weights import sha256_file

        return sha256_file(path)


def _read(path: Path, which: str) -> Any:
    """One network of a checkpoint file, or None when the file does not hold it."""
    from inpaintbench.models.mat import read_mat_checkpoint

    try:
        return read_mat_checkpoint(path, which)
    except WeightsError as e:
        if "has no" in e.message:  # e.g. a pickle without D
            return None
        raise


def _from_snapshot(snap: Path) -> InitCheckpoint:
    from inpaintbench.train.snapshot import read_state

    read_state(snap)
    cks = {name: _read(snap / f"{name}.safetensors", name) if (snap / f"{name}.safetensors").is_file() else None
           for name in ("G", "G_ema", "D")}
    g = cks["G_ema"] or cks["G"]
    if g is None:
        raise InputError(f"--init {snap}: snapshot has no generator file", "pass a complete snapshot")
    return InitCheckpoint(
        cks["G"].state_dict if cks["G"] else None, cks["G_ema"].state_dict if cks["G_ema"] else None,
        cks["D"].state_dict if cks["D"] else None, dict(g.config), dict(cks["D"].config) if cks["D"] else None,
        {"kind": "inpaintbench-snapshot", "path": str(snap), "sha256": _recorded_sha256(snap / "G_ema.safetensors")})


def _from_file(path: Path) -> InitCheckpoint:
    """A checkpoint file (official pickle, state dict, our safetensors): every network it holds."""
    from inpaintbench.models.mat import read_mat_checkpoint

    first = read_mat_checkpoint(path)  # G_ema of a pickle; the one network of other files
    if first.kind != "generator":
        raise InputError(f"--init {path} holds a discriminator", "pass a generator checkpoint or a snapshot folder")
    cks: dict[str, Any] = {first.network: first}
    if first.format == "official-pkl":
        for name in ("G", "D"):
            cks[name] = _read(path, name)
    rec = {"kind": first.format, "path": str(path), "sha256": first.sha256 or _sha256(path),
           "network_read_as_G_ema": first.network}
    G, G_ema, D = cks.get("G"), cks.get("G_ema"), cks.get("D")
    return InitCheckpoint(G.state_dict if G else None, G_ema.state_dict if G_ema else None,
                          D.state_dict if D else None, dict(first.config), dict(D.config) if D else None, rec)


def load_init(config: TrainConfig, weights_dir: str | None = None, offline: bool | None = None,
              allow_unverified: bool = False) -> InitCheckpoint:
    """Resolve ``config.init`` (see the module docstring)."""
    spec = str(config.init)
    p = Path(spec).expanduser()
    if p.is_dir():
        from inpaintbench.train.snapshot import resolve_snapshot

        init = _from_snapshot(resolve_snapshot(p, "best"))
    elif p.is_file():
        init = _from_file(p)
    else:
        from inpaintbench.train.registry import local_models

        local = local_models().get(spec)
        if local is not None:
            init = _from_file(Path(local["checkpoint"]))
        else:
            from inpaintbench.weights import get_weight_spec, resolve_weights

            try:
                get_weight_spec(spec)
            except Exception:
                _ensure_mat_registered()
            try:
                get_weight_spec(spec)
            except Exception:
                raise InputError(f"--init {spec!r}: not a file, a run directory, a registered fine-tune or a "
                                 "weight id", "pass a checkpoint path, a run directory, or a weight id such as "
                                 "mat-celebahq-256 (see `inpaintbench weights list`)") from None
            try:
                resolved = resolve_weights(spec, weights_dir=weights_dir, offline=offline,
                                           allow_unverified=allow_unverified)
            except WeightsError as e:
                raise WeightsError(f"--init {spec}: {e.message}", e.fix) from None
            init = _from_file(resolved.path)
            init.record.update({"weights_id": spec, "verified": resolved.verified})
    init.record["spec"] = spec
    res = int(init.g_kwargs.get("img_resolution") or 0)
    if res and res != config.resolution:
        raise InputError(f"--init {spec} is a {res}x{res} model, but training is at {config.resolution}",
                         f"pass --resolution {res}, or an init checkpoint trained at {config.resolution}")
    return init


def _ensure_mat_registered() -> None:
    try:
        import inpaintbench.models  # noqa: F401  (registers MAT weight ids)
    except Exception:  # pragma: no cover - a broken optional model must not hide the real error
        pass


def _widths_preset(kwargs: dict[str, Any]) -> str | None:
    from inpaintbench.models.mat.config import PRESETS

    for name, widths in PRESETS.items():
        if all(kwargs.get(k, v) == v for k, v in widths.items()):
            return "full" if name == "official" else name
    return None


def build_networks(config: TrainConfig, init: InitCheckpoint | None
                   ) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]:
    """G, D and G_ema on the CPU, from ``init`` or from scratch (official init, seeded)."""
    from inpaintbench.models.mat import Discriminator, Generator

    if init is None:
        preset = config.widths_preset if config.config else "official"
        G = Generator(img_resolution=config.resolution, config=preset)
        D = Discriminator(img_resolution=config.resolution, config=preset, mbstd_group_size=config.mbstd_group)
        if not config.config:
            config.config = "full"
        return G, D, copy.deepcopy(G)

    gk = dict(init.g_kwargs)  # the checkpoint's config is made for Generator(**config)
    preset = _widths_preset(gk)
    if config.config and preset and config.config != preset:
        raise InputError(f"--config {config.config} does not match --init {init.record.get('spec')} "
                         f"(a {preset} network)", f"drop --config, or pass --config {preset}")
    if config.config and preset is None:
        raise InputError(f"--init {init.record.get('spec')} has custom widths {gk}", "drop --config")
    config.config = preset or "custom"
    gk.setdefault("img_resolution", config.resolution)
    G = Generator(**gk)
    dk = {k: v for k, v in (init.d_kwargs or {}).items() if k != "mbstd_group_size"}
    if not dk:
        dk = {"img_resolution": G.img_resolution, "channel_base": G.widths.channel_base,
              "channel_max": G.widths.channel_max}
    D = Discriminator(**dk, mbstd_group_size=config.mbstd_group)
    g_src = init.G if init.G is not None else init.G_ema
    ema_src = init.G_ema if init.G_ema is not None else init.G
    _load(G, g_src, "G", init)
    G_ema = copy.deepcopy(G)
    _load(G_ema, ema_src, "G_ema", init)
    if init.D is not None:
        _load(D, init.D, "D", init)
    else:
        warnings.warn(f"--init {init.record.get('spec')} has no discriminator: D starts from scratch "
                      "(expect a few kimg of adaptation)", UserWarning, stacklevel=2)
    init.record["networks"] = {"G": init.G is not None, "G_ema": init.G_ema is not None, "D": init.D is not None}
    return G, D, G_ema


def _load(net: torch.nn.Module, sd: dict[str, torch.Tensor], name: str, init: InitCheckpoint) -> None:
    own = net.state_dict()
    # attn_mask buffers are geometry-only and recomputed on every call (MAT networks/mat.py builds them per call):
    # accept checkpoints that lack them, keep ours.
    merged = {k: sd[k] if k in sd else v for k, v in own.items() if k in sd or k.endswith("attn_mask")}
    missing = [k for k in own if k not in merged]
    unexpected = [k for k in sd if k not in own]
    bad = [k for k in merged if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or bad:
        detail = json.dumps({"missing": missing[:3], "unexpected": unexpected[:3], "shape": bad[:3]})
        raise InputError(f"--init {init.record.get('spec')}: {name} weights do not fit the network ({detail})",
                         "pass a MAT checkpoint of the same architecture")
    net.load_state_dict(merged, strict=True)
