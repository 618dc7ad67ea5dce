"""The rating server: the static page and a small JSON API, in one process.

Why the standard library's ``ThreadingHTTPServer`` rather than Starlette/uvicorn: a rating study has
a handful of raters sending a request every few seconds, every write is serialised by SQLite (one
writer) anyway, and the stdlib server adds no dependency, starts instantly in tests and ships with
every Python. What an ASGI stack would add (async, HTTP/2, middleware) buys nothing at this load.

API (all JSON; see ``results/README.md`` for the stored schema):

* ``GET /api/next?rater=NAME`` -> ``{"pair_id", "seq", "images": {"left", "right", "input", "gt"},
  "gt_available", "progress"}`` or ``{"done": true, "progress"}``. A pair served but not yet
  judged is served again (a reload or a pause loses nothing).
* ``POST /api/judgment`` with ``{"pair_id", "rater", "choice": "left"|"right"|"tie", "ms"}`` (and
  optionally ``"gt_shown"``): stored and committed before the 200 answer.
* ``GET /api/progress[?rater=NAME]``.
* ``GET /images/<pair_id>/<left|right|input|gt>.png``: only the images of pairs this server served.

Security: binds 127.0.0.1 unless told otherwise; a non-loopback ``--host`` needs a token, accepted as
``?token=`` (then kept in an HttpOnly cookie), an ``X-Inpaintbench-Token`` header or that cookie.
Without a token the Host header must be a loopback name (DNS rebinding). Bodies over
:data:`MAX_BODY` bytes, non-JSON, malformed or unknown fields get a 4xx and store nothing.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import sqlite3
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from inpaintbench.humans import db
from inpaintbench.humans.schedule import Slot, rater_schedule
from inpaintbench.humans.study import Study

MAX_BODY = 16 * 1024
#: Oversized bodies up to this size are read and discarded before the 413; larger ones just close.
DRAIN_LIMIT = 1024 * 1024
MAX_MS = 24 * 3600 * 1000
RATER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.@+-]{0,63}$")
PAIR_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
IMAGE_RE = re.compile(r"^/images/([A-Za-z0-9_-]{8,64})/(left|right|input|gt)\.png$")
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1", "[::1]"}
TOKEN_COOKIE = "ib_token"
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/index.html": ("index.html", "text/html; charset=utf-8"),
          "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/static/style.css": ("style.css", "text/css; charset=utf-8")}
CSP = "default-src 'none'; img-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; base-uri 'none'"


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def host_name(header: str) -> str:
    """The host part of a Host header (``[::1]:8765`` -> ``[::1]``, ``localhost:8765`` -> ``localhost``)."""
    if header.startswith("["):
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_NAMES or host.startswith("127.")


class RatingService:
    """The study's state behind the HTTP layer: one SQLite connection, every statement under a lock."""

    def __init__(self, study: Study, db_path: str, token: str | None = None):
        self.study = study
        self.db_path = db_path
        self.token = token
        self.conn = db.connect(db_path)
        self.lock = threading.Lock()
        self.study_id = study.register(self.conn)
        self._schedules: dict[str, list[Slot]] = {}
        study.ground_truth(study.sample_ids[0])  # sets study.gt_reason when the dataset cannot be reloaded
        self.statics = {name: resources.files("inpaintbench.humans").joinpath("static", name).read_bytes()
                        for name, _ in STATIC.values()}

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    def schedule(self, rater: str) -> list[Slot]:
        if rater not in self._schedules:
            o = self.study.options
            self._schedules[rater] = rater_schedule(self.study.sample_ids, self.study.run_ids, seed=o.seed,
                                                    rater=rater, repeats=o.repeats, attention=o.attention,
                                                    passes=o.passes)
        return self._schedules[rater]

    # --- API ---------------------------------------------------------------------------------------------
    def _progress_locked(self, rater: str | None) -> dict[str, Any]:
        rows = self.conn.execute(
            "SELECT r.name, COUNT(j.judgment_id) FROM pairs p JOIN raters r ON r.rater_id = p.rater_id "
            "JOIN judgments j ON j.pair_id = p.pair_id WHERE p.study_id=? GROUP BY r.name ORDER BY r.name",
            (self.study_id,)).fetchall()
        per = {name: {"judged": int(n), "total": len(self.schedule(name))} for name, n in rows}
        out: dict[str, Any] = {"judgments": sum(v["judged"] for v in per.values()), "raters": per,
                               "samples": len(self.study.sample_ids), "runs": len(self.study.runs)}
        if rater is not None:
            mine = per.get(rater, {"judged": 0, "total": len(self.schedule(rater))})
            out.update(judged=mine["judged"], total=mine["total"])
        return out

    def progress(self, rater: str | None) -> dict[str, Any]:
        with self.lock:
            return self._progress_locked(rater)

    def _pair_json(self, pair_id: str, seq: int, sample_id: str, rater: str) -> dict[str, Any]:
        base = f"/images/{pair_id}/"
        return {"pair_id": pair_id, "seq": seq,
                "images": {k: f"{base}{k}.png" for k in ("left", "right", "input", "gt")},
                "gt_available": self.study.gt_reason is None, "progress": self._progress_locked(rater)}

    def next_pair(self, rater: str) -> dict[str, Any]:
        schedule = self.schedule(rater)
        with self.lock:
            rid = db.rater_id(self.conn, rater)
            pending = self.conn.execute(
                "SELECT p.pair_id, p.seq, p.sample_id FROM pairs p LEFT JOIN judgments j ON j.pair_id = p.pair_id "
                "WHERE p.study_id=? AND p.rater_id=? AND j.pair_id IS NULL ORDER BY p.seq LIMIT 1",
                (self.study_id, rid)).fetchone()
            if pending is not None:
                return self._pair_json(pending[0], int(pending[1]), pending[2], rater)
            last = self.conn.execute("SELECT MAX(seq) FROM pairs WHERE study_id=? AND rater_id=?",
                                     (self.study_id, rid)).fetchone()[0]
            seq = 0 if last is None else int(last) + 1
            if seq >= len(schedule):
                return {"done": True, "progress": self._progress_locked(rater)}
            s = schedule[seq]
            pair_id = secrets.token_urlsafe(12)
            self.conn.execute(
                "INSERT INTO pairs (pair_id, study_id, rater_id, seq, sample_id, kind, run_a, run_b, left_run, "
                "right_run, swapped, expected, repeat_of, served) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (pair_id, self.study_id, rid, seq, s.sample_id, s.kind, s.run_a, s.run_b, s.left_run, s.right_run,
                 int(s.swapped), s.expected, s.repeat_of, db.now()))
            return self._pair_json(pair_id, seq, s.sample_id, rater)

    def record(self, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise ApiError(400, "the body must be a JSON object")
        unknown = set(payload) - {"pair_id", "rater", "choice", "ms", "gt_shown"}
        if unknown:
            raise ApiError(400, f"unknown field(s): {', '.join(sorted(unknown))}")
        pair_id, rater, choice = payload.get("pair_id"), payload.get("rater"), payload.get("choice")
        ms, gt_flag = payload.get("ms"), payload.get("gt_shown", False)
        if not isinstance(pair_id, str) or not PAIR_RE.match(pair_id):
            raise ApiError(400, "pair_id must be the opaque id that /api/next returned")
        if not isinstance(rater, str) or not RATER_RE.match(rater):
            raise ApiError(400, "rater must be 1-64 letters, digits, space or _.@+-")
        if choice not in db.CHOICES:
            raise ApiError(400, "choice must be 'left', 'right' or 'tie'")
        if ms is not None and (isinstance(ms, bool) or not isinstance(ms, int) or not 0 <= ms <= MAX_MS):
            raise ApiError(400, "ms must be an integer number of milliseconds (0 .. 1 day)")
        if not isinstance(gt_flag, bool):
            raise ApiError(400, "gt_shown must be true or false")
        with self.lock:
            row = self.conn.execute(
                "SELECT p.study_id, r.name, p.left_run, p.right_run, p.gt_shown FROM pairs p "
                "JOIN raters r ON r.rater_id = p.rater_id WHERE p.pair_id=?", (pair_id,)).fetchone()
            if row is None or int(row[0]) != self.study_id:
                raise ApiError(404, "no such pair was served in this study")
            if row[1] != rater:
                raise ApiError(403, "this pair was served to another rater")
            winner = {"left": row[2], "right": row[3]}.get(choice)
            try:
                self.conn.execute(
                    "INSERT INTO judgments (pair_id, choice, winner_run, ms, gt_shown, created, source) "
                    "VALUES (?,?,?,?,?,?, 'server')",
                    (pair_id, choice, winner, ms, int(bool(gt_flag) or bool(row[4])), db.now()))
            except sqlite3.IntegrityError:
                raise ApiError(409, "this pair was already judged") from None
            return {"ok": True, "progress": self._progress_locked(rater)}

    def pair_image(self, pair_id: str, which: str) -> bytes | None:
        with self.lock:
            row = self.conn.execute("SELECT study_id, sample_id, left_run, right_run FROM pairs WHERE pair_id=?",
                                    (pair_id,)).fetchone()
        if row is None or int(row[0]) != self.study_id:
            return None
        sample_id, left, right = row[1], row[2], row[3]
        if which in ("left", "right"):
            return self.study.image(left if which == "left" else right, sample_id, "pred")
        data = self.study.image(self.study.run_ids[0], sample_id, which)
        if which == "gt" and data is not None:
            with self.lock:
                self.conn.execute("UPDATE pairs SET gt_shown=1 WHERE pair_id=?", (pair_id,))
        return data


class Handler(BaseHTTPRequestHandler):
    server_version = "inpaintbench-rate"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 30

    @property
    def service(self) -> RatingService:
        return self.server.service  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        pass

    # --- replies -----------------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", CSP)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message, "status": status})

    # --- access ------------------------------------------------------------------------------------------
    def _authorised(self, query: dict[str, list[str]]) -> tuple[bool, str | None]:
        token = self.service.token
        if token is None:
            return is_loopback(host_name(self.headers.get("Host") or "")), None
        given = [*query.get("token", []), self.headers.get("X-Inpaintbench-Token") or ""]
        cookie = self.headers.get("Cookie") or ""
        given += [c.split("=", 1)[1] for c in cookie.split("; ") if c.startswith(TOKEN_COOKIE + "=")]
        ok = any(hmac.compare_digest(g.encode(), token.encode()) for g in given if g)
        return ok, (token if query.get("token") and ok else None)

    def _route(self, method: str) -> None:
        try:
            parts = urlsplit(self.path)
        except ValueError:
            return self._error(400, "bad request line")
        query = parse_qs(parts.query, keep_blank_values=True)
        ok, set_cookie = self._authorised(query)
        if not ok:
            if self.service.token is None:
                return self._error(403, "this server only answers requests addressed to 127.0.0.1/localhost")
            return self._error(401, "a token is required: open the URL that `inpaintbench rate` printed")
        path = parts.path
        if method == "POST":
            if path != "/api/judgment":
                return self._error(404 if path not in STATIC and not path.startswith("/api/") else 405,
                                   "not found" if path not in STATIC else "method not allowed")
            return self._post_judgment()
        if path in STATIC:
            name, ctype = STATIC[path]
            extra = {"Set-Cookie": f"{TOKEN_COOKIE}={set_cookie}; HttpOnly; SameSite=Strict; Path=/"} \
                if set_cookie else None
            return self._send(200, self.service.statics[name], ctype, extra)
        if path == "/favicon.ico":  # browsers ask for it; nothing to serve
            return self._send(204, b"", "image/x-icon")
        if path == "/api/next":
            rater = (query.get("rater") or [""])[0]
            if not RATER_RE.match(rater):
                return self._error(400, "rater must be 1-64 letters, digits, space or _.@+-")
            return self._json(200, self.service.next_pair(rater))
        if path == "/api/progress":
            rater = (query.get("rater") or [None])[0]
            if rater is not None and not RATER_RE.match(rater):
                return self._error(400, "bad rater name")
            return self._json(200, self.service.progress(rater))
        m = IMAGE_RE.match(path)
        if m:
            data = self.service.pair_image(m.group(1), m.group(2))
            if data is not None:
                return self._send(200, data, "image/png")
        return self._error(404, "not found")

    def _post_judgment(self) -> None:
        if (self.headers.get("Content-Type") or "").split(";")[0].strip().lower() != "application/json":
            return self._error(415, "send the judgment as application/json")
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            self.close_connection = True
            return self._error(411, "Content-Length is required")
        length = int(length_text)
        if length > MAX_BODY:
            self.close_connection = True
            if length <= DRAIN_LIMIT:  # read and drop it, so that the client sees the answer, not a reset
                while length > 0:
                    length -= len(self.rfile.read(min(length, 65536)) or b"\0" * length)
            return self._error(413, f"the body is larger than {MAX_BODY} bytes")
        raw = self.rfile.read(length)
        try:
            payload = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            return self._error(400, "the body is not valid JSON")
        try:
            result = self.service.record(payload)
        except ApiError as exc:
            return self._error(exc.status, exc.message)
        self._json(200, result)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._route("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors raised by http.server itself (bad request line, unsupported method) as JSON too."""
        try:
            self.close_connection = True
            self._error(int(code), message or HTTPStatus(code).phrase)
        except Exception:  # the connection may already be gone
            pass


class RatingHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], service: RatingService):
        self.service = service
        super().__init__(address, Handler)


def make_server(study: Study, db_path: str, host: str = "127.0.0.1", port: int = 8765,
                token: str | None = None) -> RatingHTTPServer:
    """A bound (not yet serving) server; ``port=0`` picks a free port (``server.server_address``)."""
    service = RatingService(study, db_path, token)
    try:
        return RatingHTTPServer((host, port), service)
    except OSError:
        service.close()
        raise
