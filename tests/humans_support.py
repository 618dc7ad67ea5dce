"""Helpers of the human-judgment tests: small runs with saved images, an in-process rating server,
and a raw HTTP client (http.client sends paths exactly as given, so traversal variants reach the
server unnormalised). Only 127.0.0.1 is ever contacted."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from run_paths import model_run_dir


def make_runs(root: Path, models: tuple[str, ...] = ("telea", "biharmonic"), limit: int = 6,
              save_images: bool = True) -> list[Path]:
    """``inpaintbench run --model ... --limit N [--save-images]`` into ``root``; the run directories."""
    from inpaintbench.cli import main

    args = ["run", "--model", ",".join(models), "--limit", str(limit), "--out", str(root), "--offline",
            "--metrics", "psnr,ssim,l1,psnr_hole,l1_hole"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(args + (["--save-images"] if save_images else []))
    assert code == 0, f"inpaintbench {' '.join(args)} failed"
    return [model_run_dir(root, m) for m in models]


@contextlib.contextmanager
def serving(runs: list[Path], db_path: Path, token: str | None = None, **options: Any) -> Iterator[Any]:
    """A rating server on 127.0.0.1:<free port> in a background thread; yields it (``.url``, ``.service``)."""
    from inpaintbench.humans.server import make_server
    from inpaintbench.humans.study import Study, StudyOptions

    study = Study.from_paths(runs, StudyOptions(**options))
    server = make_server(study, str(db_path), host="127.0.0.1", port=0, token=token)
    server.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        server.service.close()
        thread.join(timeout=10)


class Client:
    """A minimal HTTP/1.1 client for one base URL (a new connection per request, 10 s timeout)."""

    def __init__(self, url: str, token: str | None = None):
        rest = url.split("://", 1)[1].split("/", 1)[0]
        self.host, port = rest.rsplit(":", 1)
        self.port = int(port)
        self.token = token

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            h = dict(headers or {})
            if self.token:
                h.setdefault("X-Inpaintbench-Token", self.token)
            conn.putrequest(method, path, skip_host="Host" in h, skip_accept_encoding=True)
            for k, v in h.items():
                conn.putheader(k, v)
            if body is not None and "Content-Length" not in h:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders()
            if body is not None:
                conn.send(body)
            r = conn.getresponse()
            return r.status, r.read(), dict(r.getheaders())
        finally:
            conn.close()

    def get_json(self, path: str) -> tuple[int, Any]:
        status, body, _ = self.request("GET", path)
        return status, json.loads(body)

    def next(self, rater: str) -> dict[str, Any]:
        status, data = self.get_json(f"/api/next?rater={rater}")
        assert status == 200, data
        return data

    def judge(self, pair_id: str, rater: str, choice: str, ms: int = 500, **extra: Any) -> tuple[int, Any]:
        body = json.dumps({"pair_id": pair_id, "rater": rater, "choice": choice, "ms": ms, **extra}).encode()
        status, data, _ = self.request("POST", "/api/judgment", body, {"Content-Type": "application/json"})
        return status, json.loads(data)


def count_judgments(db_path: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(db_path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM judgments").fetchone()[0])
    finally:
        conn.close()
