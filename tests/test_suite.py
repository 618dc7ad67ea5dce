"""MetricSuite: all columns in one pass, graceful degradation, reference cache, resume, gathering."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import inpaintbench.metrics.fid as fidm  # the module (inpaintbench.metrics.fid is also a function name)
from inpaintbench.distributed import gather_features
from inpaintbench.errors import InputError, UnknownNameError, WeightsError
from inpaintbench.metrics.feature_cache import FeatureCache, ids_digest, reference_key
from inpaintbench.metrics.ids import inception_discriminative_scores
from inpaintbench.metrics.kid import kernel_inception_distance
from inpaintbench.metrics.lpips import LPIPSMetric
from inpaintbench.metrics.pixel import pixel_metrics
from inpaintbench.metrics.suite import (
    DEFAULT_METRICS,
    PIXEL_METRICS,
    MetricSuite,
    SetMetricResult,
)

FAST = dict(feature_extractor="inception-stylegan2", offline=True, fid_n_boot=20, kid_subsets=10)


def _batch(n: int, size: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    holes = np.zeros((n, size, size), dtype=bool)
    holes[:, size // 4: 3 * size // 4, size // 4: 3 * size // 4] = True
    pred = gt.copy()
    fill = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    pred[holes] = fill[holes]
    return pred, gt, holes


def test_all_columns_on_random_images(fast_metric_weights_dir: Path, no_network: list[str]):
    """Every metric the suite knows, in one pass, checked against the modules it delegates to."""
    metrics = (*DEFAULT_METRICS, "fid_inf")
    suite = MetricSuite(metrics=metrics, weights_dir=fast_metric_weights_dir, seed=1, **FAST)
    assert suite.status == {m: "ok" for m in metrics}
    pred, gt, holes = _batch(12, size=40)
    ids = [f"img{i}" for i in range(12)]
    out = suite.update(pred, gt, holes, ids=ids)
    assert set(out.per_image) == set(PIXEL_METRICS) | {"lpips"} == set(suite.per_image_metrics)
    for name, values in out.per_image.items():
        assert values.dtype == np.float64 and values.shape == (12,) and np.isfinite(values).all(), name
    direct = pixel_metrics(torch.from_numpy(pred), torch.from_numpy(gt), torch.from_numpy(holes))
    for name in PIXEL_METRICS:
        np.testing.assert_array_equal(out.per_image[name], direct[name].numpy())
    lp = LPIPSMetric("alex", weights_dir=fast_metric_weights_dir, offline=True)
    np.testing.assert_allclose(out.per_image["lpips"], lp(pred, gt).numpy(), atol=1e-6)
    assert set(out.features) == {"fake", "real"} and out.features["fake"].dtype == np.float32
    np.testing.assert_array_equal(out.features["fake"], suite.extractor(pred).numpy())
    np.testing.assert_array_equal(out.features["real"], suite.extractor(gt).numpy())

    res = suite.compute()
    assert set(res) == {"fid", "fid_inf", "kid", "p_ids", "u_ids"}
    for name, r in res.items():
        assert isinstance(r, SetMetricResult) and r.status == "ok" and r.n == 12, (name, r)
        assert r.value is not None and np.isfinite(r.value)
        assert "warning" in r.extra  # small N: the caveat travels with the value
    real, fake = out.features["real"], out.features["fake"]
    assert res["fid"].value == pytest.approx(fidm.frechet_distance(real, fake), rel=1e-9)
    ci = fidm.fid_bootstrap_ci(real, fake, n_boot=20, seed=1)
    assert (res["fid"].ci_low, res["fid"].ci_high) == (pytest.approx(ci.lo), pytest.approx(ci.hi))
    assert res["fid_inf"].value == pytest.approx(fidm.fid_infinity(real, fake, seed=1).fid_inf)
    assert "indicative only" in res["fid_inf"].extra["warning"]  # extrapolated from N below the dimensions
    desc = json.loads(json.dumps(suite.describe(), default=str))
    assert desc["feature_extractor"]["extractor"] == "inception-stylegan2"
    assert desc["feature_extractor"]["weights"]["verified"] is True
    assert len(desc["lpips"]["alex"]["trunk"]["sha256"]) == 64 and desc["status"] == suite.status
    assert no_network == []


@pytest.mark.slow
def test_default_suite_with_torch_fidelity_inception(random_weights_dir: Path, no_network: list[str]):
    """The default configuration end to end (2048-d torch-fidelity features: d×d eigh is slow)."""
    suite = MetricSuite(weights_dir=random_weights_dir, offline=True, fid_n_boot=0, kid_subsets=5)
    assert suite.status == {m: "ok" for m in DEFAULT_METRICS}
    pred, gt, holes = _batch(3, size=40)
    out = suite.update(pred, gt, holes, ids=["a", "b", "c"])
    assert out.features["fake"].shape == (3, 2048)
    res = suite.compute()
    assert all(r.status == "ok" and np.isfinite(r.value) for r in res.values()), res
    assert suite.describe()["feature_extractor"]["extractor"] == "inception-tf"
    assert no_network == []


def test_identical_images_give_zero_distances(fast_metric_weights_dir: Path):
    suite = MetricSuite(weights_dir=fast_metric_weights_dir, metrics=("psnr", "ssim", "lpips", "fid"), **FAST)
    _, gt, holes = _batch(6, seed=3)
    out = suite.update(gt, gt, holes)
    from inpaintbench.metrics.pixel import PSNR_CAP_DB

    # A pixel-perfect pair is PSNR = +inf, reported at the stated cap so every model averages the same samples.
    assert (out.per_image["psnr"] == PSNR_CAP_DB).all() and np.allclose(out.per_image["ssim"], 1.0)
    np.testing.assert_allclose(out.per_image["lpips"], 0.0, atol=1e-7)
    assert abs(suite.compute()["fid"].value) < 1e-6


def test_set_metrics_wire_real_and_fake_the_right_way_round(fast_metric_weights_dir: Path):
    suite = MetricSuite(weights_dir=fast_metric_weights_dir, metrics=("fid", "kid", "p_ids", "u_ids"), seed=5,
                        **{**FAST, "fid_n_boot": 0})
    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 64)).astype(np.float32)
    fake = (real + rng.normal(0.1, 0.5, size=real.shape)).astype(np.float32)
    res = suite.compute_from_features(fake, real)
    p, u = inception_discriminative_scores(real, fake)
    assert (res["p_ids"].value, res["u_ids"].value) == (pytest.approx(p), pytest.approx(u))
    misaligned_p, _ = inception_discriminative_scores(real, fake[rng.permutation(300)])
    assert abs(misaligned_p - p) > 0.1  # P-IDS depends on the pairing, which the suite must keep
    kid_mean, kid_std = kernel_inception_distance(real, fake, subsets=10, subset_size=300, seed=5)
    assert res["kid"].value == pytest.approx(kid_mean) and res["kid"].extra["std"] == pytest.approx(kid_std)
    assert res["fid"].value == pytest.approx(fidm.frechet_distance(real, fake), rel=1e-9)
    assert res["fid"].ci_low is None  # fid_n_boot=0


def test_streaming_batches_equal_one_batch_and_resume(fast_metric_weights_dir: Path):
    pred, gt, holes = _batch(8, seed=4)
    ids = [f"i{k}" for k in range(8)]
    whole = MetricSuite(weights_dir=fast_metric_weights_dir, **FAST)
    one = whole.update(pred, gt, holes, ids)
    parts = MetricSuite(weights_dir=fast_metric_weights_dir, **FAST)
    a = parts.update(pred[:3], gt[:3], holes[:3], ids[:3])
    b = parts.update(pred[3:], gt[3:], holes[3:], ids[3:])
    for name in one.per_image:
        joined = np.concatenate([a.per_image[name], b.per_image[name]])
        np.testing.assert_allclose(joined, one.per_image[name], atol=1e-6)
    r1, r2 = whole.compute(), parts.compute()
    for name in r1:
        assert r1[name].value == pytest.approx(r2[name].value, rel=1e-5, abs=1e-6), name
    # Resume: a new suite re-adds the saved features of the first part and scores the rest.
    resumed = MetricSuite(weights_dir=fast_metric_weights_dir, **FAST)
    resumed.add_features(a.features["fake"], a.features["real"], ids[:3])
    resumed.update(pred[3:], gt[3:], holes[3:], ids[3:])
    r3 = resumed.compute()
    for name in r1:
        assert r3[name].value == pytest.approx(r2[name].value, rel=1e-9, abs=1e-9), name


def test_missing_weights_degrade_gracefully(tmp_path: Path, isolated_home: Path, no_network: list[str]):
    suite = MetricSuite(weights_dir=tmp_path / "empty", offline=True)
    st = suite.status
    assert all(st[m] == "ok" for m in PIXEL_METRICS)
    for m in ("lpips", "fid", "kid", "p_ids", "u_ids"):
        assert st[m].startswith("unavailable: ") and "fix:" in st[m] and "inpaintbench weights" in st[m], m
    assert "torchvision-alexnet" in st["lpips"] and "inception-tf" in st["fid"]
    pred, gt, holes = _batch(3)
    out = suite.update(pred, gt, holes)
    assert set(out.per_image) == set(PIXEL_METRICS) and out.features == {}
    res = suite.compute()
    assert all(r.status == "unavailable" and r.value is None and r.reason == st[m] for m, r in res.items())
    assert suite.describe()["feature_extractor"]["available"] is False
    assert no_network == []


def test_require_turns_unavailable_into_an_error(tmp_path: Path, isolated_home: Path):
    with pytest.raises(WeightsError, match="lpips.*fid|required"):
        MetricSuite(weights_dir=tmp_path, offline=True, require=("lpips", "fid"))
    MetricSuite(metrics=("psnr",), weights_dir=tmp_path, offline=True, require=("psnr",))
    with pytest.raises(UnknownNameError):
        MetricSuite(metrics=("psnr", "fidd"))
    with pytest.raises(InputError):
        MetricSuite(metrics=("psnr",), require=("fid",))


def test_inputs_are_validated_and_autocast_does_not_change_metrics(fast_metric_weights_dir: Path):
    suite = MetricSuite(weights_dir=fast_metric_weights_dir, **FAST)
    pred, gt, holes = _batch(2, seed=6)
    with pytest.raises(InputError, match="uint8"):
        suite.update(pred.astype(np.float16), gt, holes)
    with pytest.raises(InputError, match="bool"):
        suite.update(pred, gt, holes.astype(np.uint8) * 255)
    with pytest.raises(InputError, match="shapes"):
        suite.update(pred, gt[:, :16], holes)
    plain = suite.update(pred, gt, holes)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as if the model had run in bf16
        auto = suite.update(pred, gt, holes)
    for name in plain.per_image:
        np.testing.assert_array_equal(plain.per_image[name], auto.per_image[name])
    np.testing.assert_array_equal(plain.features["fake"], auto.features["fake"])


def test_reference_cache_skips_real_extraction(fast_metric_weights_dir: Path, tmp_path: Path):
    cache = FeatureCache(tmp_path / "features")
    pred, gt, holes = _batch(6, seed=7)
    ids = [f"r{k}" for k in range(6)]
    kw = dict(weights_dir=fast_metric_weights_dir, reference_cache=cache, reference_ids=ids, **FAST)
    first = MetricSuite(**kw)
    assert not first.reference_cached
    first.update(pred[:4], gt[:4], holes[:4], ids[:4])
    first.update(pred[4:], gt[4:], holes[4:], ids[4:])
    r1 = first.compute()
    key = first.describe()["reference_cache"]["key"]
    assert key in cache

    second = MetricSuite(**kw)
    assert second.reference_cached and second.describe()["reference_cache"]["hit"]
    calls = []
    forward = second.extractor._forward
    second.extractor._forward = lambda x: calls.append(x.shape[0]) or forward(x)
    order = [5, 0, 3, 1, 4, 2]  # another model may visit the images in another order
    out = second.update(pred[order], gt[order], holes[order], [ids[i] for i in order])
    assert set(out.features) == {"fake"} and sum(calls) == 6  # only the fakes went through the net
    r2 = second.compute()
    for name in r1:
        assert r2[name].value == pytest.approx(r1[name].value, rel=1e-5, abs=1e-6), name
    with pytest.raises(InputError, match="ids"):
        second.update(pred, gt, holes)  # cached reals are matched by id


def test_feature_cache_roundtrip_keys_and_broken_entries(tmp_path: Path):
    cache = FeatureCache(tmp_path)
    feats = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    key = reference_key(["a", "b", "c"], "inception-tf", "ab" * 32, "native")
    assert key not in cache and cache.load(key) is None
    cache.save(key, ["a", "b", "c"], feats, {"note": "x"})
    got = cache.load(key)
    assert got.ids == ["a", "b", "c"] and got.meta["note"] == "x"
    np.testing.assert_array_equal(got.rows_for(["c", "a"]), feats[[2, 0]])
    with pytest.raises(KeyError, match="zz"):
        got.rows_for(["zz"])
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    variants = {
        reference_key(["b", "a", "c"], "inception-tf", "ab" * 32, "native"),
        reference_key(["a", "b", "c"], "inception-stylegan2", "ab" * 32, "native"),
        reference_key(["a", "b", "c"], "inception-tf", "cd" * 32, "native"),
        reference_key(["a", "b", "c"], "inception-tf", "ab" * 32, "resize-256"),
    }
    assert key not in variants and len(variants) == 4
    assert ids_digest(["a", "b"]) != ids_digest(["ab"])
    (tmp_path / f"{key}.npy").write_bytes(b"garbage")  # a torn/corrupt entry is a miss, not a crash
    assert cache.load(key) is None
    with pytest.raises(ValueError):
        cache.save(key, ["a", "a", "c"], feats)


def test_too_few_images_is_unavailable_not_a_crash(fast_metric_weights_dir: Path):
    suite = MetricSuite(weights_dir=fast_metric_weights_dir, **FAST)
    pred, gt, holes = _batch(1)
    suite.update(pred, gt, holes)
    res = suite.compute()
    assert all(r.status == "unavailable" and "at least 2" in r.reason for r in res.values())
    empty = MetricSuite(weights_dir=fast_metric_weights_dir, **FAST).compute()
    assert all(r.status == "unavailable" for r in empty.values())


def test_gather_features_is_identity_without_a_process_group():
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    assert gather_features(x) is x


# The two-process gloo gather is tested with torchrun-style environments in tests/test_distributed.py.
