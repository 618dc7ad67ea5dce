"""The HTML report: self-contained (offline), and it renders in headless Chromium without JS errors.

Chromium comes from Debian's `chromium` package (`.ci/install-chromium.sh`). Where it is missing the
browser tests FAIL when CI=true and are skipped only on a developer machine without CI set.
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from analysis_fixture import ground_truth_image, write_run
from PIL import Image

from inpaintbench.analysis.load import load_runs
from inpaintbench.analysis.report import ERROR_MARKER, html_page, write_report

# Injected by the browser tests only (reports ship no script): records uncaught errors and
# console.error calls as an element with id ERROR_MARKER, which --dump-dom then shows.
ERROR_HOOK = (
    "<script>(function(){function mark(m){var d=document.createElement('div');"
    f"d.id='{ERROR_MARKER}';d.setAttribute('data-error',String(m));d.textContent='JS error: '+m;"
    "(document.body||document.documentElement).appendChild(d);}"
    "window.addEventListener('error',function(e){mark(e.message||'error');});"
    "var ce=console.error;console.error=function(){mark(Array.prototype.join.call(arguments,' '));"
    "if(ce){ce.apply(console,arguments);}};})();</script>"
)


def with_error_hook(page: Path, tmp_path: Path) -> Path:
    """A copy of ``page`` with :data:`ERROR_HOOK` as the first element of <head>."""
    html = page.read_text(encoding="utf-8")
    assert html.count("<head>") == 1
    hooked = tmp_path / f"hooked-{page.name}"
    hooked.write_text(html.replace("<head>", "<head>\n" + ERROR_HOOK, 1), encoding="utf-8")
    return hooked

SECTIONS = ["Leaderboard", "Significance", "Correlations", "By hole ratio", "Comparison grids", "Runs"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail("chromium is not installed in CI: .ci/run must call .ci/install-chromium.sh")
    pytest.skip("chromium not installed (apt-get install chromium); skipping only because CI is not set")


def run_chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--hide-scrollbars",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # nothing can be fetched from the network
        "--virtual-time-budget=3000",
        *args,
        page.resolve().as_uri(),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


class _Headings(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.h2: list[str] = []
        self.ids: list[str] = []
        self._in = False

    def handle_starttag(self, tag, attrs):
        self._in = tag == "h2"
        self.ids += [v for k, v in attrs if k == "id" and v]

    def handle_endtag(self, tag):
        self._in = False if tag == "h2" else self._in

    def handle_data(self, data):
        if self._in:
            self.h2.append(data.strip())


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    kw = dict(n=24, features_dim=16, save_images=True)
    runs = load_runs(
        [
            write_run(root / "runs", "base", model="mat-baseline", noise_seed=1, perfect=(2,), **kw),
            write_run(
                root / "runs",
                "tuned",
                model="mat-finetuned",
                noise_seed=2,
                effect=0.4,
                feature_shift=0.2,
                **kw,
            ),
            write_run(
                root / "runs",
                "telea",
                model="telea",
                noise_seed=3,
                effect=-1.0,
                feature_shift=0.6,
                n=24,
                features_dim=16,  # no saved images: the report must say which flag adds them
            ),
        ]
    )
    out = root / "report.html"
    write_report(
        runs,
        out,
        n_boot=200,
        set_n_boot=30,
        ids_n_boot=0,
        grid_auto=2,
        ground_truth=lambda run, image_id: ground_truth_image(image_id),
    )
    return out


def test_report_is_self_contained(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    # Every src/href is a data URI or an in-page anchor; no external scripts, styles or fonts.
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", html)
    assert refs and all(r.startswith(("data:", "#")) for r in refs), [
        r[:40] for r in refs if r[:5] != "data:"
    ]
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert "<script" not in html  # no scripts at all: the browser test injects its own error hook
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) >= 4  # heatmaps, scatter matrix, bins, grid
    for b64 in images:
        with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
            assert im.format == "PNG" and im.width > 200
    parser = _Headings()
    parser.feed(html)
    assert parser.h2 == SECTIONS
    assert html.count("<details>") >= 3 + 1  # one manifest per run + the correlation table
    assert "mat-finetuned" in html and ("B better" in html or "A better" in html)
    assert "1 non-finite PSNR value(s) excluded" in html


def test_report_says_which_runs_lack_images(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    assert "Predicted images were not saved for telea" in html and "--save-images" in html
    grids = html.split('id="grids"')[1].split("</section>")[0]
    assert grids.count("data:image/png;base64,") == 1  # the grid of the two runs that saved images


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    dom = run_chromium(tmp_path, with_error_hook(report, tmp_path), "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    parser = _Headings()
    parser.feed(dom.stdout)
    assert parser.h2 == SECTIONS
    assert ERROR_MARKER not in parser.ids, "a JavaScript error was recorded in the page"
    assert "Uncaught" not in dom.stderr and ":CONSOLE" not in dom.stderr, dom.stderr[-2000:]

    shot = tmp_path / "report.png"
    res = run_chromium(tmp_path, report, f"--screenshot={shot}", "--window-size=1280,2000")
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    with Image.open(shot) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.float64)
    assert arr.shape[:2] == (2000, 1280)
    assert arr.var() > 100, "screenshot is blank"
    non_white = (arr.min(axis=2) < 200).mean()
    assert non_white > 0.02, f"screenshot is nearly empty ({non_white:.3%} ink)"


def test_browser_check_catches_a_broken_page(tmp_path: Path) -> None:
    """Negative control: the same checks see an uncaught error and a console error."""
    page = tmp_path / "broken.html"
    page.write_text(
        html_page(
            "broken",
            "<h2>Leaderboard</h2><script>notDefined();</script><script>console.error('oops')</script>",
        )
    )
    dom = run_chromium(tmp_path, with_error_hook(page, tmp_path), "--dump-dom")
    parser = _Headings()
    parser.feed(dom.stdout)
    assert ERROR_MARKER in parser.ids
    assert "Uncaught" in dom.stderr


def test_missing_chromium_fails_in_ci(monkeypatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="install-chromium"):
        chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        chromium()
