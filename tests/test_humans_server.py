"""The rating server through its JSON API on 127.0.0.1: the flow, security (each refusal a 4xx that
stores nothing), 8 concurrent raters, restart-and-continue, and kill -9 mid-study."""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from humans_support import Client, count_judgments, make_runs, serving

from inpaintbench.errors import InputError


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    # 3 models x 8 images = 24 (image, model pair) units per rater.
    return make_runs(tmp_path_factory.mktemp("hruns"), ("telea", "biharmonic", "ns"), limit=8)


@pytest.fixture()
def server(runs, tmp_path):
    with serving(runs[:2], tmp_path / "j.sqlite", attention=0.2) as s:
        yield s


def test_api_flow_stores_each_judgment_with_its_sides(server, tmp_path) -> None:
    c = Client(server.url)
    first = c.next("ann")
    assert c.next("ann")["pair_id"] == first["pair_id"]  # unjudged: served again (reload/pause lose nothing)
    for kind in ("left", "right", "input", "gt"):
        status, body, headers = c.request("GET", first["images"][kind])
        assert status == 200 and body[:8] == b"\x89PNG\r\n\x1a\n" and headers["Content-Type"] == "image/png"
    status, data = c.judge(first["pair_id"], "ann", "left", 1234)
    assert status == 200 and data["progress"]["judged"] == 1
    row = sqlite3.connect(tmp_path / "j.sqlite").execute(
        "SELECT j.choice, j.winner_run, j.ms, j.gt_shown, p.left_run, p.swapped, p.run_a, p.run_b "
        "FROM judgments j JOIN pairs p USING (pair_id)").fetchone()
    choice, winner, ms, gt, left, swapped, a, b = row
    assert (choice, winner, ms, gt) == ("left", left, 1234, 1)  # the GT image was fetched: recorded
    assert left == (b if swapped else a)
    assert c.next("ann")["pair_id"] != first["pair_id"]
    status, prog = c.get_json("/api/progress?rater=ann")
    assert status == 200 and prog["judged"] == 1 and prog["raters"]["ann"]["judged"] == 1


def test_a_whole_study_ends_with_done(server) -> None:
    c = Client(server.url)
    n = 0
    while True:
        d = c.next("bo")
        if d.get("done"):
            break
        assert c.judge(d["pair_id"], "bo", "tie")[0] == 200
        n += 1
        assert n < 100
    assert n == d["progress"]["total"] == d["progress"]["judged"]


@pytest.mark.parametrize("path", [
    "/images/../../etc/passwd", "/images/..%2f..%2fetc%2fpasswd", "/images/%2e%2e/%2e%2e/etc/passwd",
    "/images/%252e%252e%252fetc%252fpasswd", "/..%5c..%5cetc%5cpasswd", "/static/../db.py", "/static/..%2fdb.py",
    "/images/AAAAAAAAAAAA/../../../inpaintbench/humans/db.py", "/images/AAAAAAAAAAAAAAAA/left.png",
    "/images/AAAAAAAAAAAA/left.png%00.txt", "//etc/passwd", "/manifest.json", "/humans.sqlite", "/api/nothing",
])
def test_path_traversal_other_files_and_bad_ids_get_404(server, path: str, tmp_path) -> None:
    status, body, _ = Client(server.url).request("GET", path)
    assert status == 404, (path, body[:200])
    assert b"root:" not in body and b"import" not in body


def test_an_image_of_a_pair_that_was_served_is_the_only_way_in(server) -> None:
    c = Client(server.url)
    d = c.next("cy")
    pid = d["pair_id"]
    assert c.request("GET", f"/images/{pid}/left.png")[0] == 200
    assert c.request("GET", f"/images/{pid}/pred.png")[0] == 404
    assert c.request("GET", f"/images/{pid}/../left.png")[0] == 404
    assert c.request("GET", f"/images/{pid[:-1]}X/left.png")[0] == 404


@pytest.mark.parametrize("body,ctype,status", [
    (b"{not json", "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b"\xff\xfe", "application/json", 400),
    (json.dumps({"pair_id": "x" * 16, "rater": "ann", "choice": "left", "ms": 1}).encode(), "application/json", 404),
    (json.dumps({"pair_id": "x" * 16, "rater": "ann", "choice": "maybe"}).encode(), "application/json", 400),
    (json.dumps({"pair_id": "x" * 16, "rater": "../ann", "choice": "left"}).encode(), "application/json", 400),
    (json.dumps({"pair_id": "x" * 16, "rater": "ann", "choice": "left", "ms": -5}).encode(), "application/json", 400),
    (json.dumps({"pair_id": "x" * 16, "rater": "ann", "choice": "left", "extra": 1}).encode(), "application/json", 400),
    (json.dumps({"pair_id": "x" * 16, "rater": "ann", "choice": "left"}).encode(), "text/plain", 415),
    (b"[" * 100_000 + b"]" * 100_000, "application/json", 413),
    (json.dumps({"pair_id": "x" * 16, "rater": "ann", "choice": "left", "pad": "y" * 20_000}).encode(),
     "application/json", 413),
])
def test_bad_judgments_get_a_4xx_and_store_nothing(server, tmp_path, body: bytes, ctype: str, status: int) -> None:
    c = Client(server.url)
    c.next("ann")
    got, data, _ = c.request("POST", "/api/judgment", body, {"Content-Type": ctype})
    assert got == status, data
    assert "error" in json.loads(data)
    assert count_judgments(tmp_path / "j.sqlite") == 0


def test_deeply_nested_json_under_the_size_limit_is_a_400(server, tmp_path) -> None:
    c = Client(server.url)
    body = b"[" * 8000 + b"]" * 8000  # 16000 bytes: under the limit, deep enough to overflow a naive parser
    assert c.request("POST", "/api/judgment", body, {"Content-Type": "application/json"})[0] == 400
    assert count_judgments(tmp_path / "j.sqlite") == 0


def test_judgment_for_another_raters_pair_or_twice_is_refused(server, tmp_path) -> None:
    c = Client(server.url)
    d = c.next("ann")
    assert c.judge(d["pair_id"], "bob", "left")[0] == 403
    assert count_judgments(tmp_path / "j.sqlite") == 0
    assert c.judge(d["pair_id"], "ann", "left")[0] == 200
    assert c.judge(d["pair_id"], "ann", "right")[0] == 409
    assert count_judgments(tmp_path / "j.sqlite") == 1


def test_missing_content_length_and_other_methods_are_4xx(server, tmp_path) -> None:
    c = Client(server.url)
    status, _, _ = c.request("POST", "/api/judgment", None, {"Content-Type": "application/json"})
    assert status == 411
    assert c.request("PUT", "/api/judgment", b"{}", {"Content-Type": "application/json"})[0] in (405, 501)
    assert c.request("POST", "/", b"{}", {"Content-Type": "application/json"})[0] == 405
    assert c.get_json("/api/next?rater=")[0] == 400
    assert count_judgments(tmp_path / "j.sqlite") == 0


def test_foreign_host_header_is_refused_without_a_token(server) -> None:
    # DNS rebinding: a page on evil.example resolving to 127.0.0.1 must not drive the API.
    status, _, _ = Client(server.url).request("GET", "/api/progress", headers={"Host": "evil.example:80"})
    assert status == 403


def test_token_is_required_on_every_request_when_set(runs, tmp_path) -> None:
    with serving(runs[:2], tmp_path / "t.sqlite", token="s3cret-token") as s:
        anon = Client(s.url)
        for path in ("/", "/static/app.js", "/api/progress", "/api/next?rater=ann", "/api/next?rater=ann&token=wrong"):
            assert anon.request("GET", path)[0] == 401, path
        body = json.dumps({"pair_id": "x" * 16, "rater": "ann", "choice": "left"}).encode()
        assert anon.request("POST", "/api/judgment", body, {"Content-Type": "application/json"})[0] == 401
        status, _, headers = anon.request("GET", "/?token=s3cret-token")
        assert status == 200 and "HttpOnly" in headers.get("Set-Cookie", "")
        cookie = headers["Set-Cookie"].split(";")[0]
        assert anon.request("GET", "/api/progress", headers={"Cookie": cookie})[0] == 200
        authed = Client(s.url, token="s3cret-token")
        d = authed.next("ann")
        assert anon.request("GET", d["images"]["left"])[0] == 401
        assert authed.request("GET", d["images"]["left"])[0] == 200
        assert anon.judge(d["pair_id"], "ann", "left")[0] == 401
        assert count_judgments(tmp_path / "t.sqlite") == 0
        assert authed.judge(d["pair_id"], "ann", "left")[0] == 200


@pytest.mark.slow
def test_eight_concurrent_raters_200_judgments_stored_exactly_once(runs, tmp_path) -> None:
    db_path = tmp_path / "load.sqlite"
    acked: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + 120

    def rater(name: str, n: int) -> None:
        c = Client(url)
        for i in range(n):
            if time.monotonic() > deadline:
                errors.append(f"{name}: out of time")
                return
            d = c.next(name)
            if d.get("done"):
                errors.append(f"{name}: schedule ended after {i}")
                return
            status, data = c.judge(d["pair_id"], name, ("left", "right", "tie")[i % 3], ms=i)
            if status != 200:
                errors.append(f"{name}: {status} {data}")
                return
            with lock:
                acked.append(d["pair_id"])

    with serving(runs, db_path, repeats=0.1) as s:
        url = s.url
        threads = [threading.Thread(target=rater, args=(f"rater{k}", 25), daemon=True) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=max(1.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in threads), "raters did not finish in time"
    assert not errors, errors
    assert len(acked) == 200 and len(set(acked)) == 200
    conn = sqlite3.connect(db_path)
    stored = [r[0] for r in conn.execute("SELECT pair_id FROM judgments")]
    assert sorted(stored) == sorted(acked)
    per_rater = dict(conn.execute("SELECT r.name, COUNT(*) FROM judgments j JOIN pairs p USING (pair_id) "
                                  "JOIN raters r USING (rater_id) GROUP BY r.name").fetchall())
    assert per_rater == {f"rater{k}": 25 for k in range(8)}
    seqs = conn.execute("SELECT rater_id, COUNT(seq), COUNT(DISTINCT seq), MAX(seq) FROM pairs GROUP BY rater_id")
    for _, n, distinct, top in seqs:
        assert n == distinct == top + 1  # each rater's slots served in order, none skipped or doubled


def test_restart_with_the_same_arguments_continues_the_study(runs, tmp_path) -> None:
    db_path = tmp_path / "r.sqlite"
    with serving(runs[:2], db_path) as s:
        c = Client(s.url)
        done = []
        for _ in range(3):
            d = c.next("ann")
            c.judge(d["pair_id"], "ann", "right")
            done.append(d["seq"])
        pending = c.next("ann")
    with serving(runs[:2], db_path) as s:
        c = Client(s.url)
        again = c.next("ann")
        assert again["pair_id"] == pending["pair_id"] and again["progress"]["judged"] == 3
    n_studies = sqlite3.connect(db_path).execute("SELECT COUNT(*) FROM studies").fetchone()[0]
    assert n_studies == 1
    with serving(runs[:2], db_path, seed=9):  # other options: another study in the same file
        pass
    assert sqlite3.connect(db_path).execute("SELECT COUNT(*) FROM studies").fetchone()[0] == 2


def test_runs_without_saved_images_are_refused_with_the_command_that_adds_them(tmp_path) -> None:
    from inpaintbench.humans.study import Study, StudyOptions

    bare = make_runs(tmp_path / "bare", ("telea", "biharmonic"), limit=2, save_images=False)
    with pytest.raises(InputError) as err:
        Study.from_paths(bare, StudyOptions())
    assert "no saved images" in err.value.message
    assert "--save-images" in err.value.fix and "inpaintbench run" in err.value.fix


def _start(runs: list[Path], db_path: Path) -> tuple[subprocess.Popen, str]:
    """`inpaintbench rate ... --port 0` as a subprocess; (process, URL) once it prints the URL (90 s at most)."""
    cmd = [sys.executable, "-m", "inpaintbench.cli", "rate", *map(str, runs), "--db", str(db_path), "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"})
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:  # keeps reading so that the pipe never fills
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + 90
    seen = []
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if "Rate at " in line:
            return proc, line.split("Rate at ", 1)[1].strip()
    proc.kill()
    raise AssertionError("the rating server did not start: " + "".join(seen))


@pytest.mark.slow
def test_kill_9_mid_study_loses_no_acknowledged_judgment(runs, tmp_path) -> None:
    db_path = tmp_path / "kill.sqlite"
    proc, url = _start(runs, db_path)
    acked: list[str] = []
    stop = threading.Event()

    def rate_fast(name: str) -> None:
        c = Client(url)
        while not stop.is_set():
            try:
                d = c.next(name)
                if d.get("done"):
                    return
                status, _ = c.judge(d["pair_id"], name, "left")
            except (OSError, AssertionError, ValueError):
                return  # the server died under us: that judgment was never acknowledged
            if status == 200:
                acked.append(d["pair_id"])

    try:
        workers = [threading.Thread(target=rate_fast, args=(f"k{i}",), daemon=True) for i in range(3)]
        for w in workers:
            w.start()
        t0 = time.monotonic()
        while len(acked) < 20 and time.monotonic() - t0 < 60:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)  # while the raters are still posting
        proc.wait(timeout=30)
        stop.set()
        for w in workers:
            w.join(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(acked) >= 20
    stored = {r[0] for r in sqlite3.connect(db_path).execute("SELECT pair_id FROM judgments")}
    assert set(acked) <= stored
    proc2, url2 = _start(runs, db_path)
    try:
        c = Client(url2)
        status, prog = c.get_json("/api/progress")
        assert status == 200 and prog["judgments"] == len(stored)
        d = c.next("k0")
        assert d.get("done") or c.judge(d["pair_id"], "k0", "right")[0] == 200
    finally:
        proc2.send_signal(signal.SIGINT)
        try:
            proc2.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc2.kill()
    assert set(acked) <= {r[0] for r in sqlite3.connect(db_path).execute("SELECT pair_id FROM judgments")}
