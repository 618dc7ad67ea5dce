"""Everything ``inpaintbench humans DB`` shows, computed from one judgments database (and the runs,
for the metric columns).

Attention checks never enter the model statistics; they are reported per rater. Judgments of
every study in the database are pooled by run id (the same run in two studies is one model).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from inpaintbench.errors import InputError
from inpaintbench.humans import agreement, db, stats


@dataclass
class HumanAnalysis:
    db_path: Path
    overview: dict[str, Any]
    pairs: pd.DataFrame
    bt: pd.DataFrame
    raters: pd.DataFrame
    alpha: dict[str, Any]
    agreement: pd.DataFrame
    ranking: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def label(self, run_id: str) -> str:
        row = self.bt[self.bt["run_id"] == run_id]
        return str(row["model"].iloc[0]) if len(row) else run_id


def _outcome(j: pd.DataFrame) -> pd.Series:
    return j["winner_run"].where(j["choice"] != "tie", "tie")


def _labels(study_runs: pd.DataFrame, runs: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for rid, label in zip(study_runs["run_id"], study_runs["label"], strict=True):
        out.setdefault(str(rid), str(label))
    for rid, run in runs.items():
        out[rid] = run.label
    if len(set(out.values())) < len(out):  # two runs of one model: tell them apart by run id
        out = {rid: (lab if list(out.values()).count(lab) == 1 else f"{lab} ({rid})") for rid, lab in out.items()}
    return out


def load_judgments(db_path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    path = Path(db_path)
    if not path.is_file():
        raise InputError(f"{path} does not exist", "pass the --db that `inpaintbench rate` used")
    conn = db.connect(path, create=False)
    try:
        return db.judgments_frame(conn), db.study_runs_frame(conn)
    finally:
        conn.close()


def _load_runs(run_paths: Sequence[str | Path] | None, study_runs: pd.DataFrame, notes: list[str]) -> dict[str, Any]:
    from inpaintbench.analysis.load import load_runs

    if run_paths:
        return {r.run_id: r for r in load_runs(run_paths)}
    found = []
    for p in dict.fromkeys(study_runs["path"].dropna()):
        if Path(p).is_dir():
            found.append(p)
    if not found:
        notes.append("metric agreement needs the runs: pass them (inpaintbench humans DB RUN_A RUN_B ...)")
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            runs = load_runs(found)
        except InputError as exc:
            notes.append(f"the runs recorded in the database could not be loaded ({exc.message}); pass them")
            return {}
    return {r.run_id: r for r in runs}


def analyse(db_path: str | Path, run_paths: Sequence[str | Path] | None = None, n_boot: int = 1000,
            seed: int = 0, alpha: float = 0.05) -> HumanAnalysis:
    judgments, study_runs = load_judgments(db_path)
    notes: list[str] = []
    runs = _load_runs(run_paths, study_runs, notes)
    labels = _labels(study_runs, runs)
    model = judgments[judgments["kind"] == "model"].copy()
    attention = judgments[judgments["kind"] == "attention"].copy()
    if model.empty:
        notes.append("no model-pair judgments yet")
    order = [r for r in dict.fromkeys([*study_runs["run_id"], *model["run_a"], *model["run_b"]]) if r]
    order = [r for r in order if r in set(model["run_a"]) | set(model["run_b"])]
    overview = {"judgments": int(len(judgments)), "model_judgments": int(len(model)),
                "attention_checks": int(len(attention)), "raters": int(judgments["rater"].nunique()),
                "studies": int(judgments["study_key"].nunique()), "samples": int(model["sample_id"].nunique()),
                "models": len(order), "ties": int((model["choice"] == "tie").sum()),
                "gt_shown": int(model["gt_shown"].sum()) if len(model) else 0,
                "left_chosen": int((model["choice"] == "left").sum()),
                "right_chosen": int((model["choice"] == "right").sum())}

    # Per model pair: win rate (ties left out), Wilson CI, sign test.
    pair_rows = []
    for a, b in itertools.combinations(order, 2):
        sel = model[((model["run_a"] == a) & (model["run_b"] == b)) | ((model["run_a"] == b) & (model["run_b"] == a))]
        if sel.empty:
            continue
        wa, wb = int((sel["winner_run"] == a).sum()), int((sel["winner_run"] == b).sum())
        ties = int((sel["choice"] == "tie").sum())
        lo, hi = stats.wilson(wa, wa + wb, alpha)
        pair_rows.append({"run_a": a, "run_b": b, "model_a": labels.get(a, a), "model_b": labels.get(b, b),
                          "n": len(sel), "wins_a": wa, "wins_b": wb, "ties": ties,
                          "win_rate_a": wa / (wa + wb) if wa + wb else math.nan, "ci_low": lo, "ci_high": hi,
                          "p_value": stats.sign_test(wa, wb)})
    pairs = pd.DataFrame(pair_rows, columns=["run_a", "run_b", "model_a", "model_b", "n", "wins_a", "wins_b",
                                             "ties", "win_rate_a", "ci_low", "ci_high", "p_value"])

    # Bradley–Terry over all models, cluster bootstrap over images.
    bt_rows = []
    if len(order) >= 2 and len(model):
        idx = {r: i for i, r in enumerate(order)}
        samples = sorted(model["sample_id"].unique())
        sidx = {s: i for i, s in enumerate(samples)}
        w = np.zeros((len(samples), len(order), len(order)))
        for s, ra, rb, choice, win in zip(model["sample_id"], model["run_a"], model["run_b"], model["choice"],
                                          model["winner_run"], strict=True):
            i, k = idx[ra], idx[rb]
            if choice == "tie":
                w[sidx[s], i, k] += 0.5
                w[sidx[s], k, i] += 0.5
            elif win == ra:
                w[sidx[s], i, k] += 1
            else:
                w[sidx[s], k, i] += 1
        score, low, high = stats.bootstrap_bradley_terry(w, n_boot=n_boot, seed=seed, alpha=alpha)
        n_per = (w + np.swapaxes(w, 1, 2)).sum(axis=(0, 2))
        for r in order:
            i = idx[r]
            bt_rows.append({"run_id": r, "model": labels.get(r, r), "score": float(score[i]),
                            "ci_low": float(low[i]), "ci_high": float(high[i]), "n": int(round(n_per[i]))})
    bt = pd.DataFrame(bt_rows, columns=["run_id", "model", "score", "ci_low", "ci_high", "n"])
    bt = bt.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)

    # Raters: time, GT use, attention checks, consistency on repeated units.
    rater_rows = []
    model["outcome"] = _outcome(model)
    for name in sorted(judgments["rater"].unique()):
        mine = model[model["rater"] == name]
        att = attention[attention["rater"] == name]
        passed = int((att["choice"] == att["expected"]).sum())
        agree = total = 0
        units = 0
        for _, g in mine.groupby(["sample_id", "run_a", "run_b"]):
            if len(g) < 2:
                continue
            units += 1
            outs = list(g["outcome"])
            for x, y in itertools.combinations(outs, 2):
                total += 1
                agree += int(x == y)
        rater_rows.append({"rater": name, "judgments": int(len(mine)),
                           "median_ms": float(mine["ms"].median()) if mine["ms"].notna().any() else math.nan,
                           "gt_shown": int(mine["gt_shown"].sum()), "ties": int((mine["choice"] == "tie").sum()),
                           "attention_passed": passed, "attention_total": int(len(att)),
                           "repeated_units": units, "consistency": agree / total if total else math.nan})
    raters = pd.DataFrame(rater_rows, columns=["rater", "judgments", "median_ms", "gt_shown", "ties",
                                               "attention_passed", "attention_total", "repeated_units",
                                               "consistency"])

    # Krippendorff's α across raters: a unit's value per rater is that rater's first judgment of it.
    first = model.drop_duplicates(["rater", "sample_id", "run_a", "run_b"], keep="first")
    per_unit = first.groupby(["sample_id", "run_a", "run_b"])["outcome"].apply(list)
    alpha_value = stats.krippendorff_alpha_nominal(list(per_unit)) if first["rater"].nunique() >= 2 else math.nan
    alpha_info = {"alpha": alpha_value, "raters": int(first["rater"].nunique()),
                  "pairable_units": int(sum(len(v) >= 2 for v in per_unit)),
                  "note": "" if first["rater"].nunique() >= 2 else "needs at least two raters"}

    units = agreement.unit_votes(model)
    agr = agreement.two_afc(units, runs, n_boot=n_boot, seed=seed, alpha=alpha,
                            ceiling_units=agreement.unit_votes(first))
    ranking = agreement.ranking_agreement(bt, runs) if runs and len(bt) else \
        pd.DataFrame(columns=["metric", "kind", "n_models", "tau", "p_value", "note"])
    return HumanAnalysis(Path(db_path), overview, pairs, bt, raters, alpha_info, agr, ranking, notes)
