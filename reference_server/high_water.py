"""The store's high-water mark: a small file beside the SQLite store that remembers how many changes
the store had committed, so that a store that comes back emptier or older is refused (issue 10).

Why a second file: a store file truncated to 0 bytes, replaced by an older copy, or whose write-ahead
log was deleted after a kill opens as a valid SQLite database - only with fewer changes than were
acknowledged. Nothing inside the file can tell; a record outside it can. The store counts its
committed transactions in its `meta` table (in the same transaction as each change) and, after every
commit, writes the count here. At start-up a store holding fewer commits than this file says was
lost or rolled back, and the server refuses to start unless told to accept the loss.

The record is written after the commit, so it is never ahead of what the store made durable: it may
lag behind (a power loss right after a commit; it is not fsynced on every commit, only at open and
close), which can hide a loss of those last commits but never refuses a good store. Deleting the
whole data directory, this file included, cannot be told from a first start.

Format: one line of ASCII, `stui-high-water v1 commits=<n>`, padded with spaces to a fixed length
and rewritten in place with one `pwrite`, so a reader never sees a torn value. This module does file
I/O only; it must never open the database.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

HIGH_WATER_FILE = "sessions.high-water"
_RECORD = "stui-high-water v1 commits={commits}"
_WIDTH = 64
_PATTERN = re.compile(r"stui-high-water v1 commits=(\d{1,19}) *\n?")


class HighWaterError(Exception):
    """The high-water file exists but cannot be read or written; the message says which and why."""


class HighWater:
    """The high-water file of one data directory, held open while the store is."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / HIGH_WATER_FILE
        self._fd: int | None = None

    def read(self) -> int | None:
        """The commits recorded, or None when there is no file (a new store, or one written before
        this file existed). A file that is there but unreadable is an error, never None."""
        try:
            text = self.path.read_bytes().decode("ascii")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise HighWaterError(f"cannot read {self.path}: {exc}") from None
        match = _PATTERN.fullmatch(text)
        if match is None:
            raise HighWaterError(f"{self.path} is not a high-water record (found {text[:40]!r})")
        return int(match.group(1))

    def open(self) -> None:
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise HighWaterError(f"cannot open {self.path}: {exc.strerror or exc}") from None

    def write(self, commits: int, *, sync: bool = False) -> None:
        """Record `commits` (called after each commit; `sync` at open and close)."""
        if self._fd is None:
            self.open()
        assert self._fd is not None
        record = _RECORD.format(commits=commits).ljust(_WIDTH - 1) + "\n"
        try:
            os.pwrite(self._fd, record.encode("ascii"), 0)
            if sync:
                os.fsync(self._fd)
        except OSError as exc:
            raise HighWaterError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            finally:
                self._fd = None
