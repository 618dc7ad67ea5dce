"""hf: datasets: save_to_disk folders, image-column detection, ClassLabel filters by name, stable ids,
a digest over the image bytes, offline hub names, and evaluation end to end (CLI and API)."""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from run_paths import model_run_dir, run_cli

import inpaintbench as ib
from inpaintbench.datasets import load_dataset
from inpaintbench.errors import InputError

datasets = pytest.importorskip("datasets")

GENRES = ["landscape", "portrait", "still life"]


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _make(n: int = 9, size: int = 256, seed: int = 0) -> tuple[list[np.ndarray], list[bytes], list[int]]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    images = [np.asarray(Image.fromarray(b).resize((size, size), Image.Resampling.BICUBIC)) for b in base]
    return images, [_png(a) for a in images], [i % 3 for i in range(n)]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray], list[bytes], list[int]]:
    images, encoded, genre = _make()
    features = datasets.Features({"image": datasets.Image(), "genre": datasets.ClassLabel(names=GENRES),
                                  "uid": datasets.Value("string"), "year": datasets.Value("int32")})
    ds = datasets.Dataset.from_dict({"image": [{"bytes": b, "path": None} for b in encoded], "genre": genre,
                                     "uid": [f"art-{i:02d}" for i in range(len(images))],
                                     "year": [1800 + i for i in range(len(images))]}, features=features)
    root = tmp_path_factory.mktemp("hf") / "wikiart-mini"
    ds.save_to_disk(str(root))
    return root, images, encoded, genre


def _load(spec: str, **options):  # noqa: ANN003, ANN202
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset(spec, options=options, offline=True)


def test_save_to_disk_filter_by_label_name_ids_and_digest(saved) -> None:  # noqa: ANN001
    root, images, encoded, genre = saved
    ds = _load(f"hf:{root}", filters=["genre=portrait"])
    keep = [i for i, g in enumerate(genre) if g == 1]
    assert ds.ids == [f"{i:06d}" for i in keep]  # row index in the split, before filtering
    for k, i in enumerate(keep):
        np.testing.assert_array_equal(ds[k][1], images[i])
    # The digest covers the encoded bytes of every image used, in order.
    h = hashlib.sha256(b"inpaintbench-hf-v1\n")
    for i in keep:
        h.update(f"{i:06d}\0{hashlib.sha256(encoded[i]).hexdigest()}\n".encode())
    assert ds.digest == h.hexdigest()
    d = ds.describe()
    assert d["image_column"] == "image" and d["filters"] == ["genre=portrait"] and d["n"] == len(keep)
    assert d["source"]["kind"] == "save_to_disk directory"

    both = _load(f"hf:{root}", filters=["genre=portrait", "genre=landscape"])  # OR within a column
    assert both.ids == [f"{i:06d}" for i, g in enumerate(genre) if g in (0, 1)]
    anded = _load(f"hf:{root}", filters={"genre": "portrait", "year": 1801})  # AND across columns
    assert anded.ids == ["000001"]
    by_uid = _load(f"hf:{root}", filters=["genre=portrait"], id_column="uid")
    assert by_uid.ids == [f"art-{i:02d}" for i in keep] and by_uid.digest != ds.digest
    assert _load(f"hf:{root}").digest != ds.digest


def test_bad_hf_options_are_clear_errors(saved, tmp_path) -> None:  # noqa: ANN001
    root = saved[0]
    with pytest.raises(InputError, match="'portraits' is not a label of genre.*portrait"):
        _load(f"hf:{root}", filters=["genre=portraits"])
    with pytest.raises(InputError, match="no such column"):
        _load(f"hf:{root}", filters=["style=x"])
    with pytest.raises(InputError, match="not COLUMN=VALUE"):
        _load(f"hf:{root}", filters=["genre"])
    with pytest.raises(InputError, match="occurs twice"):
        _load(f"hf:{root}", id_column="genre")
    with pytest.raises(InputError, match="not an Image feature"):
        _load(f"hf:{root}", image_column="uid")
    with pytest.raises(InputError, match="only apply to hf"):
        load_dataset("samples", options={"filters": ["genre=portrait"]})
    two = datasets.Dataset.from_dict({"a": [{"bytes": saved[2][0], "path": None}], "b": [{"bytes": saved[2][1],
                                                                                         "path": None}]},
                                     features=datasets.Features({"a": datasets.Image(), "b": datasets.Image()}))
    two.save_to_disk(str(tmp_path / "two"))
    with pytest.raises(InputError, match="several Image columns.*--hf-image-column a"):
        _load(f"hf:{tmp_path / 'two'}")
    assert _load(f"hf:{tmp_path / 'two'}", image_column="b").digest != _load(f"hf:{tmp_path / 'two'}",
                                                                            image_column="a").digest


def test_dataset_dict_splits(saved, tmp_path) -> None:  # noqa: ANN001
    root = saved[0]
    dsd = datasets.DatasetDict({"train": datasets.load_from_disk(str(root)),
                                "test": datasets.load_from_disk(str(root)).select([0, 1, 2])})
    dsd.save_to_disk(str(tmp_path / "dict"))
    assert len(_load(f"hf:{tmp_path / 'dict'}:test")) == 3
    with pytest.raises(InputError, match="has splits train, test"):
        _load(f"hf:{tmp_path / 'dict'}")
    with pytest.raises(InputError, match="no split 'val'"):
        _load(f"hf:{tmp_path / 'dict'}:val")


def test_offline_hub_name_not_cached_names_the_cache_and_the_download(tmp_path, monkeypatch, no_network) -> None:  # noqa: ANN001
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    with pytest.raises(InputError) as err:
        _load("hf:huggan/wikiart:train", filters=["genre=portrait"])
    msg = f"{err.value.message} {err.value.fix}"
    assert str(tmp_path / "hf-cache") in msg and "offline" in msg
    assert "datasets.load_dataset('huggan/wikiart', split='train')" in msg


def test_hf_dataset_evaluates_end_to_end_offline_cli_and_api(saved, tmp_path, capsys, no_network) -> None:  # noqa: ANN001
    root = saved[0]
    out = tmp_path / "runs"
    code, text = run_cli(capsys, "run", "--model", "telea", "--data", f"hf:{root}", "--hf-filter", "genre=portrait",
                         "--metrics", "psnr,l1", "--device", "cpu", "--offline", "--out", str(out))
    assert code == 0, text
    run_dir = model_run_dir(out, "telea")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["dataset"]["filters"] == ["genre=portrait"] and manifest["n_samples"] == 3
    assert manifest["identity"]["config"]["dataset_options"] == {"filters": ["genre=portrait"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = ib.evaluate("telea", data=f"hf:{root}", hf_filter="genre=portrait", metrics="psnr,l1", device="cpu",
                        offline=True)
        again = ib.evaluate("telea", data=f"hf:{root}", hf_filter=["genre=portrait"], metrics="psnr,l1",
                            device="cpu", offline=True, out=out)
    assert again.path == run_dir  # the API resumes the CLI's run: same identity
    assert r.run_id == again.run_id
    np.testing.assert_array_equal(r.per_image["psnr"], again.per_image["psnr"])
    assert list(r.per_image["image_id"]) == ["000001", "000004", "000007"]
    code, text = run_cli(capsys, "run", "--model", "telea", "--data", "samples", "--hf-filter", "genre=portrait")
    assert code != 0 and "hf" in text
