"""The issue-12 metrics inside the one MetricSuite pass and the run directory: registry entries,
"unavailable" with file/URL/sha256 when weights are missing, values equal to the functional twins,
saved features, run identity, compare's bootstrap, and `inpaintbench run` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from inpaintbench import weights as W
from inpaintbench.metrics import clip_features as C
from inpaintbench.metrics import dinov2 as D
from inpaintbench.metrics import netweights
from inpaintbench.metrics.info import DEFAULT_METRICS, METRICS, feature_files
from inpaintbench.metrics.suite import MetricSuite

NEW = ("fd_dinov2", "cmmd", "dists", "lpips_hole", "precision", "recall", "density", "coverage",
       "precision_dinov2", "recall_dinov2", "density_dinov2", "coverage_dinov2")


def _batch(n: int, size: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    holes = np.zeros((n, size, size), dtype=bool)
    holes[:, 8:20, 6:22] = True
    pred = gt.copy()
    pred[holes] = rng.integers(0, 256, (int(holes.sum()), 3), dtype=np.uint8)
    return pred, gt, holes


def test_registry_entries_carry_metadata_and_are_opt_in():
    for name in NEW:
        info = METRICS[name]
        assert name not in DEFAULT_METRICS
        assert info.value_range and info.variant and info.label
        assert info.scope == ("set" if info.family == "set" else "per-image")
        if name in ("fd_dinov2", "cmmd", "dists", "lpips_hole") or name.endswith("_dinov2"):
            assert info.weights, name
    assert METRICS["fd_dinov2"].features == "dinov2" and METRICS["cmmd"].features == "clip"
    assert METRICS["precision"].features == "inception" and METRICS["coverage_dinov2"].features == "dinov2"
    assert feature_files("dinov2") == ("dinov2_fake", "dinov2_real") and feature_files("inception") == ("fake", "real")


@pytest.mark.parametrize("metric, weight_id", [
    ("fd_dinov2", "dinov2-vitl14"), ("precision_dinov2", "dinov2-vitl14"), ("cmmd", "clip-vitl14-336"),
    ("dists", "torchvision-vgg16"), ("lpips_hole", "torchvision-alexnet"), ("precision", "inception-tf"),
    ("recall", "inception-tf"), ("density", "inception-tf"), ("coverage", "inception-tf"),
])
def test_missing_weights_make_each_metric_unavailable_naming_file_url_and_sha256(
        metric, weight_id, tmp_path, isolated_home, no_network):
    suite = MetricSuite([metric, "psnr"], offline=True, weights_dir=tmp_path / "empty")
    status = suite.status[metric]
    spec = W.get_weight_spec(weight_id)
    assert status.startswith("unavailable: ")
    assert str(tmp_path / "empty" / spec.filename) in status  # the exact file
    assert spec.urls[0] in status  # the URL
    assert "sha256 " + (spec.sha256 or "not published (recorded on first import)") in status \
        or (spec.sha256 is None and "recorded on first import" in status)
    assert f"inpaintbench weights import {weight_id}" in status
    assert suite.status["psnr"] == "ok"
    pred, gt, holes = _batch(3)
    out = suite.update(pred, gt, holes, ids=["a", "b", "c"])
    assert metric not in out.per_image
    res = suite.compute()
    if METRICS[metric].family == "set":
        assert res[metric].status == "unavailable" and res[metric].reason == status


# ----------------------------------------------------------------- the suite with small networks
def _small_embedders(monkeypatch):
    """Stand-ins for the two big extractors with the same classes and preprocessing (see
    test_metrics_networks.py for why a small configuration checks the same code path)."""
    import inpaintbench.metrics.suite as S

    def create(space, device, max_batch, wkw):
        torch.manual_seed(0)
        if space == "dinov2":
            return D.DINOv2Extractor(None, device, max_batch,
                                     net=D.build_network("vit_small_patch14_dinov2", depth=1))
        vision = {"image_size": 336, "layers": 1, "width": 64, "patch_size": 14, "head_width": 32}
        return C.CLIPExtractor(None, device, max_batch, net=C.build_vision_tower(32, vision))

    monkeypatch.setattr(S, "_create_embedder", create)


@pytest.mark.slow
def test_new_set_metrics_in_one_pass_equal_the_functional_twins(monkeypatch, fast_metric_weights_dir):
    from inpaintbench.metrics.fid import frechet_distance
    from inpaintbench.metrics.mmd import cmmd
    from inpaintbench.metrics.prdc import prdc

    _small_embedders(monkeypatch)
    names = ["fd_dinov2", "cmmd", "precision", "recall", "density", "coverage", "precision_dinov2",
             "coverage_dinov2", "lpips", "lpips_hole"]
    suite = MetricSuite(names, feature_extractor="inception-stylegan2", weights_dir=fast_metric_weights_dir,
                        offline=True, set_n_boot=20, seed=1)
    assert all(v == "ok" for v in suite.status.values()), suite.status
    outs = [suite.update(*_batch(4, seed=s), ids=[f"{s}-{i}" for i in range(4)]) for s in range(2)]
    feats = {k: np.concatenate([o.features[k] for o in outs]) for k in outs[0].features}
    assert set(feats) == {"fake", "real", "dinov2_fake", "dinov2_real", "clip_fake", "clip_real"}
    assert suite.feature_kinds == ["dinov2_fake", "dinov2_real", "clip_fake", "clip_real"]
    res = suite.compute()
    assert res["fd_dinov2"].value == pytest.approx(frechet_distance(feats["dinov2_real"], feats["dinov2_fake"]),
                                                   rel=1e-12)
    assert res["cmmd"].value == pytest.approx(cmmd(feats["clip_fake"], feats["clip_real"]), rel=1e-12)
    ref_i, ref_d = prdc(feats["real"], feats["fake"]), prdc(feats["dinov2_real"], feats["dinov2_fake"])
    for name in ("precision", "recall", "density", "coverage"):
        assert res[name].value == ref_i[name]
    assert res["precision_dinov2"].value == ref_d["precision"]
    assert res["coverage_dinov2"].value == ref_d["coverage"]
    for name in ("fd_dinov2", "cmmd", "precision", "coverage_dinov2"):
        r = res[name]
        assert r.n == 8 and r.ci_low <= r.value <= r.ci_high and r.extra["n_boot"] == 20, name
    # lpips stays the package's whole-image value; lpips_hole is a separate column
    lp = np.concatenate([o.per_image["lpips"] for o in outs])
    assert np.all(np.isfinite(np.concatenate([o.per_image["lpips_hole"] for o in outs])))
    plain = MetricSuite(["lpips"], weights_dir=fast_metric_weights_dir, offline=True)
    again = np.concatenate([plain.update(*_batch(4, seed=s)).per_image["lpips"] for s in range(2)])
    assert np.array_equal(lp, again)
    # the embeddings reach the manifest description (and so the run identity)
    desc = suite.describe()
    assert set(desc["embedders"]) == {"dinov2", "clip"} and desc["lpips_hole_margin_px"] == 8


def test_identity_holds_each_new_network_weights_hash():
    from inpaintbench.identity import identity_hash, metric_identity

    def desc(sha, path="/a", verified="recorded"):
        w = {"id": "dinov2-vitl14", "path": path, "sha256": sha, "verified": verified, "source": "weights_dir"}
        return {"metrics": ["fd_dinov2"], "status": {"fd_dinov2": "ok"},
                "embedders": {"dinov2": {"extractor": "dinov2-vitl14", "weights": w}},
                "dists": {"trunk": {"id": "torchvision-vgg16", "sha256": "v", "path": path}}}

    a = metric_identity(desc("1" * 64), None)
    assert a["embedders"]["dinov2"]["weights"]["sha256"] == "1" * 64 and a["dists"]["trunk"]["sha256"] == "v"
    assert identity_hash(a) != identity_hash(metric_identity(desc("2" * 64), None))
    # where the file lies and how it was verified do not change what is computed
    assert identity_hash(a) == identity_hash(metric_identity(desc("1" * 64, "/b", True), None))
    # runs without the new metrics keep their old identity (no new keys)
    old = metric_identity({"metrics": ["fid"], "status": {}, "embedders": {}}, None)
    assert "embedders" not in old and "dists" not in old


def test_compare_bootstrap_of_the_new_set_metrics():
    from inpaintbench.analysis.stats import set_metric_bootstrap
    from inpaintbench.metrics.fid import frechet_distance
    from inpaintbench.metrics.mmd import cmmd
    from inpaintbench.metrics.prdc import prdc

    rng = np.random.default_rng(0)
    real = rng.normal(size=(40, 8))
    fa, fb = real + rng.normal(0, 0.3, real.shape), real + rng.normal(0, 1.0, real.shape) + 0.5
    r = set_metric_bootstrap("fd_dinov2", fa, real, fb, real, n_boot=40, features="dinov2")
    assert r.value_a == frechet_distance(real, fa) and r.diff < 0 and r.ci_high < 0
    r = set_metric_bootstrap("precision", fa, real, fb, real, n_boot=40)
    assert r.value_a == prdc(real, fa)["precision"] and r.value_b == prdc(real, fb)["precision"]
    u = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    r = set_metric_bootstrap("cmmd", u(fa), u(real), u(fb), u(real), n_boot=40, features="clip")
    assert r.value_a == pytest.approx(cmmd(u(fa), u(real))) and r.ci_high < 0 and r.p < 0.05
    with pytest.raises(ValueError, match="dinov2 features"):  # Inception arrays for a DINOv2 metric
        set_metric_bootstrap("fd_dinov2", fa, real, fb, real, n_boot=5)


# ------------------------------------------------------------------------------------ end to end
def _write_full_size_random_weights(folder: Path) -> tuple[Path, Path]:
    """Seeded random ViT-L/14 in Meta's layout (518-px grid, mask_token) and CLIP ViT-L/14@336 in
    open_clip's layout, float16 to halve the files (the loaders cast to float32)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    vit = D.build_network(img_size=518)
    meta = {k: v.half() for k, v in vit.state_dict().items()}
    meta["mask_token"] = torch.zeros(1, 1024, dtype=torch.float16)
    dino = folder / "random_dinov2.pth"
    torch.save(meta, dino)
    del vit, meta
    tower = C.build_vision_tower()
    clip = folder / "random_clip.safetensors"
    save_file({f"visual.{k}": v.half().contiguous() for k, v in tower.state_dict().items()}, str(clip))
    return dino, clip


@pytest.mark.slow
def test_run_end_to_end_with_the_full_size_networks(capsys, tmp_path, random_weights_dir_vgg, monkeypatch,
                                                    isolated_home, no_network):
    from run_paths import model_run_dir, run_cli

    dino, clip = _write_full_size_random_weights(tmp_path / "files")
    weights = random_weights_dir_vgg
    netweights.register()
    # DINOv2 through `inpaintbench weights import` (hash recorded), CLIP through the env override
    code, out = run_cli(capsys, "weights", "import", "dinov2-vitl14", str(dino), "--weights-dir", str(weights))
    assert code == 0, out
    monkeypatch.setenv(W.env_override_name("clip-vitl14-336"), str(clip))
    metrics = "fd_dinov2,cmmd,dists,lpips_hole,precision,recall,density,coverage"
    code, out = run_cli(capsys, "run", "--model", "telea", "--limit", "2", "--batch-size", "2", "--offline",
                        "--weights-dir", str(weights), "--metrics", metrics, "--out", str(tmp_path / "runs"))
    assert code == 0, out
    run = model_run_dir(tmp_path / "runs", "telea")
    summary = json.loads((run / "summary.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    for name in ("fd_dinov2", "cmmd"):
        entry = summary["set_metrics"][name]
        assert entry["status"] == "ok" and entry["n"] == 2 and entry["ci_low"] <= entry["value"] <= entry["ci_high"]
    for name in ("precision", "recall", "density", "coverage"):  # k = 5 needs more than 5 images
        assert "more than k" in summary["set_metrics"][name]["reason"]
    import pandas as pd

    rows = pd.read_parquet(run / "per_image.parquet")
    assert rows["dists"].between(0, 1).all() and np.isfinite(rows["lpips_hole"]).all()
    for kind, dim in (("dinov2_fake", 1024), ("dinov2_real", 1024), ("clip_fake", 768), ("clip_real", 768),
                      ("fake", 2048), ("real", 2048)):
        assert np.load(run / "features" / f"{kind}.npy").shape == (2, dim), kind
    clip_rows = np.load(run / "features" / "clip_fake.npy")
    np.testing.assert_allclose(np.linalg.norm(clip_rows, axis=1), 1.0, atol=1e-5)
    ident = manifest["identity"]["metrics"]
    assert ident["embedders"]["dinov2"]["weights"]["sha256"] == W.sha256_file(dino)
    assert ident["embedders"]["clip"]["weights"]["sha256"] == W.sha256_file(clip)
    assert ident["dists"]["trunk"]["id"] == "torchvision-vgg16"


@pytest.mark.slow
def test_run_prdc_and_hole_lpips_end_to_end_with_saved_features(capsys, tmp_path, fast_metric_weights_dir):
    from run_paths import model_run_dir, run_cli

    code, out = run_cli(capsys, "run", "--model", "telea", "--limit", "8", "--batch-size", "3", "--offline",
                        "--weights-dir", str(fast_metric_weights_dir), "--feature-extractor", "inception-stylegan2",
                        "--metrics", "lpips,lpips_hole,precision,recall,density,coverage",
                        "--out", str(tmp_path / "runs"))
    assert code == 0, out
    run = model_run_dir(tmp_path / "runs", "telea")
    summary = json.loads((run / "summary.json").read_text())
    from inpaintbench.metrics.prdc import prdc

    fake, real = (np.load(run / "features" / f"{k}.npy") for k in ("fake", "real"))
    ref = prdc(real, fake)
    for name in ("precision", "recall", "density", "coverage"):
        entry = summary["set_metrics"][name]
        assert entry["value"] == ref[name] and entry["ci_low"] <= entry["value"] <= entry["ci_high"]
    assert "lpips_hole" in summary["metrics"] and "lpips" in summary["metrics"]
