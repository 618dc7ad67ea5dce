"""The user flow end to end: `run --save-images` -> `rate` (its JSON API) -> `humans DB` -> `report
--humans DB`; export/import round trip; the database's schema checks; the `rate` command's options."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from humans_support import Client, make_runs, serving
from run_paths import run_cli


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[list[Path], Path]:
    """telea vs biharmonic on 6 images, judged by two scripted raters who mostly prefer the higher PSNR."""
    root = tmp_path_factory.mktemp("hcli")
    runs = make_runs(root / "runs", ("telea", "biharmonic"), limit=6)
    db_path = root / "runs" / "humans.sqlite"
    rng = np.random.default_rng(0)
    with serving(runs, db_path, repeats=0.5, attention=0.5) as server:
        psnr = {r.run_id: dict(zip(r.rows["sample_id"], r.rows["psnr"], strict=True))
                for r in server.service.study.runs}
        c = Client(server.url)
        peek = sqlite3.connect(db_path)
        for name in ("ann", "bob"):
            while not (d := c.next(name)).get("done"):
                sid, left, right, kind, expected = peek.execute(
                    "SELECT sample_id, left_run, right_run, kind, expected FROM pairs WHERE pair_id=?",
                    (d["pair_id"],)).fetchone()
                if kind == "attention":
                    choice = expected
                else:
                    better = "left" if psnr[left][sid] >= psnr[right][sid] else "right"
                    choice = better if rng.random() < 0.9 else "tie"
                assert c.judge(d["pair_id"], name, choice, 700)[0] == 200
        peek.close()
    return runs, db_path


def test_humans_shows_win_rates_bradley_terry_and_metric_agreement(study, capsys) -> None:
    runs, db_path = study
    code, out = run_cli(capsys, "humans", str(db_path), *map(str, runs), "--n-boot", "200")
    assert code == 0, out
    for text in ("Model pairs", "Wilson", "Bradley–Terry", "Metric–human agreement", "PSNR", "SSIM", "L1 (hole)",
                 "Krippendorff", "telea", "biharmonic", "consistency", "3/3"):
        assert text in out, text
    # Without RUNS the paths recorded in the database are used.
    code, out2 = run_cli(capsys, "humans", str(db_path), "--n-boot", "50")
    assert code == 0 and "PSNR" in out2 and "pass them" not in out2


def test_analysis_numbers_follow_the_judgments(study) -> None:
    from inpaintbench.humans.analysis import analyse

    runs, db_path = study
    a = analyse(db_path, runs, n_boot=100)
    j = sqlite3.connect(db_path)
    n_model = j.execute("SELECT COUNT(*) FROM judgments JOIN pairs USING (pair_id) WHERE kind='model'").fetchone()[0]
    assert a.overview["model_judgments"] == n_model and a.overview["raters"] == 2
    row = a.pairs.iloc[0]
    assert row.wins_a + row.wins_b + row.ties == row.n == n_model
    assert set(a.bt["model"]) == {"telea", "biharmonic"}
    psnr = a.agreement.set_index("metric").loc["psnr", "agreement"]
    # Raters pick the higher PSNR 90% of the time and tie otherwise (a tie scores 0.5): about 0.95.
    assert psnr > 0.8
    assert (a.raters["attention_passed"] == a.raters["attention_total"]).all()
    assert (a.raters["repeated_units"] > 0).all()
    assert a.alpha["raters"] == 2 and np.isfinite(a.alpha["alpha"])


@pytest.mark.parametrize("suffix,marker", [(".md", "### Bradley–Terry scores"), (".csv", "section,"),
                                           (".html", "<h1>Human judgments</h1>")])
def test_humans_formats(study, tmp_path, capsys, suffix: str, marker: str) -> None:
    runs, db_path = study
    out = tmp_path / f"h{suffix}"
    code, text = run_cli(capsys, "humans", str(db_path), *map(str, runs), "-o", str(out), "--n-boot", "50")
    assert code == 0, text
    body = out.read_text()
    assert marker in body
    if suffix == ".csv":
        sections = {r["section"] for r in csv.DictReader(body.splitlines())}
        assert {"pairs", "bradley_terry", "metric_agreement", "raters"} <= sections
    if suffix == ".html":
        assert "data:image/png;base64," in body and "http://" not in body and "https://" not in body


def test_report_includes_the_human_judgments(study, tmp_path, capsys) -> None:
    runs, db_path = study
    out = tmp_path / "report.html"
    code, text = run_cli(capsys, "report", *map(str, runs), "--humans", str(db_path), "-o", str(out),
                         "--n-boot", "50", "--set-boot", "10", "--ids-boot", "0")
    assert code == 0, text
    html = out.read_text()
    assert '<section id="humans"><h2>Human judgments</h2>' in html and 'href="#humans"' in html
    assert "Bradley–Terry scores" in html and "metric-human agreement" in html


def test_export_import_round_trip(study, tmp_path, capsys) -> None:
    _, db_path = study
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    assert run_cli(capsys, "humans", "export", str(db_path), "-o", str(first))[0] == 0
    new_db = tmp_path / "copy.sqlite"
    code, out = run_cli(capsys, "humans", "import", str(first), "--db", str(new_db))
    assert code == 0 and "(0 already there)" in out
    assert run_cli(capsys, "humans", "export", str(new_db), "-o", str(second))[0] == 0
    assert first.read_text() == second.read_text()
    n = len(first.read_text().splitlines()) - 1
    code, out = run_cli(capsys, "humans", "import", str(first), "--db", str(new_db))
    assert code == 0 and f"imported 0 judgments into {new_db} ({n} already there)" in out
    code, out = run_cli(capsys, "humans", "import", str(first), "--db", str(db_path))
    assert code == 0 and f"({n} already there)" in out


def test_import_a_hand_made_csv_and_refuse_a_bad_one(study, tmp_path, capsys) -> None:
    runs, _ = study
    a, b = (p.name for p in runs)
    good = tmp_path / "crowd.csv"
    good.write_text("rater,sample_id,run_a,run_b,choice\n"
                    f"w1,s1,{a},{b},left\nw1,s2,{a},{b},right\nw2,s1,{a},{b},tie\n")
    db_path = tmp_path / "crowd.sqlite"
    code, out = run_cli(capsys, "humans", "import", str(good), "--db", str(db_path))
    assert code == 0 and "imported 3" in out
    code, out = run_cli(capsys, "humans", "import", str(good), "--db", str(db_path))
    assert "imported 0" in out and "(3 already there)" in out
    code, out = run_cli(capsys, "humans", str(db_path), "--n-boot", "20")
    assert code == 0 and "Model pairs" in out
    bad = tmp_path / "bad.csv"
    bad.write_text(f"rater,sample_id,run_a,run_b,choice\nw1,s1,{a},{b},left\nw1,s2,{a},{b},maybe\n")
    code, out = run_cli(capsys, "humans", "import", str(bad), "--db", str(db_path))
    assert code == 1 and "line 3" in out and "maybe" in out
    # All or nothing: the good first line of the bad file was not kept.
    assert sqlite3.connect(db_path).execute("SELECT COUNT(*) FROM judgments").fetchone()[0] == 3
    code, out = run_cli(capsys, "humans", "import", str(tmp_path / "missing.csv"), "--db", str(db_path))
    assert code == 1 and "does not exist" in out


def test_database_schema_is_versioned_and_checked(tmp_path, capsys) -> None:
    from inpaintbench.humans import db

    path = tmp_path / "v.sqlite"
    conn = db.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert dict(conn.execute("SELECT key, value FROM meta")) == {"schema": db.SCHEMA, "schema_version": "1"}
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    code, out = run_cli(capsys, "humans", str(path))
    assert code == 1 and "version 99" in out and "upgrade inpaintbench" in out
    other = tmp_path / "other.sqlite"
    c = sqlite3.connect(other)
    c.execute("CREATE TABLE stuff (x)")
    c.commit()
    c.close()
    code, out = run_cli(capsys, "humans", str(other))
    assert code == 1 and "not an inpaintbench judgments database" in out
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    code, out = run_cli(capsys, "humans", str(junk))
    assert code == 1 and "not an inpaintbench judgments database" in out


def test_rate_on_a_lan_address_generates_a_token(study, tmp_path, capsys, monkeypatch) -> None:
    from inpaintbench.humans import server

    runs, _ = study

    def stop_at_once(self, poll_interval: float = 0.5) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(server.RatingHTTPServer, "serve_forever", stop_at_once)
    code, out = run_cli(capsys, "rate", *map(str, runs), "--db", str(tmp_path / "lan.sqlite"), "--host", "0.0.0.0",
                        "--port", "0")
    assert code == 0, out
    assert "generated access token" in out and "?token=" in out
    code, out = run_cli(capsys, "rate", *map(str, runs), "--db", str(tmp_path / "lan.sqlite"), "--port", "0")
    assert code == 0 and "?token=" not in out and "Rate at http://127.0.0.1:" in out
    assert "inpaintbench humans" in out


def test_rate_refuses_runs_without_images_and_single_runs(study, tmp_path, capsys) -> None:
    runs, _ = study
    code, out = run_cli(capsys, "rate", str(runs[0]), "--db", str(tmp_path / "x.sqlite"))
    assert code == 1 and "at least two runs" in out
    bare = make_runs(tmp_path / "bare", ("telea", "biharmonic"), limit=2, save_images=False)
    code, out = run_cli(capsys, "rate", *map(str, bare), "--db", str(tmp_path / "x.sqlite"))
    assert code == 1 and "no saved images" in out and "--save-images" in out


def test_default_database_lives_next_to_the_runs(study) -> None:
    from inpaintbench.humans.cli import default_db

    runs, _ = study
    assert default_db(runs[0]) == runs[0].resolve().parent / "humans.sqlite"
