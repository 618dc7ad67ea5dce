"""The diffusers adapter on a tiny random pipeline built offline (tests/diffusion_fixtures.py).

What is proved here: the harness/pipeline conventions (polarity, value range, padding), per-sample seeding
independent of the batch, the recorded provenance (files hashed, revision, options), and that every bad
input is a one-line error with the fix.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from diffusion_fixtures import save_tiny_pipeline  # noqa: E402

from inpaintbench.errors import InputError, WeightsError  # noqa: E402
from inpaintbench.models import create_model, get_model_spec, list_model_prefixes  # noqa: E402


@pytest.fixture(scope="module")
def pipe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_pipeline(tmp_path_factory.mktemp("tiny") / "pipe")


def _batch(n: int = 3, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rs = np.random.RandomState(seed)
    images = rs.randint(0, 256, (n, size, size, 3), dtype=np.uint8)
    holes = np.zeros((n, size, size), bool)
    for i in range(n):
        holes[i, 4 + i: 20 + i, 6: 26 - i] = True
    return images, holes


# --------------------------------------------------------------------------- registry


def test_registering_the_prefix_imports_nothing_heavy() -> None:
    code = ("import sys, inpaintbench.models as m; m.list_models(); "
            "assert 'diffusers:<id>' in [s.name for s in m.list_model_prefixes()]; "
            "heavy = [k for k in ('diffusers', 'transformers', 'inpaintbench.models.diffusion.adapter') "
            "if k in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_prefix_spec_has_licence_and_native_size() -> None:
    (spec,) = [s for s in list_model_prefixes() if s.name == "diffusers:<id>"]
    assert spec.licence and spec.native_size and "diffusion" in spec.tags
    assert "[" not in spec.summary  # listings render summaries through rich markup
    assert get_model_spec("diffusers:org/name").name == "diffusers:org/name"


# --------------------------------------------------------------------------- conventions


def test_pipeline_gets_unit_range_images_and_holes_as_ones(pipe_dir: Path, isolated_home: Path) -> None:
    model = create_model(f"diffusers:{pipe_dir}", steps=1, device="cpu")
    seen: dict = {}
    real_call = model.pipe.__call__

    def spy(**kwargs):
        seen.update(kwargs)
        return real_call(**kwargs)

    model.pipe = _CallSpy(model.pipe, spy)
    images, holes = _batch(1)
    out = model.inpaint(images, holes, ids=["x"])
    assert out.dtype == np.float32 and out.shape == images.shape
    assert 0.0 <= out.min() and out.max() <= 1.0
    np.testing.assert_array_equal(seen["image"], images.astype(np.float32) / 255)
    # diffusers' inpainting polarity: mask_image 1 = repaint, i.e. our holes
    np.testing.assert_array_equal(seen["mask_image"][..., 0], holes.astype(np.float32))
    assert seen["prompt"] == [""] and seen["output_type"] == "np"
    assert (seen["height"], seen["width"]) == holes.shape[1:]
    assert seen["num_inference_steps"] == 1 and len(seen["generator"]) == 1


class _CallSpy:
    """Wraps a pipeline so that calling it goes through ``spy`` (attributes pass through)."""

    def __init__(self, pipe, spy):
        self._pipe, self._spy = pipe, spy

    def __call__(self, **kwargs):
        return self._spy(**kwargs)

    def __getattr__(self, name):
        return getattr(self._pipe, name)


def test_pad_multiple_is_8_and_other_sizes_are_refused(pipe_dir: Path, isolated_home: Path) -> None:
    model = create_model(f"diffusers:{pipe_dir}", steps=1, device="cpu")
    assert model.pad_multiple == 8 and model.describe()["pad_multiple"] == 8
    images, holes = _batch(1, size=36)
    with pytest.raises(InputError, match="multiples of 8"):
        model.inpaint(images, holes)


def test_harness_pads_crops_and_composites(pipe_dir: Path, isolated_home: Path) -> None:
    """A 30x37 image through the runner's batch loop: the model sees 32x40, the output is cropped back,
    and the known pixels come out exactly as the ground truth although the VAE round-trip changed them."""
    from inpaintbench.runner import Sample, model_batches

    model = create_model(f"diffusers:{pipe_dir}", steps=1, device="cpu")
    shapes = []
    raw_out = []
    inner = model.inpaint

    def recording(images, holes, ids=None):
        shapes.append(images.shape)
        raw_out.append(inner(images, holes, ids))
        return raw_out[-1]

    model.inpaint = recording
    rs = np.random.RandomState(1)
    gt = rs.randint(0, 256, (2, 30, 37, 3), dtype=np.uint8)
    holes = np.zeros((2, 30, 37), bool)
    holes[:, 5:20, 8:30] = True

    class Data:
        def __getitem__(self, i):
            return f"img{i}", gt[i]

    class Masks:
        def get(self, i):
            return holes[i]

        def describe(self):
            return {"name": "test"}

    batch = [Sample(i, i, i, f"img{i}", f"m{i}") for i in range(2)]
    ((_, result),) = list(model_batches(model, Data(), Masks(), [batch], {0}))
    assert shapes == [(2, 32, 40, 3)]
    assert result.errors == [None, None]
    known = ~holes
    np.testing.assert_array_equal(result.pred[known], gt[known])
    raw_known_u8 = np.rint(raw_out[0][:, :30, :37][known] * 255)
    assert np.abs(raw_known_u8 - gt[known]).max() > 0  # the VAE round-trip did alter the known region


# --------------------------------------------------------------------------- determinism


def test_same_sample_is_bit_identical_in_batches_of_1_and_3(pipe_dir: Path, isolated_home: Path) -> None:
    model = create_model(f"diffusers:{pipe_dir}", steps=2, device="cpu", seed=5)
    images, holes = _batch(3)
    ids = ["a", "b", "c"]
    together = model.inpaint(images, holes, ids=ids)
    alone = model.inpaint(images[1:2], holes[1:2], ids=["b"])
    np.testing.assert_array_equal(together[1], alone[0])
    again = model.inpaint(images[::-1].copy(), holes[::-1].copy(), ids=ids[::-1])
    np.testing.assert_array_equal(again[::-1], together)
    # the id, not the position, seeds the sample; the seed changes it
    other_id = model.inpaint(images[1:2], holes[1:2], ids=["z"])
    assert np.abs(other_id - alone).max() > 1e-3
    model.seed = 6
    assert np.abs(model.inpaint(images[1:2], holes[1:2], ids=["b"]) - alone).max() > 1e-3


@pytest.mark.parametrize("scheduler", [None, "euler_a"])
def test_one_pipeline_call_for_the_batch_matches_single_calls(pipe_dir: Path, isolated_home: Path,
                                                              scheduler: str | None) -> None:
    """``micro_batch=3`` sends the three samples through one pipeline call with a list of generators.

    Compared in float64, so the only difference left is summation order inside batched kernels: a few ulps
    (2.2e-16) amplified through two denoising steps and the decoder. In float32 the same comparison shows
    ~2e-6 = ~20 ulps, so 1e-12 (4500 ulps of float64) is far above rounding and far below what a sample drawing
    another sample's noise moves (>1e-3 above). Euler-ancestral adds fresh noise at every step (per-sample too).
    """
    model = create_model(f"diffusers:{pipe_dir}", steps=2, device="cpu", precision="fp64", micro_batch=3,
                         scheduler=scheduler)
    images, holes = _batch(3)
    together = model.inpaint(images, holes, ids=["a", "b", "c"])
    for i, sid in enumerate("abc"):
        alone = model.inpaint(images[i:i + 1], holes[i:i + 1], ids=[sid])
        np.testing.assert_allclose(together[i], alone[0], rtol=0, atol=1e-12)


def test_without_ids_the_content_seeds_the_sample(pipe_dir: Path, isolated_home: Path) -> None:
    model = create_model(f"diffusers:{pipe_dir}", steps=1, device="cpu")
    images, holes = _batch(2)
    a = model.inpaint(images, holes)
    b = model.inpaint(images[1:], holes[1:])
    np.testing.assert_array_equal(a[1], b[0])


# --------------------------------------------------------------------------- options and provenance


def test_describe_records_options_files_and_pad(pipe_dir: Path, isolated_home: Path) -> None:
    model = create_model(f"diffusers:{pipe_dir}", steps=3, guidance=2.0, strength=0.9, prompt="a b",
                         negative_prompt="c", scheduler="ddim", device="cpu")
    d = model.describe()
    json.dumps(d)  # goes into the manifest
    assert d["options"] == {"prompt": "a b", "negative_prompt": "c", "steps": 3, "guidance": 2.0, "strength": 0.9,
                            "scheduler": "DDIMScheduler", "precision": "fp32", "cpu_offload": False,
                            "variant": None, "micro_batch": None}
    assert d["pipeline"] == "StableDiffusionInpaintPipeline" and d["unet_in_channels"] == 9
    w = d["weights"]
    assert w["source"] == "local" and w["revision"] is None and w["repo_id"] is None
    names = {f["file"] for f in w["files"]}
    assert {"model_index.json", "unet/diffusion_pytorch_model.safetensors", "vae/config.json",
            "tokenizer/tokenizer_config.json", "text_encoder/config.json", "scheduler/scheduler_config.json"} <= names
    for f in w["files"]:
        assert f["sha256"] == hashlib.sha256((pipe_dir / f["file"]).read_bytes()).hexdigest()
    # defaults are the pipeline's own, recorded as numbers
    d0 = create_model(f"diffusers:{pipe_dir}", device="cpu").describe()["options"]
    assert (d0["steps"], d0["guidance"], d0["strength"], d0["prompt"]) == (50, 7.5, 1.0, "")


def test_prompt_and_negative_prompt_reach_the_pipeline(pipe_dir: Path, isolated_home: Path) -> None:
    images, holes = _batch(1)
    outs = {}
    for prompt, neg in (("", None), ("a b c", None), ("a b c", "x")):
        model = create_model(f"diffusers:{pipe_dir}", steps=1, device="cpu", prompt=prompt, negative_prompt=neg)
        outs[(prompt, neg)] = model.inpaint(images, holes, ids=["s"])
    assert np.abs(outs[("", None)] - outs[("a b c", None)]).max() > 0
    assert np.abs(outs[("a b c", None)] - outs[("a b c", "x")]).max() > 0


def test_guidance_has_no_effect_with_an_empty_prompt(pipe_dir: Path, isolated_home: Path) -> None:
    """The README's advice: with prompt "" and no negative prompt, SD's two guidance branches get the same
    text embedding, so uncond + g * (cond - uncond) is cond whatever g, up to the rounding of the UNet run on
    a batch of 2 instead of 1 (float64 and 1e-12, as in the batching test above)."""
    images, holes = _batch(1)
    outs = [create_model(f"diffusers:{pipe_dir}", steps=1, device="cpu", guidance=g, precision="fp64").inpaint(
        images, holes, ids=["s"]) for g in (1.0, 7.5)]
    np.testing.assert_allclose(outs[0], outs[1], rtol=0, atol=1e-12)
    with_text = create_model(f"diffusers:{pipe_dir}", steps=1, device="cpu", guidance=7.5, precision="fp64",
                             prompt="a b").inpaint(images, holes, ids=["s"])
    assert np.abs(with_text - outs[0]).max() > 1e-6


def test_file_hashes_are_cached_by_size_and_mtime(pipe_dir: Path, isolated_home: Path,
                                                  monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import shutil

    from inpaintbench.models.diffusion import source

    copy = Path(shutil.copytree(pipe_dir, tmp_path / "copy"))
    calls: list[Path] = []
    real = source._sha256
    monkeypatch.setattr(source, "_sha256", lambda p: calls.append(p) or real(p))
    src = source.locate(str(copy))
    first = source.hash_files(src)
    assert len(calls) == len(first) > 5
    calls.clear()
    assert source.hash_files(src) == first and calls == []
    target = copy / "scheduler" / "scheduler_config.json"
    target.write_text(target.read_text().replace("DDIMScheduler", "DDIMScheduler "))
    third = source.hash_files(src)
    assert [p.name for p in calls] == ["scheduler_config.json"]
    assert source.content_digest(third) != source.content_digest(first)


def _fake_hub_cache(root: Path, repo_id: str, pipe_dir: Path, commit: str) -> Path:
    import shutil

    repo = root / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(pipe_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return repo


def test_hub_id_from_the_cache_records_repo_and_revision(pipe_dir: Path, isolated_home: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, no_network) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    _fake_hub_cache(tmp_path / "hub", "someone/tiny-inpaint", pipe_dir, commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    d = create_model("diffusers:someone/tiny-inpaint", steps=1, device="cpu").describe()
    assert d["weights"]["source"] == "hub-cache"
    assert (d["weights"]["repo_id"], d["weights"]["revision"]) == ("someone/tiny-inpaint", commit)
    # the snapshot folder used directly as a local dir gives the same provenance
    snap = tmp_path / "hub" / "models--someone--tiny-inpaint" / "snapshots" / commit
    d2 = create_model(f"diffusers:{snap}", steps=1, device="cpu").describe()["weights"]
    assert (d2["repo_id"], d2["revision"], d2["content_sha256"]) == ("someone/tiny-inpaint", commit,
                                                                      d["weights"]["content_sha256"])


def test_missing_hub_model_names_the_cache_and_the_download_command(isolated_home: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    no_network) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(WeightsError) as err:
        create_model("diffusers:someone/absent-inpainting")
    text = str(err.value)
    assert str(tmp_path / "hub" / "models--someone--absent-inpainting") in text
    assert "hf download someone/absent-inpainting" in text and "huggingface-cli download" in text
    assert no_network == []


# --------------------------------------------------------------------------- errors


def test_text_to_image_pipeline_is_refused_before_loading(tmp_path: Path, isolated_home: Path) -> None:
    t2i = save_tiny_pipeline(tmp_path / "t2i", in_channels=4, text_to_image=True)
    with pytest.raises(InputError, match="text-to-image.*in_channels=4") as err:
        create_model(f"diffusers:{t2i}")
    assert "inpainting checkpoint" in err.value.fix and "\n" not in str(err.value)


@pytest.mark.parametrize("case", ["file", "missing", "no-index", "model-only"])
def test_not_a_pipeline_directory(tmp_path: Path, isolated_home: Path, case: str) -> None:
    path = tmp_path / "thing"
    if case == "file":
        path.write_bytes(b"x")
    elif case == "no-index":
        path.mkdir()
    elif case == "model-only":
        path.mkdir()
        (path / "config.json").write_text('{"_class_name": "UNet2DConditionModel"}')
    with pytest.raises(InputError) as err:
        create_model(f"diffusers:{path}")
    assert str(path) in str(err.value) and err.value.fix and "\n" not in str(err.value)
    if case == "model-only":
        assert "single model" in str(err.value)


@pytest.mark.parametrize("kwargs, match", [
    ({"precision": "fp8"}, "precision"),
    ({"scheduler": "NoSuchScheduler"}, "scheduler"),
    ({"steps": 0}, "steps"),
    ({"steps": "many"}, "steps"),
    ({"strength": 1.5}, "strength"),
    ({"cpu_offload": True, "device": "cpu"}, "CUDA"),
    ({"revision": "main"}, "revision"),
    ({"micro_batch": 0}, "micro_batch"),
])
def test_bad_options_are_one_line_errors(pipe_dir: Path, isolated_home: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match) as err:
        create_model(f"diffusers:{pipe_dir}", **kwargs)
    assert err.value.fix


def test_missing_diffusers_tells_how_to_install(pipe_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_diffusers(name, *args, **kwargs):
        if name == "diffusers" or name.startswith("diffusers."):
            raise ImportError("No module named 'diffusers'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_diffusers)
    with pytest.raises(InputError) as err:
        create_model(f"diffusers:{pipe_dir}")
    assert "pip install inpaintbench[diffusers]" in err.value.fix


def test_broken_weights_are_a_weights_error(pipe_dir: Path, tmp_path: Path, isolated_home: Path) -> None:
    import shutil

    copy = Path(shutil.copytree(pipe_dir, tmp_path / "broken"))
    os.remove(copy / "unet" / "diffusion_pytorch_model.safetensors")
    with pytest.raises(WeightsError, match="cannot load") as err:
        create_model(f"diffusers:{copy}", device="cpu")
    assert "\n" not in str(err.value)
