"""Start a server process, wait until it listens, and stop it on every exit path.

A STUI server started by a tool prints one line `listening on ENDPOINT` on stderr once it serves (the
reference server does; so do the deliberately faulty servers and the benchmarks' echo server).
`ServerProcess` starts the command, reads stderr on a thread, and returns the endpoint once that line
appears - or raises `ServerStartError` with the exit status and the last lines of stderr when the
process exits first or the ready timeout passes (a server that hangs before printing never blocks the
caller). The process is stopped on every exit path: `stop()` sends SIGTERM and, after a grace period,
SIGKILL; the context manager calls it; and a finalizer kills it when the object is collected or the
interpreter exits, whatever happened in between.

One helper for the conformance suite's embedded target, the tests and the benchmarks. It lives in the
bottom layer so every one of them can import it; it knows nothing of the protocol beyond the ready
line, and must never interpret the server's output otherwise.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import weakref
from collections import deque
from collections.abc import Sequence
from pathlib import Path

READY_PREFIX = "listening on "


class ServerStartError(RuntimeError):
    """The server exited or stayed silent before saying it listens."""

    def __init__(self, message: str, returncode: int | None, stderr_tail: str) -> None:
        super().__init__(f"{message}\n{stderr_tail}".rstrip())
        self.returncode = returncode
        self.stderr_tail = stderr_tail


def _kill(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        try:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass


class ServerProcess:
    """One server subprocess: `start()` -> endpoint; `stop()`; `kill()`; output kept for inspection."""

    def __init__(
        self, argv: Sequence[str], *, ready_timeout_s: float = 30.0, env: dict[str, str] | None = None,
        cwd: str | Path | None = None, keep_lines: int = 100_000, name: str = "server",
    ) -> None:
        self.argv = list(argv)
        self.ready_timeout_s = ready_timeout_s
        self.env = env
        self.cwd = cwd
        self.name = name
        self.endpoint: str | None = None
        self.process: subprocess.Popen[str] | None = None
        self._lines: deque[str] = deque(maxlen=keep_lines)
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None
        self._finalizer: weakref.finalize | None = None

    # -- starting ------------------------------------------------------------------------------------

    def start(self) -> str:
        """Start and wait for the ready line; the endpoint it names. Raises ServerStartError."""
        if self.process is not None:
            raise RuntimeError("a ServerProcess starts once; make a new one to start again")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(self.env or {})}
        try:
            self.process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                text=True, errors="replace", env=env, cwd=self.cwd,
                # A process group of its own: a Ctrl-C at the terminal reaches the tool that started the
                # server, which stops it in order (and writes its reports), not the server behind its back.
                start_new_session=True,
            )
        except OSError as exc:
            raise ServerStartError(f"cannot start {self.name} ({self.argv[0]}): {exc}", None, "") from exc
        self._finalizer = weakref.finalize(self, _kill, self.process)
        self._reader = threading.Thread(target=self._read_stderr, args=(self.process,), daemon=True,
                                        name=f"{self.name}-stderr")
        self._reader.start()
        if not self._ready.wait(self.ready_timeout_s) or self.endpoint is None:
            exited = self.process.poll()
            if exited is None and not self._reader.is_alive():  # stderr closed: it is exiting
                try:
                    exited = self.process.wait(2)
                except subprocess.TimeoutExpired:
                    exited = None
            self.kill()
            why = (f"{self.name} exited with status {exited} before listening" if exited is not None
                   else f"{self.name} did not say it listens within {self.ready_timeout_s:g}s")
            raise ServerStartError(why, self.process.returncode, self.stderr_tail())
        return self.endpoint

    def _read_stderr(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        try:
            for line in process.stderr:
                line = line.rstrip("\n")
                self._lines.append(line)
                if not self._ready.is_set() and line.startswith(READY_PREFIX):
                    self.endpoint = line[len(READY_PREFIX):].split()[0]
                    self._ready.set()
        finally:
            self._ready.set()  # EOF: the process is gone; start() stops waiting at once

    # -- output --------------------------------------------------------------------------------------

    def stderr_lines(self) -> list[str]:
        return list(self._lines)

    def stderr_tail(self, lines: int = 40) -> str:
        return "\n".join(list(self._lines)[-lines:])

    def output_after_exit(self, timeout_s: float = 10.0) -> str:
        """All kept stderr once the process has exited and the reader drained the pipe."""
        if self.process is not None:
            self.process.wait(timeout_s)
        if self._reader is not None:
            self._reader.join(timeout_s)
        return "\n".join(self._lines)

    # -- stopping ------------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send_signal(self, signum: int) -> None:
        if self.running:
            assert self.process is not None
            self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL and reap (nothing gets a chance to flush)."""
        if self.process is not None:
            _kill(self.process)

    def stop(self, grace_s: float = 10.0) -> int | None:
        """SIGTERM, wait up to `grace_s`, then SIGKILL. Returns the exit status (None if never started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._reader is not None:
            self._reader.join(5)
        return self.process.returncode

    def wait(self, timeout_s: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout_s)

    def __enter__(self) -> ServerProcess:
        if self.process is None:
            self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
