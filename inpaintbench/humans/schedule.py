"""Which pair a rater sees next: a seeded, balanced order over every (image, model pair).

A rater's schedule is a pure function of (study seed, rater name, samples, runs, options), so a
restarted server hands out exactly the same sequence and a study continues where it stopped. Within
one pass:

* every (sample, model pair) unit appears once; the model pairs are interleaved round-robin (a
  fresh seeded order of the pairs each round), so every prefix of the schedule is balanced across
  model pairs to within one round;
* left/right is a seeded draw balanced per model pair (half of its units swapped, exactly when the
  count is even), and recorded;
* ``repeats`` is the share of units shown a second time later in the pass, with sides flipped (a
  rater who always picks one side is then visibly inconsistent), for per-rater consistency;
* ``attention`` is the share of extra attention checks: a run's completion against the input left
  unfilled or filled with its mean colour, whose expected answer (the completion) is known.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from inpaintbench.humans.db import ATTENTION_RUNS


@dataclass(frozen=True)
class Slot:
    """One position of a rater's schedule. ``run_a``/``run_b`` are in study order; ``swapped`` puts
    ``run_b`` on the left."""

    seq: int
    sample_id: str
    run_a: str
    run_b: str
    swapped: bool
    kind: str = "model"
    repeat_of: int | None = None
    expected: str | None = None

    @property
    def left_run(self) -> str:
        return self.run_b if self.swapped else self.run_a

    @property
    def right_run(self) -> str:
        return self.run_a if self.swapped else self.run_b


def _rng(seed: int, rater: str, pass_index: int) -> np.random.Generator:
    digest = int.from_bytes(hashlib.sha256(rater.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng([int(seed), digest, pass_index])


def _one_pass(samples: Sequence[str], runs: Sequence[str], rng: np.random.Generator,
              repeats: float, attention: float) -> list[dict]:
    pairs = list(itertools.combinations(range(len(runs)), 2))
    per_pair: list[list[dict]] = []
    for a, b in pairs:
        order = rng.permutation(len(samples))
        sides = np.arange(len(samples)) % 2 == 1  # half swapped...
        sides = sides[rng.permutation(len(samples))]  # ...in a seeded order
        per_pair.append([{"sample_id": samples[k], "run_a": runs[a], "run_b": runs[b], "swapped": bool(s),
                          "kind": "model"} for k, s in zip(order, sides, strict=True)])
    units: list[dict] = []
    for r in range(len(samples)):
        for p in rng.permutation(len(pairs)):
            units.append(per_pair[p][r])
    n = len(units)
    # Repeats: a flipped copy of unit i, inserted at a seeded position at least `gap` units later (or at the end).
    n_rep = int(round(repeats * n))
    gap = max(2, n // 4)
    inserts: list[tuple[int, int, dict]] = []
    for i in sorted(rng.choice(n, size=min(n_rep, n), replace=False).tolist()) if n_rep else []:
        lo = min(i + gap, n)
        at = int(rng.integers(lo, n + 1))
        inserts.append((at, i, {**units[i], "swapped": not units[i]["swapped"], "repeat_of_index": i}))
    n_att = int(round(attention * n))
    for _ in range(n_att):
        at = int(rng.integers(1, n + 1))
        real = runs[int(rng.integers(len(runs)))]
        fake = ATTENTION_RUNS[int(rng.integers(len(ATTENTION_RUNS)))]
        swapped = bool(rng.integers(2))
        inserts.append((at, n + 1, {"sample_id": samples[int(rng.integers(len(samples)))], "run_a": real,
                                    "run_b": fake, "swapped": swapped, "kind": "attention",
                                    "expected": "right" if swapped else "left"}))
    out: list[dict] = []
    pending = sorted(inserts, key=lambda t: (t[0], t[1]))
    k = 0
    for pos in range(n + 1):
        while k < len(pending) and pending[k][0] == pos:
            out.append(pending[k][2])
            k += 1
        if pos < n:
            out.append({**units[pos], "index": pos})
    return out


def rater_schedule(samples: Sequence[str], runs: Sequence[str], *, seed: int, rater: str,
                   repeats: float = 0.1, attention: float = 0.0, passes: int = 1) -> list[Slot]:
    """The full schedule of one rater (see the module docstring)."""
    if len(runs) < 2:
        raise ValueError("a study needs at least two runs")
    slots: list[Slot] = []
    for p in range(passes):
        items = _one_pass(list(samples), list(runs), _rng(seed, rater, p), repeats, attention)
        index_to_seq: dict[int, int] = {}
        for item in items:
            seq = len(slots)
            if "index" in item:
                index_to_seq[item["index"]] = seq
            rep = item.get("repeat_of_index")
            slots.append(Slot(seq=seq, sample_id=item["sample_id"], run_a=item["run_a"], run_b=item["run_b"],
                              swapped=item["swapped"], kind=item["kind"],
                              repeat_of=index_to_seq.get(rep) if rep is not None else None,
                              expected=item.get("expected")))
    return slots


def n_units(n_samples: int, n_runs: int) -> int:
    return n_samples * n_runs * (n_runs - 1) // 2
