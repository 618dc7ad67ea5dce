"""`inpaintbench masks ...` through the real root CLI: exit codes, messages, files written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from inpaintbench.cli import main
from inpaintbench.masks.cli import register


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("INPAINTBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("INPAINTBENCH_MASK_DEFINITIONS", raising=False)
    return tmp_path / "home"


def _run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err


def test_list_shows_every_standard_set(capsys: pytest.CaptureFixture) -> None:
    code, text = _run(capsys, "masks", "list")
    assert code == 0
    for name in ("mat-large-256", "mat-small-512", "lama-thin-256", "lama-thick-512", "box-256"):
        assert name in text


def test_build_out_verify_and_tamper(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    out = tmp_path / "set"
    code, text = _run(capsys, "masks", "build", "lama-thick-256", "--n", "100", "--out", str(out))
    assert code == 0 and "matches the committed digest" in text  # n=100 is the committed quick check
    assert len(json.loads((out / "manifest.json").read_text())["masks"]) == 100
    code, text = _run(capsys, "masks", "verify", str(out))
    assert code == 0 and "ok" in text
    arr = np.asarray(Image.open(out / "000010.png")).copy()
    arr[:5, :5] = 255 - arr[:5, :5]
    Image.fromarray(arr).save(out / "000010.png")
    code, text = _run(capsys, "masks", "verify", str(out))
    assert code == 1 and "000010.png" in text and "Traceback" not in text
    code, text = _run(capsys, "masks", "build", "lama-thick-256", "--n", "3", "--out", str(out))
    assert code == 1 and "not empty" in text


def test_build_variant_has_nothing_to_compare(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, text = _run(capsys, "masks", "build", "mat-small-256", "--n", "5", "--seed", "4", "--out",
                      str(tmp_path / "v"))
    assert code == 0 and "no committed digest" in text


def test_unknown_name_lists_known_ones(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, text = _run(capsys, "masks", "build", "mat-huge-256", "--out", str(tmp_path / "x"))
    assert code == 1 and "mat-large-256" in text and "Traceback" not in text
    code, text = _run(capsys, "masks", "verify", "mat-huge-256")
    assert code == 1 and "mat-large-256" in text


def test_import_requires_polarity_and_reports(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    hole = np.zeros((32, 32), bool)
    hole[8:12, 4:14] = True  # 4% hole: read with the wrong polarity it becomes 96%
    Image.fromarray(np.where(hole, 0, 255).astype(np.uint8)).save(src / "m1.png")  # MAT polarity
    rgb = np.stack([np.where(hole, 0, 255).astype(np.uint8)] * 3, -1)
    Image.fromarray(rgb).save(src / "m2.png")
    app = typer.Typer()
    register(app)
    usage = CliRunner().invoke(app, ["masks", "import", str(src), "--out", str(tmp_path / "o")])
    assert usage.exit_code == 2 and "hole-value" in usage.output  # polarity is a required option
    code, text = _run(capsys, "masks", "import", str(src), "--hole-value", "255", "--out",
                      str(tmp_path / "o"))
    assert code == 1 and "wrong polarity" in text and "--hole-value 0" in text
    code, text = _run(capsys, "masks", "import", str(src), "--hole-value", "0", "--out", str(tmp_path / "o"),
                      "--protocol", "mat-large-256")
    assert code == 0 and "imported 2 masks" in text and "identical channels" in text
    assert "not 256x256" in text


def test_preview_writes_a_contact_sheet(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, text = _run(capsys, "masks", "build", "mat-small-256", "--n", "6", "--out", str(tmp_path / "s"))
    assert code == 0
    code, text = _run(capsys, "masks", "preview", str(tmp_path / "s"), "--out", str(tmp_path / "p"),
                      "--n", "4")
    assert code == 0
    with Image.open(tmp_path / "p" / "contact_sheet.png") as sheet:
        assert sheet.mode == "RGB" and sheet.size[0] >= 2 * 256
    assert len(list((tmp_path / "p").glob("overlay_*.png"))) == 4
