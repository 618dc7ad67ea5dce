"""The judgments database: one SQLite file, versioned schema, WAL mode.

Schema ``inpaintbench.humans`` version 1 (documented for users in ``results/README.md``). The version
lives in ``PRAGMA user_version`` and in the ``meta`` table; :func:`connect` applies the migrations
from :data:`MIGRATIONS` in order, inside one transaction, and refuses a file written by a newer
inpaintbench. Every write commits before the caller answers anyone (``synchronous=FULL``), so a
killed server keeps each acknowledged judgment.
"""

from __future__ import annotations

import datetime as _dt
import os
import sqlite3
from pathlib import Path

from inpaintbench.errors import InputError

SCHEMA = "inpaintbench.humans"
SCHEMA_VERSION = 1
CHOICES = ("left", "right", "tie")
#: Pseudo run ids of attention-check images (the input with its hole unfilled / filled with the mean colour).
ATTENTION_RUNS = ("@unfilled", "@mean")

_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE studies (
    study_id   INTEGER PRIMARY KEY,
    study_key  TEXT NOT NULL UNIQUE,
    created    TEXT NOT NULL,
    seed       INTEGER NOT NULL,
    options    TEXT NOT NULL
);
CREATE TABLE study_runs (
    study_id      INTEGER NOT NULL REFERENCES studies(study_id),
    position      INTEGER NOT NULL,
    run_id        TEXT NOT NULL,
    model         TEXT NOT NULL,
    label         TEXT NOT NULL,
    path          TEXT,
    identity_hash TEXT,
    identity      TEXT,
    PRIMARY KEY (study_id, run_id)
);
CREATE TABLE raters (
    rater_id INTEGER PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    created  TEXT NOT NULL
);
CREATE TABLE pairs (
    pair_id    TEXT PRIMARY KEY,
    study_id   INTEGER NOT NULL REFERENCES studies(study_id),
    rater_id   INTEGER NOT NULL REFERENCES raters(rater_id),
    seq        INTEGER NOT NULL,
    sample_id  TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('model', 'attention')),
    run_a      TEXT NOT NULL,
    run_b      TEXT NOT NULL,
    left_run   TEXT NOT NULL,
    right_run  TEXT NOT NULL,
    swapped    INTEGER NOT NULL CHECK (swapped IN (0, 1)),
    expected   TEXT CHECK (expected IS NULL OR expected IN ('left', 'right')),
    repeat_of  INTEGER,
    served     TEXT NOT NULL,
    gt_shown   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (study_id, rater_id, seq)
);
CREATE TABLE judgments (
    judgment_id INTEGER PRIMARY KEY,
    pair_id     TEXT NOT NULL UNIQUE REFERENCES pairs(pair_id),
    choice      TEXT NOT NULL CHECK (choice IN ('left', 'right', 'tie')),
    winner_run  TEXT,
    ms          INTEGER,
    gt_shown    INTEGER NOT NULL CHECK (gt_shown IN (0, 1)),
    created     TEXT NOT NULL,
    source      TEXT NOT NULL
);
CREATE INDEX pairs_by_rater ON pairs (study_id, rater_id, seq);
"""

#: version -> SQL that brings a database from version-1 to version.
MIGRATIONS: dict[int, str] = {1: _V1}


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def _refuse(path: Path, what: str) -> InputError:
    return InputError(f"{path} is not an inpaintbench judgments database: {what}",
                      "pass a --db written by `inpaintbench rate` or `humans import`, or a new file name")


def connect(path: str | os.PathLike[str], *, create: bool = True) -> sqlite3.Connection:
    """Open (and create or migrate) a judgments database.

    The connection may be shared between threads only behind a lock (``check_same_thread=False``):
    the server serialises every statement, which SQLite needs for writes anyway.
    """
    path = Path(path)
    if not path.exists() and not create:
        raise InputError(f"{path} does not exist", "pass the --db that `inpaintbench rate` wrote")
    if path.exists() and path.is_dir():
        raise InputError(f"{path} is a directory", "pass a database file, e.g. humans.sqlite")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30.0, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise _refuse(path, str(exc)) from None
    except OSError as exc:
        raise InputError(f"cannot open {path}: {exc.strerror or exc}", "choose a writable --db path") from None
    if version > SCHEMA_VERSION:
        conn.close()
        raise InputError(f"{path} has judgments schema version {version}; this inpaintbench reads up to "
                         f"{SCHEMA_VERSION}", "upgrade inpaintbench")
    if version == 0:
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        if tables:
            conn.close()
            raise _refuse(path, f"it holds other tables ({', '.join(t[0] for t in tables[:3])})")
    else:
        row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None or row[0] != SCHEMA:
            conn.close()
            raise _refuse(path, f"schema {row[0] if row else None!r}")
    if version < SCHEMA_VERSION:
        _migrate(conn, version)
    return conn


def _migrate(conn: sqlite3.Connection, version: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        for v in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[v].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {v}")
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA,))
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def rater_id(conn: sqlite3.Connection, name: str) -> int:
    """The id of rater ``name``, created on first use (call inside a transaction or under a lock)."""
    row = conn.execute("SELECT rater_id FROM raters WHERE name=?", (name,)).fetchone()
    if row is not None:
        return int(row[0])
    cur = conn.execute("INSERT INTO raters (name, created) VALUES (?, ?)", (name, now()))
    return int(cur.lastrowid)


def judgments_frame(conn: sqlite3.Connection):  # -> pandas.DataFrame
    """Every judgment joined with its pair, study and rater: one row per judgment."""
    import pandas as pd

    query = """
        SELECT s.study_key, p.pair_id, r.name AS rater, p.seq, p.sample_id, p.kind, p.run_a, p.run_b,
               p.left_run, p.right_run, p.swapped, p.expected, p.repeat_of, p.served,
               j.choice, j.winner_run, j.ms, MAX(j.gt_shown, p.gt_shown) AS gt_shown, j.created, j.source
        FROM judgments j JOIN pairs p ON p.pair_id = j.pair_id
        JOIN raters r ON r.rater_id = p.rater_id JOIN studies s ON s.study_id = p.study_id
        ORDER BY j.judgment_id
    """
    return pd.read_sql_query(query, conn)


def study_runs_frame(conn: sqlite3.Connection):  # -> pandas.DataFrame
    import pandas as pd

    return pd.read_sql_query(
        "SELECT s.study_key, sr.position, sr.run_id, sr.model, sr.label, sr.path, sr.identity_hash "
        "FROM study_runs sr JOIN studies s ON s.study_id = sr.study_id ORDER BY s.study_id, sr.position", conn)
