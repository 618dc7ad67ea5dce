"""examples/portraits_study.ipynb executes (nbclient, a kernel on this interpreter) and shows what it
promises: the split, a registered fine-tune, three evaluations, the leaderboard, the verdicts, the
correlation figure and the power line for the study's 0.18 dB."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "portraits_study.ipynb"


def _kernel_spec(root: Path) -> str:
    """A kernelspec named like the notebook's (python3) whose argv is this interpreter, found first
    through JUPYTER_PATH, so the kernel runs in the test's venv whatever else is installed."""
    folder = root / "kernels" / "python3"
    folder.mkdir(parents=True)
    (folder / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (inpaintbench tests)", "language": "python"}))
    return "python3"


@pytest.mark.slow
def test_portraits_study_notebook_executes(tmp_path, monkeypatch, isolated_home) -> None:  # noqa: ANN001
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("INPAINTBENCH_OFFLINE", "1")  # the kernel inherits the environment: never the network
    name = _kernel_spec(tmp_path / "jupyter")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name=name, timeout=600,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()

    def outputs(i: int) -> list[dict]:
        return nb.cells[i].get("outputs", [])

    def text(i: int) -> str:
        parts = []
        for o in outputs(i):
            data = o.get("data", {})
            parts.append(o.get("text", "") + data.get("text/plain", "") + data.get("text/html", ""))
        return "".join(parts)

    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    assert all(o.get("output_type") != "error" for i in code_cells for o in outputs(i))
    src = {i: nb.cells[i].source for i in code_cells}
    find = {key: next(i for i, s in src.items() if key in s) for key in
            ("\"split\"", "finetuned = ", "board = ", "table = ", "plot_correlations", ".power(")}
    assert (tmp_path / "portraits_study_work" / "splits" / "splits.json").is_file()
    registry = json.loads((isolated_home / "models" / "registry.json").read_text())
    assert "mat-portraits-ft" in registry["models"]  # registered in the test's home, not the user's
    # The evaluation cell ends with a Results: its HTML is the small leaderboard with CIs.
    html = text(find["finetuned = "])
    assert "<table" in html and "mat-portraits-ft" in html and "[" in html
    # Progress bars rendered in the notebook (HTML display outputs), not printed as banners.
    assert any("text/html" in o.get("data", {}) and "images" in o["data"]["text/html"]
               for o in outputs(find["finetuned = "]) if o.get("output_type") == "display_data")
    board = text(find["board = "])
    assert "mat-portraits-ft" in board and "telea" in board and "mat" in board
    verdicts = text(find["table = "])
    assert "PSNR" in verdicts and ("no detectable difference" in verdicts or "better" in verdicts)
    assert any("image/png" in o.get("data", {}) for o in outputs(find["plot_correlations"]))
    power = text(find[".power("])
    assert "PSNR" in power and "to detect Δ = +0.18 you would need about N =" in power
