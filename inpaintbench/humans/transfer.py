"""``humans export`` / ``humans import``: judgments as one CSV table, so that judgments collected
elsewhere (crowd workers, another lab's server) come in too.

Export writes every column of :data:`COLUMNS`; importing that file into any database (the same one,
or a new one) reproduces the same judgments and skips those already there (same ``pair_id``), so
export → import round-trips and re-importing is harmless. A hand-made CSV needs only ``rater``,
``sample_id``, ``run_a``, ``run_b`` and ``choice`` (``left`` = run_a shown left unless
``left_run``/``right_run`` say otherwise); missing ids are derived from the row's content.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from pathlib import Path
from typing import Any

from inpaintbench.errors import InputError
from inpaintbench.humans import db

COLUMNS = ("study_key", "pair_id", "rater", "seq", "sample_id", "kind", "run_a", "run_b", "left_run", "right_run",
           "swapped", "expected", "repeat_of", "served", "choice", "winner_run", "ms", "gt_shown", "created", "source",
           "label_a", "label_b", "identity_hash_a", "identity_hash_b")
REQUIRED = ("rater", "sample_id", "run_a", "run_b", "choice")


def export_csv(db_path: str | Path, out: str | Path) -> int:
    """Write every judgment of ``db_path`` to ``out``; returns the count."""
    from inpaintbench.results import atomic_write_bytes

    conn = db.connect(db_path, create=False)
    try:
        j = db.judgments_frame(conn)
        runs = db.study_runs_frame(conn)
    finally:
        conn.close()
    info = {(k, r): (lab, h) for k, r, lab, h in zip(runs["study_key"], runs["run_id"], runs["label"],
                                                      runs["identity_hash"], strict=True)}
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for rec in j.to_dict("records"):
        a = info.get((rec["study_key"], rec["run_a"]), (rec["run_a"], None))
        b = info.get((rec["study_key"], rec["run_b"]), (rec["run_b"], None))
        rec.update(label_a=a[0], label_b=b[0], identity_hash_a=a[1], identity_hash_b=b[1])
        w.writerow({k: _cell(rec.get(k)) for k in COLUMNS})
    atomic_write_bytes(out, buf.getvalue().encode("utf-8"))
    return len(j)


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _int(text: str, path: Path, line: int, column: str, default: int | None = None) -> int | None:
    if text == "":
        return default
    try:
        return int(float(text))
    except ValueError:
        raise InputError(f"{path}, line {line}: {column} must be an integer, got {text!r}",
                         "fix the cell or leave it empty") from None


def import_csv(csv_path: str | Path, db_path: str | Path) -> tuple[int, int]:
    """Add the judgments of ``csv_path`` to ``db_path`` in one transaction; returns (added, already there)."""
    path = Path(csv_path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path} does not exist", "pass a CSV written by `inpaintbench humans export`") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"{path} lacks the column(s) {', '.join(missing)}",
                         f"a judgments CSV needs at least: {', '.join(REQUIRED)}")
    rows = list(reader)
    conn = db.connect(db_path)
    added = skipped = 0
    try:
        conn.execute("BEGIN IMMEDIATE")
        for n, row in enumerate(rows, start=2):
            if _import_row(conn, {k: (v or "").strip() for k, v in row.items() if k}, path, n):
                added += 1
            else:
                skipped += 1
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    return added, skipped


def _study(conn: Any, key: str, row: dict[str, str]) -> int:
    found = conn.execute("SELECT study_id FROM studies WHERE study_key=?", (key,)).fetchone()
    if found is not None:
        sid = int(found[0])
    else:
        cur = conn.execute("INSERT INTO studies (study_key, created, seed, options) VALUES (?, ?, 0, ?)",
                           (key, db.now(), json.dumps({"imported": True})))
        sid = int(cur.lastrowid)
    for side in ("a", "b"):
        rid = row[f"run_{side}"]
        if conn.execute("SELECT 1 FROM study_runs WHERE study_id=? AND run_id=?", (sid, rid)).fetchone() is None:
            pos = conn.execute("SELECT COUNT(*) FROM study_runs WHERE study_id=?", (sid,)).fetchone()[0]
            label = row.get(f"label_{side}") or rid
            conn.execute("INSERT INTO study_runs VALUES (?, ?, ?, ?, ?, NULL, ?, NULL)",
                         (sid, int(pos), rid, label, label, row.get(f"identity_hash_{side}") or None))
    return sid


def _import_row(conn: Any, row: dict[str, str], path: Path, line: int) -> bool:
    for c in REQUIRED:
        if not row.get(c):
            raise InputError(f"{path}, line {line}: empty {c}", "every judgment needs rater, sample_id, run_a, "
                             "run_b and choice")
    choice, kind = row["choice"], row.get("kind") or "model"
    if choice not in db.CHOICES:
        raise InputError(f"{path}, line {line}: choice {choice!r}", "use left, right or tie")
    if kind not in ("model", "attention"):
        raise InputError(f"{path}, line {line}: kind {kind!r}", "use model or attention")
    a, b = row["run_a"], row["run_b"]
    left, right = row.get("left_run") or a, row.get("right_run") or b
    if {left, right} != {a, b}:
        raise InputError(f"{path}, line {line}: left_run/right_run ({left}, {right}) are not run_a/run_b ({a}, {b})",
                         "left_run and right_run must be run_a and run_b in the order shown")
    winner = {"left": left, "right": right}.get(choice)
    if row.get("winner_run") and row["winner_run"] != (winner or ""):
        raise InputError(f"{path}, line {line}: winner_run {row['winner_run']!r} contradicts choice {choice!r}",
                         "export again, or leave winner_run empty (it is derived from choice)")
    expected = row.get("expected") or None
    if expected not in (None, "left", "right"):
        raise InputError(f"{path}, line {line}: expected {expected!r}", "use left, right or leave it empty")
    content = "|".join([row["rater"], row["sample_id"], a, b, left, choice, row.get("created", ""), str(line)])
    key = row.get("study_key") or "import-" + hashlib.sha256("|".join(sorted([a, b])).encode()).hexdigest()[:12]
    pair_id = row.get("pair_id") or "imp" + hashlib.sha256(f"{key}|{content}".encode()).hexdigest()[:24]
    if conn.execute("SELECT 1 FROM judgments WHERE pair_id=?", (pair_id,)).fetchone() is not None:
        return False
    sid = _study(conn, key, row)
    rid = db.rater_id(conn, row["rater"])
    seq = _int(row.get("seq", ""), path, line, "seq")
    taken = seq is None or conn.execute("SELECT 1 FROM pairs WHERE study_id=? AND rater_id=? AND seq=?",
                                        (sid, rid, seq)).fetchone() is not None
    if taken:
        last = conn.execute("SELECT MAX(seq) FROM pairs WHERE study_id=? AND rater_id=?", (sid, rid)).fetchone()[0]
        seq = 0 if last is None else int(last) + 1
    gt = _int(row.get("gt_shown", ""), path, line, "gt_shown", 0)
    if gt not in (0, 1):
        raise InputError(f"{path}, line {line}: gt_shown must be 0 or 1", "fix the cell")
    if conn.execute("SELECT 1 FROM pairs WHERE pair_id=?", (pair_id,)).fetchone() is None:
        conn.execute(
            "INSERT INTO pairs (pair_id, study_id, rater_id, seq, sample_id, kind, run_a, run_b, left_run, right_run, "
            "swapped, expected, repeat_of, served, gt_shown) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (pair_id, sid, rid, seq, row["sample_id"], kind, a, b, left, right, int(left != a), expected,
             _int(row.get("repeat_of", ""), path, line, "repeat_of"), row.get("served") or db.now(), gt))
    conn.execute("INSERT INTO judgments (pair_id, choice, winner_run, ms, gt_shown, created, source) "
                 "VALUES (?,?,?,?,?,?,?)",
                 (pair_id, choice, winner, _int(row.get("ms", ""), path, line, "ms"), gt,
                  row.get("created") or db.now(), row.get("source") or "import"))
    return True
