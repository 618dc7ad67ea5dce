"""The rating page in headless Chromium (Debian's ``chromium``, driven by Playwright; no browser is
ever downloaded): load it, judge 10 pairs with the keyboard, use the ground truth and the pause,
then check the database. Also makes the README's two screenshots (tmp always; docs/images/ when
INPAINTBENCH_UPDATE_SCREENSHOTS=1).

Where Chromium is missing the test FAILS when CI=true and is skipped only on a developer machine.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from humans_support import Client, make_runs, serving
from run_paths import run_cli

DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
KEYS = ["ArrowLeft", "ArrowRight", "ArrowDown", "ArrowLeft", "ArrowLeft", "ArrowRight", "ArrowDown", "ArrowRight",
        "ArrowLeft", "ArrowRight"]
CHOICE = {"ArrowLeft": "left", "ArrowRight": "right", "ArrowDown": "tie"}


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed in CI: .ci/run must call .ci/install-chromium.sh")
    pytest.skip("chromium not installed (apt-get install chromium); skipping only because CI is not set")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    return make_runs(tmp_path_factory.mktemp("bruns"), ("telea", "biharmonic", "ns"), limit=8)


def _keep(shot: Path, name: str) -> None:
    if os.environ.get("INPAINTBENCH_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_IMAGES / name)


@pytest.mark.slow
def test_judge_ten_pairs_with_the_keyboard(runs, tmp_path, capsys) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    exe = chromium_path()
    db_path = tmp_path / "browser.sqlite"
    errors: list[str] = []
    with serving(runs, db_path, repeats=0.1) as server, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20_000)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(server.url + "/")
            page.fill("#rater", "browser-test")
            page.press("#rater", "Enter")
            page.wait_for_selector("body[data-state=rating]")
            gt_at, shots = 2, tmp_path / "page.png"
            for i, key in enumerate(KEYS):
                before = page.get_attribute("main", "data-pair-id")
                assert before
                if i == gt_at:
                    page.keyboard.press("g")
                    page.wait_for_selector("#gt-figure:not([hidden])")
                    page.wait_for_function("document.getElementById('img-gt').complete")
                    page.screenshot(path=str(shots))
                if i == 4:  # pause: images hidden, keys ignored; resume continues the same pair
                    page.keyboard.press("p")
                    page.wait_for_selector("body[data-state=paused]")
                    page.keyboard.press("ArrowLeft")
                    assert page.get_attribute("main", "data-pair-id") == before
                    page.keyboard.press("p")
                    page.wait_for_selector("body[data-state=rating]")
                page.keyboard.press(key)
                page.wait_for_function(
                    "b => document.querySelector('main').getAttribute('data-pair-id') !== b && "
                    "document.body.getAttribute('data-state') === 'rating'", arg=before)
                assert page.inner_text("#progress").startswith(f"{i + 1} / ")
        finally:
            browser.close()
        # Scripted raters who pick the higher-PSNR completion 80% of the time, so that the agreement plot
        # has something to show (they read the sides from the database; a real page never sees them).
        rng = np.random.default_rng(0)
        c = Client(server.url)
        psnr = {r.run_id: dict(zip(r.rows["sample_id"], r.rows["psnr"], strict=True))
                for r in server.service.study.runs}
        peek = sqlite3.connect(db_path)
        for name in ("sim1", "sim2", "sim3"):
            while True:
                d = c.next(name)
                if d.get("done"):
                    break
                sid, left, right = peek.execute("SELECT sample_id, left_run, right_run FROM pairs WHERE pair_id=?",
                                                (d["pair_id"],)).fetchone()
                better = "left" if psnr[left][sid] >= psnr[right][sid] else "right"
                choice = better if rng.random() < 0.8 else ("right" if better == "left" else "left")
                assert c.judge(d["pair_id"], name, choice, 800)[0] == 200
        peek.close()
    assert not errors, errors
    _keep(shots, "humans_rating_page.png")

    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT j.choice, j.gt_shown, j.ms, p.seq FROM judgments j JOIN pairs p USING (pair_id) "
                        "JOIN raters r USING (rater_id) WHERE r.name='browser-test' ORDER BY p.seq").fetchall()
    assert [r[0] for r in rows] == [CHOICE[k] for k in KEYS]
    assert [r[1] for r in rows] == [int(i == gt_at) for i in range(10)]
    assert [r[3] for r in rows] == list(range(10))
    assert all(isinstance(r[2], int) and r[2] >= 0 for r in rows)

    figure = tmp_path / "agreement.png"
    code, out = run_cli(capsys, "humans", str(db_path), *map(str, runs), "--figure", str(figure), "--n-boot", "200")
    assert code == 0, out
    assert "Bradley–Terry" in out and "2AFC" in out and figure.stat().st_size > 10_000
    _keep(figure, "humans_agreement.png")
