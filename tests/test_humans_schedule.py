"""The seeded, balanced pair schedule (pure function: no server, no runs)."""

from __future__ import annotations

import itertools
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from inpaintbench.humans.db import ATTENTION_RUNS
from inpaintbench.humans.schedule import n_units, rater_schedule

SAMPLES = [f"s{i}" for i in range(8)]
RUNS = ["r0", "r1", "r2"]


def _model(slots):
    return [s for s in slots if s.kind == "model" and s.repeat_of is None]


def test_every_unit_once_per_pass_and_model_pairs_balanced_in_every_round() -> None:
    slots = rater_schedule(SAMPLES, RUNS, seed=3, rater="ann", repeats=0.0, passes=2)
    assert len(slots) == 2 * n_units(len(SAMPLES), len(RUNS))
    for p in range(2):
        first = slots[p * 24:(p + 1) * 24]
        units = Counter((s.sample_id, s.run_a, s.run_b) for s in first)
        assert len(units) == 24 and set(units.values()) == {1}
        # Round-robin: each block of 3 consecutive slots holds each model pair once.
        for r in range(8):
            block = {(s.run_a, s.run_b) for s in first[3 * r:3 * r + 3]}
            assert block == set(itertools.combinations(RUNS, 2))


def test_sides_are_balanced_per_model_pair_and_recorded() -> None:
    slots = rater_schedule(SAMPLES, RUNS, seed=0, rater="bob", repeats=0.0)
    for pair in itertools.combinations(RUNS, 2):
        swapped = [s.swapped for s in slots if (s.run_a, s.run_b) == pair]
        assert sum(swapped) == len(swapped) // 2  # 8 images: exactly 4 swapped
    for s in slots:
        assert (s.left_run, s.right_run) == ((s.run_b, s.run_a) if s.swapped else (s.run_a, s.run_b))


def test_schedule_is_deterministic_per_seed_and_rater() -> None:
    a = rater_schedule(SAMPLES, RUNS, seed=1, rater="ann", attention=0.2)
    assert a == rater_schedule(SAMPLES, RUNS, seed=1, rater="ann", attention=0.2)
    assert a != rater_schedule(SAMPLES, RUNS, seed=1, rater="bob", attention=0.2)
    assert a != rater_schedule(SAMPLES, RUNS, seed=2, rater="ann", attention=0.2)


def test_repeats_come_later_with_sides_flipped() -> None:
    slots = rater_schedule(SAMPLES, RUNS, seed=5, rater="cy", repeats=0.25)
    reps = [s for s in slots if s.repeat_of is not None]
    assert len(reps) == round(0.25 * 24)
    for r in reps:
        orig = slots[r.repeat_of]
        assert orig.seq < r.seq and orig.repeat_of is None
        assert (orig.sample_id, orig.run_a, orig.run_b) == (r.sample_id, r.run_a, r.run_b)
        assert orig.swapped != r.swapped
    assert [s.seq for s in slots] == list(range(len(slots)))


def test_attention_checks_know_their_answer() -> None:
    slots = rater_schedule(SAMPLES, RUNS, seed=7, rater="di", attention=0.25)
    checks = [s for s in slots if s.kind == "attention"]
    assert len(checks) == 6
    for c in checks:
        assert c.run_a in RUNS and c.run_b in ATTENTION_RUNS
        real_side = "left" if c.left_run == c.run_a else "right"
        assert c.expected == real_side


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 9), st.integers(2, 4), st.integers(0, 2**31), st.floats(0, 0.5))
def test_any_prefix_is_balanced_across_model_pairs(n_samples: int, n_runs: int, seed: int, repeats: float) -> None:
    samples = [f"x{i}" for i in range(n_samples)]
    runs = [f"m{i}" for i in range(n_runs)]
    slots = _model(rater_schedule(samples, runs, seed=seed, rater="r", repeats=repeats))
    for k in range(1, len(slots) + 1):
        counts = Counter((s.run_a, s.run_b) for s in slots[:k])
        pairs = n_runs * (n_runs - 1) // 2
        values = [counts.get(p, 0) for p in itertools.combinations(runs, 2)]
        assert max(values) - min(values) <= 1, (k, counts, pairs)
