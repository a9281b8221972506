"""`python -m stui_protocol_kit.reference_server.corrupt --data-dir DIR SESSION_ID`: damage a session's
newest stored revision, the way a torn write or a bad disk block would.

This is the reference server's implementation of the conformance suite's optional
`--corrupt-newest-revision-command` hook (the embedded server provides it; another server's team
writes its own): it flips one byte of the newest revision's stored state, so its checksum no longer
matches and the next restart must fall back to an older revision (spec 7.4, PER-10) - and must keep
numbering new snapshots after the damaged one (PER-7). It works while the server runs (SQLite in
WAL mode: one short write transaction); the server holds loaded sessions in memory, so the damage
shows after the restart the suite performs next. Exit status 0 when a revision was damaged, 1 when the
session has no stored revision, 2 for usage errors or an unreadable store.

It is a test tool: it must never be imported by the server, and it touches only the one row.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from stui_protocol_kit.reference_server.sqlite_store import STORE_FILE


def corrupt_newest_revision(data_dir: Path, session_id: str) -> int | None:
    """Flip the first byte of the newest revision's state; returns its number (None: no revision)."""
    db = sqlite3.connect(data_dir / STORE_FILE, timeout=10, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        row = db.execute("SELECT revision, state FROM revisions WHERE session_id = ? ORDER BY revision DESC LIMIT 1",
                         (session_id,)).fetchone()
        if row is None:
            db.execute("ROLLBACK")
            return None
        revision, state = row[0], bytes(row[1])
        damaged = bytes([state[0] ^ 0x01]) + state[1:] if state else b"\x00"
        db.execute("UPDATE revisions SET state = ? WHERE session_id = ? AND revision = ?",
                   (damaged, session_id, revision))
        db.execute("COMMIT")
        return int(revision)
    finally:
        db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stui_protocol_kit.reference_server.corrupt",
                                     description="damage a session's newest stored revision (a test tool)")
    parser.add_argument("--data-dir", type=Path, required=True, help="the server's data directory")
    parser.add_argument("session_id", help="the session (last argument; it may begin with '-')")
    argv = sys.argv[1:] if argv is None else argv
    # A session id is base64url and may begin with "-": the last argument is the id, whatever it looks like.
    if not argv or argv[-1] in ("-h", "--help"):
        parser.parse_args(argv)
    args = parser.parse_args([*argv[:-1], "--", argv[-1]])
    if not (args.data_dir / STORE_FILE).is_file():
        print(f"corrupt: no session store in {args.data_dir}", file=sys.stderr)
        return 2
    try:
        revision = corrupt_newest_revision(args.data_dir, args.session_id)
    except sqlite3.Error as exc:
        print(f"corrupt: {exc}", file=sys.stderr)
        return 2
    if revision is None:
        print("corrupt: the session has no stored revision", file=sys.stderr)
        return 1
    print(f"corrupt: damaged revision {revision}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
