"""Training run directory: snapshots (safetensors + JSON sidecar), pointers and the metrics log.

Layout::

    RUN/
      run.json                 config, init checkpoint, data digests, versions (written at start)
      metrics.jsonl            one line per tick: kimg, tick, losses, augment p, timings, val metrics
      latest.json              pointer to the newest complete snapshot
      best.json                pointer to the snapshot with the best validation metric
      snapshots/tick-000004/
        G.safetensors (+.json) training generator  (MAT checkpoint format: tensors, config in the
        G_ema.safetensors      EMA generator       header and the .json sidecar; G_ema is what is
        D.safetensors          discriminator       evaluated, registered and released)
        optim.safetensors      Adam states of G and D, torch RNG states
        state.json             sidecar: config, counters, ADA state, init hash, data digest, val results

A snapshot is written into ``snapshots/.tick-000004.tmp-XXXX`` and renamed into place only when
every file is complete; ``latest.json`` is replaced atomically afterwards. A failure half-way (e.g.
a full disk) removes the temporary folder and leaves the previous snapshot and pointers untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from inpaintbench.errors import InputError
from inpaintbench.results import atomic_write_bytes, atomic_write_json

SNAPSHOTS = "snapshots"
LATEST = "latest.json"
BEST = "best.json"
RUN = "run.json"
METRICS = "metrics.jsonl"
STATE = "state.json"
SNAPSHOT_FORMAT = "inpaintbench-train-snapshot"
SNAPSHOT_VERSION = 1


def snapshot_name(tick: int) -> str:
    return f"tick-{tick:06d}"


def save_network(net: torch.nn.Module, path: Path, network: str, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write one network in the MAT checkpoint format (safetensors + ``.json`` sidecar, config in the
    header), so that every snapshot file loads with ``inpaintbench.models.mat.read_mat_checkpoint`` and
    ``inpaintbench run --model mat --weights .../G_ema.safetensors``."""
    from inpaintbench.models.mat import save_mat_safetensors

    return save_mat_safetensors(net, path, metadata={"network": network, **(metadata or {})})


def read_network_file(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, info) of a network file; info holds ``config``, ``network``, ``kind`` and the metadata."""
    from inpaintbench.models.mat import read_mat_checkpoint

    ck = read_mat_checkpoint(path, compute_sha256=False)
    return ck.state_dict, {**ck.metadata, "config": ck.config, "network": ck.network, "kind": ck.kind}


def optimizer_bytes(optimizers: Mapping[str, torch.optim.Optimizer], rng: Mapping[str, torch.Tensor]
                    ) -> tuple[bytes, dict[str, Any]]:
    """Optimizer tensors as safetensors bytes, and their param groups (JSON) for the sidecar."""
    tensors: dict[str, torch.Tensor] = {}
    groups: dict[str, Any] = {}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        for idx, st in sd["state"].items():
            for field, value in st.items():
                t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
                tensors[f"{name}/{idx}/{field}"] = t.detach().to("cpu").contiguous()
        groups[name] = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    for key, t in rng.items():
        tensors[f"rng/{key}"] = t.detach().to("cpu").contiguous()
    return st_save(tensors), groups


def load_optimizers(path: Path, optimizers: Mapping[str, torch.optim.Optimizer], groups: Mapping[str, Any]
                    ) -> dict[str, torch.Tensor]:
    """Restore optimizer states in place; returns the saved RNG states."""
    tensors = st_load(path.read_bytes())
    rng = {k[len("rng/"):]: v for k, v in tensors.items() if k.startswith("rng/")}
    for name, opt in optimizers.items():
        state: dict[int, dict[str, torch.Tensor]] = {}
        prefix = f"{name}/"
        for key, value in tensors.items():
            if key.startswith(prefix):
                _, idx, field = key.split("/")
                state.setdefault(int(idx), {})[field] = value
        saved_groups = []
        for g in groups[name]:
            g = dict(g)
            if "betas" in g:
                g["betas"] = tuple(g["betas"])
            saved_groups.append(g)
        opt.load_state_dict({"state": state, "param_groups": saved_groups})
    return rng


def write_snapshot(run_dir: Path, name: str, networks: Mapping[str, torch.nn.Module], optim: bytes,
                   state: Mapping[str, Any], metadata: Mapping[str, Any] | None = None) -> Path:
    """Write a complete snapshot atomically (see the module docstring) and point ``latest`` at it."""
    root = Path(run_dir) / SNAPSHOTS
    final = root / name
    tmp = root / f".{name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir(parents=True)
        for key, net in networks.items():
            save_network(net, tmp / f"{key}.safetensors", key, metadata)
        atomic_write_bytes(tmp / "optim.safetensors", optim)
        atomic_write_json(tmp / STATE, {"format": SNAPSHOT_FORMAT, "version": SNAPSHOT_VERSION, **state})
        if final.exists():  # a re-run of the same tick after a resume: replace it whole
            old = root / f".{name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            from inpaintbench.results import _write_error

            raise _write_error(final, exc) from None
        raise
    atomic_write_json(Path(run_dir) / LATEST, {"snapshot": f"{SNAPSHOTS}/{name}", "tick": state.get("tick"),
                                               "kimg": state.get("kimg"), "nimg": state.get("nimg")})
    return final


def latest_snapshot(run_dir: str | os.PathLike[str]) -> Path | None:
    p = Path(run_dir) / LATEST
    if not p.is_file():
        return None
    target = Path(run_dir) / json.loads(p.read_text())["snapshot"]
    return target if (target / STATE).is_file() else None


def resolve_snapshot(path: str | os.PathLike[str], which: str = "latest") -> Path:
    """A snapshot folder from a run directory (``latest``/``best``/a snapshot name) or a snapshot folder."""
    p = Path(path).expanduser()
    if (p / STATE).is_file():
        return p
    if not p.is_dir():
        raise InputError(f"{p}: no such training run", "pass a directory written by `inpaintbench train`")
    if which == "best":
        b = p / BEST
        if b.is_file():
            target = p / json.loads(b.read_text())["snapshot"]
            if (target / STATE).is_file():
                return target
        which = "latest"
    if which == "latest":
        snap = latest_snapshot(p)
        if snap is None:
            raise InputError(f"{p} has no complete snapshot (no {LATEST})",
                             "train until the first snapshot is written, or pass another run directory")
        return snap
    cand = p / SNAPSHOTS / which
    if not (cand / STATE).is_file():
        raise InputError(f"{p} has no snapshot {which!r}", f"use latest, best or one of {list_snapshots(p)}")
    return cand


def list_snapshots(run_dir: str | os.PathLike[str]) -> list[str]:
    root = Path(run_dir) / SNAPSHOTS
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir() if not d.name.startswith(".") and (d / STATE).is_file())


def read_state(snapshot: Path) -> dict[str, Any]:
    data = json.loads((Path(snapshot) / STATE).read_text())
    if data.get("format") != SNAPSHOT_FORMAT:
        raise InputError(f"{snapshot} is not an inpaintbench training snapshot", "pass a run directory")
    return data


def prune_snapshots(run_dir: Path, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` snapshots, never the latest or the best one."""
    if keep <= 0:
        return []
    names = list_snapshots(run_dir)
    protected = set()
    for pointer in (LATEST, BEST):
        p = run_dir / pointer
        if p.is_file():
            protected.add(Path(json.loads(p.read_text())["snapshot"]).name)
    removed = []
    for name in names[:-keep] if len(names) > keep else []:
        if name not in protected:
            shutil.rmtree(run_dir / SNAPSHOTS / name, ignore_errors=True)
            removed.append(name)
    return removed


# ---------------------------------------------------------------------------------------- metrics.jsonl


def append_metrics(run_dir: Path, record: Mapping[str, Any]) -> None:
    """Append one JSON line (one write + fsync; a torn last line is ignored by :func:`read_metrics`)."""
    from inpaintbench.results import _json_default, _json_safe

    line = json.dumps(_json_safe(dict(record)), default=_json_default) + "\n"
    path = Path(run_dir) / METRICS
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        from inpaintbench.results import _write_error

        raise _write_error(path, exc) from None


def read_metrics(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete line of ``metrics.jsonl`` (a torn final line from a crash is skipped)."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def truncate_metrics(run_dir: Path, max_nimg: int, source: Path | None = None) -> None:
    """Keep only lines up to ``max_nimg`` images (rewritten atomically), e.g. when resuming."""
    rows = [r for r in read_metrics(source or run_dir) if int(r.get("nimg", 0)) <= max_nimg]
    from inpaintbench.results import _json_default, _json_safe

    text = "".join(json.dumps(_json_safe(r), default=_json_default) + "\n" for r in rows)
    atomic_write_bytes(Path(run_dir) / METRICS, text.encode())
