"""A rating study: the runs being compared, their shared samples, and the images a pair shows.

Only files of the given runs are ever read, and only through :meth:`Study.image`, which takes a
(run id, sample id, kind) from the study's own tables: there is no path from a URL to the disk.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inpaintbench.errors import InputError
from inpaintbench.humans import db
from inpaintbench.humans.db import ATTENTION_RUNS

#: Colour of the hole outline on the masked input (Okabe–Ito vermillion, visible on most photographs).
OUTLINE_RGB = (213, 94, 0)


@dataclass
class StudyOptions:
    seed: int = 0
    repeats: float = 0.1
    attention: float = 0.0
    passes: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "repeats": self.repeats, "attention": self.attention, "passes": self.passes}


def _save_images_fix(run: Any) -> str:
    """The command that makes ``run`` again with images: its recorded `run` command plus --save-images, or
    one rebuilt from its identity when it was not started by the `inpaintbench run` CLI."""
    cmd = [str(c) for c in (run.manifest.get("command") or [])]
    if len(cmd) >= 2 and Path(cmd[0]).name == "inpaintbench" and cmd[1] == "run":
        cmd[0] = "inpaintbench"
    else:
        cfg = (run.manifest.get("identity") or {}).get("config") or {}
        cmd = ["inpaintbench", "run", "--model", run.model_name]
        for key, flag in (("dataset", "--data"), ("masks", "--masks"), ("resolution", "--resolution"),
                          ("resize_policy", "--resize-policy"), ("limit", "--limit")):
            if cfg.get(key) is not None:
                cmd += [flag, str(cfg[key])]
    if "--save-images" not in cmd:
        cmd.append("--save-images")
    return (f"run it again with saved images: {' '.join(cmd)} (the same identity recomputes the run in place "
            "and adds the images; the numbers stay the same)")


@dataclass
class Study:
    """Runs (at least two, on the same samples, all with saved images) and the samples they share."""

    runs: list[Any]
    options: StudyOptions
    sample_ids: list[str] = field(default_factory=list)
    _cache: dict[tuple[str, str, str], bytes] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _gt_loader: Any = field(default=None, repr=False)
    gt_reason: str | None = None

    @classmethod
    def from_paths(cls, paths: Sequence[str | Path], options: StudyOptions) -> Study:
        from inpaintbench.analysis.load import check_same_data, load_runs

        runs = load_runs(paths)
        if len(runs) < 2:
            raise InputError(f"rating needs at least two runs, got {len(runs)}",
                             "pass two or more run directories: inpaintbench rate RUN_A RUN_B")
        ids = [r.run_id for r in runs]
        if len(set(ids)) != len(ids):
            raise InputError(f"the same run was given twice ({', '.join(ids)})", "pass different runs")
        check_same_data(runs, False, "rate these runs together")
        for r in runs:
            if r.images_dir is None:
                raise InputError(f"{r.path} has no saved images ({r.label}): rating shows the completions",
                                 _save_images_fix(r))
        shared = None
        for r in runs:
            ok = {sid for sid in r.ok_rows["sample_id"] if r.image_path(sid, "pred") is not None}
            shared = ok if shared is None else shared & ok
        first = runs[0]
        order = [sid for sid in first.rows["sample_id"] if sid in (shared or set())
                 and first.image_path(sid, "mask") is not None]
        if not order:
            raise InputError("the runs share no sample with saved completions and masks",
                             _save_images_fix(first))
        return cls(runs=runs, options=options, sample_ids=order)

    # --- identity ------------------------------------------------------------------------------------
    @property
    def run_ids(self) -> list[str]:
        return [r.run_id for r in self.runs]

    def key(self) -> str:
        """Same runs (identities, order), samples and options -> same study: a restart continues it."""
        blob = {"runs": [(r.run_id, r.manifest.get("identity_hash")) for r in self.runs],
                "samples": self.sample_ids, "options": self.options.as_dict()}
        return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]

    def register(self, conn: sqlite3.Connection) -> int:
        """The study's id in ``conn``, inserting it (and its runs) on first use."""
        key = self.key()
        row = conn.execute("SELECT study_id FROM studies WHERE study_key=?", (key,)).fetchone()
        if row is not None:
            return int(row[0])
        conn.execute("BEGIN IMMEDIATE")
        try:
            opts = {**self.options.as_dict(), "samples": self.sample_ids}
            cur = conn.execute("INSERT INTO studies (study_key, created, seed, options) VALUES (?, ?, ?, ?)",
                               (key, db.now(), self.options.seed, json.dumps(opts)))
            sid = int(cur.lastrowid)
            for pos, r in enumerate(self.runs):
                conn.execute("INSERT INTO study_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (sid, pos, r.run_id, r.model_name, r.label, str(r.path.resolve()),
                              r.manifest.get("identity_hash"), json.dumps(r.manifest.get("identity"), default=str)))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return sid

    # --- images ----------------------------------------------------------------------------------------
    def _run(self, run_id: str) -> Any:
        for r in self.runs:
            if r.run_id == run_id:
                return r
        raise KeyError(run_id)

    def _png_file(self, run_id: str, sample_id: str, kind: str) -> Path:
        path = self._run(run_id).image_path(sample_id, kind)
        if path is None:
            raise KeyError((run_id, sample_id, kind))
        return path

    def _read(self, path: Path) -> np.ndarray:
        from PIL import Image

        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))

    def _hole(self, sample_id: str) -> np.ndarray:
        from PIL import Image

        with Image.open(self._png_file(self.run_ids[0], sample_id, "mask")) as im:
            return np.asarray(im.convert("L")) > 127

    def _known(self, sample_id: str) -> np.ndarray:
        """The known pixels (hole pixels are whatever the saved input holds)."""
        first = self._run(self.run_ids[0])
        p = first.image_path(sample_id, "input")
        return self._read(p if p is not None else self._png_file(self.run_ids[0], sample_id, "pred"))

    def _outlined_input(self, sample_id: str) -> np.ndarray:
        from scipy import ndimage

        hole = self._hole(sample_id)
        img = self._known(sample_id).copy()
        img[hole] = 255
        ring = ndimage.binary_dilation(hole, iterations=2) & ~ndimage.binary_erosion(hole, iterations=1)
        img[ring] = OUTLINE_RGB
        return img

    def _attention_image(self, kind: str, sample_id: str) -> np.ndarray:
        hole = self._hole(sample_id)
        img = self._known(sample_id).copy()
        if kind == "@unfilled":
            img[hole] = 255
        else:
            known = img[~hole]
            img[hole] = (known.mean(axis=0) if len(known) else np.full(3, 127.5)).round().astype(np.uint8)
        return img

    def ground_truth(self, sample_id: str) -> np.ndarray | None:
        """The ground truth from the run's dataset, checked against the hash the run scored; None with
        :attr:`gt_reason` set when it cannot be reloaded."""
        from inpaintbench.identity import image_sha256

        first = self._run(self.run_ids[0])
        saved = first.image_path(sample_id, "gt")
        if saved is not None:
            return self._read(saved)
        if self._gt_loader is None:
            from inpaintbench.analysis.plots import DatasetGroundTruth

            self._gt_loader = DatasetGroundTruth()
        row = first.rows.set_index("sample_id").loc[sample_id]
        gt = self._gt_loader(first, str(row["image_id"]))
        if gt is None:
            self.gt_reason = getattr(self._gt_loader, "reason", None) or "the dataset could not be reloaded"
            return None
        want = row.get("image_sha256")
        if isinstance(want, str) and want and image_sha256(np.ascontiguousarray(gt, dtype=np.uint8)) != want:
            self.gt_reason = f"the dataset's image {row['image_id']} changed since the run scored it"
            return None
        return gt

    def image(self, run_id: str, sample_id: str, kind: str) -> bytes | None:
        """PNG bytes of ``kind`` (pred, input, gt) for a (run, sample) of this study; None when not there."""
        key = (run_id, sample_id, kind)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        if sample_id not in self.sample_ids:
            return None
        try:
            if kind == "pred" and run_id in ATTENTION_RUNS:
                data = _png(self._attention_image(run_id, sample_id))
            elif kind == "pred":
                data = self._png_file(run_id, sample_id, "pred").read_bytes()
            elif kind == "input":
                data = _png(self._outlined_input(sample_id))
            elif kind == "gt":
                gt = self.ground_truth(sample_id)
                if gt is None:
                    return None
                data = _png(gt)
            else:
                return None
        except KeyError:
            return None
        with self._lock:
            if len(self._cache) > 512:
                self._cache.clear()
            self._cache[key] = data
        return data


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
