"""Every figure of issue 14's targets, each beside its floor, the ratio and the target, in one run.

Run: python bench/run.py            (full: about 10 minutes on a 2-core machine)
     python bench/run.py --quick    (CI smoke, under a minute: smaller sizes and counts, every row printed)
     python bench/run.py --only 1,3 (some targets only)

Everything is measured here, side by side, on this machine: the reference server runs as its own
process (`stui-reference-server`, real SQLite files in a temporary directory, tcp loopback), the floors
(a raw pyzmq ROUTER echo of the same bodies, one durable SQLite commit alone, python-jsonschema on the
same file, the server's own figure at the smallest size) in the same run. Load comes from other
processes (bench/snapshot_writers.py), so the measuring client never shares an interpreter lock with
it. Figures only: tests check behaviour and never timings (a test runs --quick to see every row).

Columns: the target number, what is measured, the figure, the floor it is compared with, the ratio
figure/floor (or floor/figure for rates, marked), the target and whether it was met ("met", "NOT met").
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from stui_protocol_kit.protocol.client import ProtocolClient
from stui_protocol_kit.protocol.facts import PROTOCOL_VERSION
from stui_protocol_kit.protocol.server_process import ServerProcess

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))  # the sibling benches: one echo server, one proxy process
from bench_roundtrip import ECHO  # noqa: E402  (the raw pyzmq ROUTER echo every floor is measured on)

TOKEN = "T" * 43  # the token of every session this bench writes into a store itself


@dataclass
class Row:
    target: str
    measure: str
    figure: float
    unit: str
    floor_name: str
    floor: float
    ratio: float
    goal: str
    met: bool | None

    def cells(self) -> list[str]:
        verdict = {True: "met", False: "NOT met", None: "-"}[self.met]
        return [self.target, self.measure, f"{_num(self.figure)} {self.unit}",
                f"{self.floor_name} {_num(self.floor)}" if self.floor_name else "-",
                f"{self.ratio:.2f}x" if self.ratio == self.ratio else "-", self.goal, verdict]


def _num(x: float) -> str:
    if x != x:
        return "n/a"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.2f}" if abs(x) >= 1 else f"{x:.3f}"


ROWS: list[Row] = []


def row(target: str, measure: str, figure: float, unit: str, floor_name: str, floor: float, ratio: float,
        goal: str, met: bool | None) -> None:
    r = Row(target, measure, figure, unit, floor_name, floor, ratio, goal, met)
    ROWS.append(r)
    print("  " + " | ".join(r.cells()), flush=True)


def p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


# -- processes --------------------------------------------------------------------------------------

def reference(data_dir: Path, *extra: str) -> ServerProcess:
    return ServerProcess([sys.executable, "-m", "stui_protocol_kit.reference_server.cli", "--bind",
                          "tcp://127.0.0.1:0", "--data-dir", str(data_dir), "--log-level", "WARNING", *extra],
                         name="reference", ready_timeout_s=120)


def echo() -> ServerProcess:
    return ServerProcess([sys.executable, "-c", ECHO], name="echo")


@contextlib.contextmanager
def writers(endpoint: str, clients: int, state_bytes: int) -> Iterator[dict]:
    """bench/snapshot_writers.py as a process; yields a dict filled with its result when it stops."""
    proc = subprocess.Popen([sys.executable, str(BENCH / "snapshot_writers.py"), endpoint, "--clients", str(clients),
                             "--state-bytes", str(state_bytes)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    result: dict = {}
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"snapshot writers did not start: {line!r}")
        yield result
        proc.stdin.close()
        result.update(json.loads(proc.stdout.readline()))
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# -- requests ---------------------------------------------------------------------------------------

class Caller:
    """Raw bodies over one DEALER: nothing decoded or recorded in the timed loop."""

    def __init__(self, endpoint: str) -> None:
        self.client = ProtocolClient(endpoint, "dealer", timeout_s=120)
        self.n = 0

    def body(self, command: str, parameters: dict) -> bytes:
        self.n += 1
        return json.dumps({"id": f"b{self.n}", "version": PROTOCOL_VERSION, "command": command,
                           "parameters": parameters}, separators=(",", ":")).encode()

    def create(self, client_id: str = "bench") -> dict:
        return self.client.call("session.create", {"client_id": client_id}).reply["result"]

    def once(self, body: bytes) -> bytes:
        self.client.send_frames([body])
        return self.client.receive()

    def timed(self, make: Callable[[], bytes], n: int, check: bool = True) -> list[float]:
        samples = []
        for _ in range(n):
            body = make()
            t = time.perf_counter()
            self.client.send_frames([body])
            reply = self.client.receive()
            samples.append(time.perf_counter() - t)
            if check and b'"status":"success"' not in reply:
                raise RuntimeError(f"not a success: {reply[:300]!r}")
        return samples

    def pipelined(self, make: Callable[[], bytes], n: int, window: int) -> float:
        bodies = [make() for _ in range(n)]
        t = time.perf_counter()
        sent = received = 0
        while received < n:
            while sent < n and sent - received < window:
                self.client.send_frames([bodies[sent]])
                sent += 1
            self.client.receive()
            received += 1
        return n / (time.perf_counter() - t)

    def close(self) -> None:
        self.client.close()


def scoped(session: dict, **more: object) -> dict:
    return {"session_id": session["session_id"], "token": session["token"], **more}


# -- targets ----------------------------------------------------------------------------------------

def target1_and_2(work: Path, quick: bool) -> None:
    n = 300 if quick else 2000
    with reference(work / "t1") as server:
        assert server.endpoint
        c = Caller(server.endpoint)
        s = c.create()
        make = lambda: c.body("evaluate", scoped(s, code="1 + 1"))  # noqa: E731
        c.timed(make, 100)
        idle = c.timed(make, n)
        with writers(server.endpoint, 8, 256 * 1024) as load:
            busy = c.timed(make, n)
        idle_p50, idle_p99, busy_p50, busy_p99 = (p(idle, .5) * 1e3, p(idle, .99) * 1e3, p(busy, .5) * 1e3,
                                                  p(busy, .99) * 1e3)
        row("1", "evaluate p50 under 8 writers x 256 KiB", busy_p50, "ms", "alone", idle_p50, busy_p50 / idle_p50,
            "<= 2x", busy_p50 <= 2 * idle_p50)
        row("1", "evaluate p99 under 8 writers x 256 KiB", busy_p99, "ms", "alone", idle_p99, busy_p99 / idle_p99,
            "<= 3x", busy_p99 <= 3 * idle_p99)
        rate = load["snapshots"] / load["seconds"]
        row("1", "(the writers' durable 256 KiB snapshots meanwhile)", rate, "/s", "", float("nan"), float("nan"),
            f"errors {load['errors']}", load["errors"] == 0)
        c.close()
        seconds = 2 if quick else 10
        with writers(server.endpoint, 1, 1024) as one:
            time.sleep(seconds)
        with writers(server.endpoint, 50, 1024) as fifty:
            time.sleep(seconds)
        one_rate = one["snapshots"] / one["seconds"]
        fifty_rate = fifty["snapshots"] / fifty["seconds"]
        row("2", "durable snapshots/s, 50 clients (1 KiB)", fifty_rate, "/s", "1 client", one_rate,
            fifty_rate / one_rate, ">= 5x", fifty_rate >= 5 * one_rate and fifty["errors"] == 0)


_COMMIT_DB: dict[Path, sqlite3.Connection] = {}


def commit_alone(work: Path, size: int, n: int) -> list[float]:
    """One durable commit as the store makes it (WAL, synchronous=FULL), alone, same disk."""
    db = _COMMIT_DB.get(work)
    if db is None:
        db = _COMMIT_DB[work] = sqlite3.connect(work / "commit-alone.sqlite3", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL").fetchone()
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB)")
    blob = os.urandom(size)
    samples = []
    for i in range(n):
        t = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT OR REPLACE INTO t VALUES (?, ?)", (i % 8, blob))
        db.execute("COMMIT")
        samples.append(time.perf_counter() - t)
    return samples


def target3(work: Path, quick: bool) -> None:
    n = 300 if quick else 2000
    rounds = 2 if quick else 5
    with reference(work / "t3") as server, echo() as mirror:
        assert server.endpoint and mirror.endpoint
        c, e = Caller(server.endpoint), Caller(mirror.endpoint)
        s = c.create()
        makers = {
            "hello": lambda: c.body("hello", {}),
            "session.validate": lambda: c.body("session.validate", scoped(s)),
            "evaluate": lambda: c.body("evaluate", scoped(s, code="1 + 1")),
        }
        for name, make in makers.items():
            c.timed(make, 100)
            e.timed(make, 100, check=False)
            ref, mir = [], []
            for _ in range(rounds):  # alternating, so that noise hits both alike
                ref += c.timed(make, n // rounds)
                mir += e.timed(make, n // rounds, check=False)
            r50, m50 = p(ref, .5) * 1e6, p(mir, .5) * 1e6
            row("3", f"{name} sequential p50", r50, "us", "echo", m50, r50 / m50, "<= 1.5x", r50 <= 1.5 * m50)
        make = makers["session.validate"]
        ref_rates, mir_rates = [], []
        for _ in range(rounds):
            ref_rates.append(c.pipelined(make, n * 2, 64))
            mir_rates.append(e.pipelined(make, n * 2, 64))
        rr, mr = statistics.median(ref_rates), statistics.median(mir_rates)
        row("3", "session.validate pipelined (64 in flight)", rr, "req/s", "echo", mr, rr / mr, ">= 0.5 (rate)",
            rr >= 0.5 * mr)
        state = {"inspector": {"pane": "x" * 1000}, "preferences": {}}
        snap = lambda: c.body("session.snapshot", scoped(s, state=state))  # noqa: E731
        ref, mir, commit = [], [], []
        for _ in range(n // 4):  # one of each in turn: the disk's mood (fsync) hits all three alike
            ref += c.timed(snap, 1)
            mir += e.timed(snap, 1, check=False)
            commit += commit_alone(work, 1100, 1)
        r50, floor = p(ref, .5) * 1e6, (p(mir, .5) + p(commit, .5)) * 1e6
        row("3", "session.snapshot p50 (1 KiB)", r50, "us", "echo+commit", floor, r50 / floor, "<= 1x",
            r50 <= floor)
        row("3", "(one durable commit alone, p50)", p(commit, .5) * 1e6, "us", "", float("nan"), float("nan"),
            "floor", None)
        _COMMIT_DB.pop(work).close()
        c.close()
        e.close()


def populate(data_dir: Path, sessions: int, variables: int = 10) -> list[str]:
    """A store of `sessions` active sessions of `variables` variables each, written directly in one
    transaction (creating them through the server would take one fsync each). Returns their ids."""
    from stui_protocol_kit.reference_server.sqlite_store import SqliteStore
    from stui_protocol_kit.reference_server.store import checksum

    store = SqliteStore(data_dir)
    now = time.time()
    state = json.dumps({"workspace": {"variables": {f"v{i}": {"class": "SmallInteger", "print_string": str(i)}
                                                    for i in range(variables)}},
                        "objects": {}, "inspector": {}, "preferences": {}}, separators=(",", ":")).encode()
    digest, sums = hashlib.sha256(TOKEN.encode()).digest(), checksum(state)
    ids = [f"bench{variables:06d}x{i:011d}" for i in range(sessions)]
    db = store.db
    db.execute("BEGIN")
    db.executemany("INSERT INTO sessions VALUES (?, 'bench', ?, ?, ?, 'active', NULL, 1)",
                   ((sid, digest, now, now) for sid in ids))
    db.executemany("INSERT INTO revisions VALUES (?, 1, ?, ?, ?)", ((sid, now, state, sums) for sid in ids))
    db.execute("COMMIT")
    store.close()
    return ids


def _started(data_dir: Path) -> tuple[float, ServerProcess]:
    t = time.perf_counter()
    server = reference(data_dir, "--max-message-bytes", str(64 * 1024 * 1024))
    server.start()
    return time.perf_counter() - t, server


def _session_ops(endpoint: str, session_ids: list[str], n: int) -> tuple[float, float, float]:
    """(first resume, which loads the session from storage: median over `session_ids`; resume p50 of a
    held session; snapshot p50), in ms."""
    c = Caller(endpoint)
    first = statistics.median(
        c.timed(lambda sid=sid: c.body("session.resume", {"session_id": sid, "token": TOKEN}), 1)[0]
        for sid in session_ids)
    s = {"session_id": session_ids[0], "token": TOKEN}
    resume = c.timed(lambda: c.body("session.resume", s), n)
    snap = c.timed(lambda: c.body("session.snapshot", scoped(s, state={"preferences": {"a": 1}})), n)
    c.close()
    return first * 1e3, p(resume, .5) * 1e3, p(snap, .5) * 1e3


def target4(work: Path, quick: bool) -> None:
    sizes = [10, 1000, 10_000] if quick else [10, 1000, 10_000, 100_000]
    # The smallest store holds 5 sessions: each first resume (a load from storage) is one sample.
    counts = [5, 10_000] if quick else [5, 1000, 100_000]
    n = 10 if quick else 30
    # Size: one store holding three sessions of each size.
    data = work / "t4-size"
    ids = {size: populate(data, 3, size) for size in sizes}
    _, server = _started(data)
    with server:
        assert server.endpoint
        figures = {size: _session_ops(server.endpoint, ids[size], max(5, n * 10 // max(10, size // 100)))
                   for size in sizes}
    small, big = sizes[1], sizes[-1]
    grow = big / small
    for k, name in ((0, "resume, loading from storage"), (1, "resume, held"), (2, "snapshot")):
        per = figures[big][k] / figures[small][k]
        row("4", f"{name}: {big:,} vars vs {small:,}", figures[big][k], "ms", f"{small:,} vars", figures[small][k],
            per, f"linear: <= {1.5 * grow:.0f}x", per <= 1.5 * grow)
    # Other stored sessions: the same small session in stores of growing size; start-up of each.
    start: dict[int, float] = {}
    ops: dict[int, tuple[float, float, float]] = {}
    for count in counts:
        data = work / f"t4-count{count}"
        stored = populate(data, count)
        sample = stored[::max(1, count // 5)][:5]  # five sessions spread over the store
        start[count], server = _started(data)
        with server:
            assert server.endpoint
            ops[count] = _session_ops(server.endpoint, sample, n)
    lo, hi = counts[0], counts[-1]
    for k, name in ((0, "resume, loading from storage"), (1, "resume, held"), (2, "snapshot")):
        ratio = ops[hi][k] / ops[lo][k]
        row("4", f"{name}, {hi:,} stored sessions", ops[hi][k], "ms", f"{lo} stored", ops[lo][k], ratio,
            "flat: <= 1.5x", ratio <= 1.5)
    row("4", f"start-up, {hi:,} stored sessions", start[hi], "s", f"{lo} stored", start[lo], start[hi] / start[lo],
        "<= 1 s", start[hi] <= 1.0 if hi >= 100_000 else None)
    # tick(): in-process, the engine holding every session of a store.
    ticks: dict[int, float] = {}
    for count in ((100, 10_000) if quick else (100, 100_000)):
        ticks[count] = tick_cost(work / f"t4-tick{count}", count)
    (lo, t_lo), (hi, t_hi) = sorted(ticks.items())
    row("4", f"tick(), {hi:,} held sessions", t_hi * 1e3, "ms", f"{lo} held", t_lo * 1e3, t_hi / t_lo,
        "independent: <= 1.5x", t_hi <= 1.5 * t_lo)


def tick_cost(data: Path, count: int) -> float:
    """Median of 5 `Engine.tick()` calls with `count` sessions held (loaded) and stored, one active."""
    import secrets

    from stui_protocol_kit.reference_server.config import ServerConfig
    from stui_protocol_kit.reference_server.engine import Engine
    from stui_protocol_kit.reference_server.sqlite_store import SqliteStore

    ids = populate(data, count)
    store = SqliteStore(data)
    engine = Engine(ServerConfig(), store, clock=time.time, random_source=secrets.token_urlsafe)
    now = time.time()
    for sid in ids:
        engine.sessions.get(sid, now)
    samples = []
    for _ in range(5):
        t = time.perf_counter()
        engine.tick()
        samples.append(time.perf_counter() - t)
    store.close()
    return statistics.median(samples)


def target5(work: Path, quick: bool) -> None:
    first, total = (10_000, 60_000) if quick else (10_000, 1_000_000)
    with reference(work / "t5") as server:
        assert server.endpoint and server.pid
        c = Caller(server.endpoint)
        sessions = [c.create(f"mem{i}") for i in range(8)]
        kinds = [("session.validate", {}), ("evaluate", {"code": "x := 1 + 1"}), ("session.resume", {})]
        k = 0

        def make() -> bytes:
            nonlocal k
            k += 1
            command, more = kinds[k % 3]
            return c.body(command, scoped(sessions[k % 8], **more))

        c.pipelined(make, first, 64)
        after_first = rss_kib(server.pid)
        done = first
        while done < total:
            batch = min(50_000, total - done)
            c.pipelined(make, batch, 64)
            done += batch
        after_all = rss_kib(server.pid)
        c.close()
    row("5", f"server RSS after {total:,} requests", after_all / 1024, "MiB", f"after {first:,}", after_first / 1024,
        after_all / after_first, "<= 2x", after_all <= 2 * after_first)


def transcript_file(path: Path, messages: int) -> None:
    """Requests and their success replies, as JSON Lines."""
    sid, token = "S" * 22, TOKEN
    pairs = [
        ({"command": "session.validate", "parameters": {"session_id": sid, "token": token}},
         {"session_id": sid, "valid": True, "revision": 3, "expires_at": "2026-01-01T00:00:00Z",
          "last_active_at": "2026-01-01T00:00:00Z", "attached_clients": 1}),
        ({"command": "evaluate", "parameters": {"session_id": sid, "token": token, "code": "1 + 1"}},
         {"print_string": "2", "class": "SmallInteger"}),
        ({"command": "session.snapshot", "parameters": {"session_id": sid, "token": token,
                                                        "state": {"inspector": {"a": [1, 2, 3]}}}},
         {"session_id": sid, "revision": 4, "saved_at": "2026-01-01T00:00:00Z"}),
    ]
    with path.open("w") as out:
        for i in range(messages // 2):
            request, result = pairs[i % len(pairs)]
            rid = f"r{i}"
            out.write(json.dumps({"id": rid, "version": PROTOCOL_VERSION, **request}) + "\n")
            out.write(json.dumps({"id": rid, "version": PROTOCOL_VERSION, "command": request["command"],
                                  "status": "success", "result": result, "timestamp": "2026-01-01T00:00:00Z"}) + "\n")


def python_jsonschema_seconds(path: Path) -> float:
    """python-jsonschema (Draft 2020-12) on the same file: each line parsed, validated against the
    bundled schema of its kind, every error collected (what a validating tool must report)."""
    import jsonschema

    from stui_protocol_kit.protocol.schemas import schema_dir

    bundle = schema_dir() / "bundle"
    validators: dict[str, jsonschema.Draft202012Validator] = {}
    t = time.perf_counter()
    bad = 0
    with path.open() as lines:
        for line in lines:
            message = json.loads(line)
            kind = ("response." if "status" in message else "request.") + message["command"]
            v = validators.get(kind)
            if v is None:
                schema = json.loads((bundle / f"{kind}.json").read_text())
                v = validators[kind] = jsonschema.Draft202012Validator(schema)
            bad += any(True for _ in v.iter_errors(message))
    if bad:
        raise RuntimeError(f"python-jsonschema found {bad} invalid messages in the bench's own file")
    return time.perf_counter() - t


def target6(work: Path, quick: bool) -> None:
    messages = 10_000 if quick else 100_000
    path = work / "messages.jsonl"
    transcript_file(path, messages)
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "stui_protocol_kit.conformance.cli", "validate", str(path)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    kit = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"validate exited {done.returncode}: {done.stderr[-500:]}")
    plain = python_jsonschema_seconds(path)
    row("6", f"stui-conformance validate, {messages:,} messages", kit, "s", "python-jsonschema", plain, plain / kit,
        ">= 20x (speed-up)", plain >= 20 * kit)
    proxy_added(work, quick)


def proxy_added(work: Path, quick: bool) -> None:
    from bench_proxy import ProxyProcess

    n, rounds = (300, 2) if quick else (2000, 5)
    with reference(work / "t6") as server:
        assert server.endpoint
        with ProxyProcess(server.endpoint) as proxy:
            direct, through = Caller(server.endpoint), Caller(proxy.endpoint)
            s = direct.create()
            make_d = lambda: direct.body("session.validate", scoped(s))  # noqa: E731
            make_p = lambda: through.body("session.validate", scoped(s))  # noqa: E731
            direct.timed(make_d, 100)
            through.timed(make_p, 100)
            d, t = [], []
            for _ in range(rounds):
                d += direct.timed(make_d, n // rounds)
                t += through.timed(make_p, n // rounds)
            direct.close()
            through.close()
    d50, t50 = p(d, .5) * 1e6, p(t, .5) * 1e6
    row("6", "validating proxy: added p50 (validate)", t50 - d50, "us", "direct p50", d50, t50 / d50, "<= 100 us added",
        t50 - d50 <= 100)


def target7(work: Path, quick: bool) -> None:
    if quick:
        for measure in ("default conformance run (embedded server)", "whole suite (expiry, restart cases)"):
            row("7", measure + ": not run in --quick", float("nan"), "s", "", float("nan"), float("nan"),
                "<= 20 s / 60 s", None)
        return
    report = work / "run.json"
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "stui_protocol_kit.conformance.cli", "run", "--json", str(report)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"conformance run exited {done.returncode}: {done.stderr[-500:]}")
    cases = json.loads(report.read_text())["cases"]
    ran = sum(1 for case in cases if case["outcome"] not in ("SKIPPED", "UNSUPPORTED"))
    row("7", "default conformance run (embedded server)", wall, "s", "", float("nan"), float("nan"), "<= 20 s",
        wall <= 20)
    # The default run selects every case, expiry and restart ones included (the embedded server
    # restarts itself); it is the whole suite when none was skipped.
    row("7", f"whole suite: {ran} of {len(cases)} cases ran (expiry, restart)", wall, "s", "", float("nan"),
        float("nan"), "<= 60 s", wall <= 60 and ran == len(cases))


TARGETS = {"1": target1_and_2, "3": target3, "4": target4, "5": target5, "6": target6, "7": target7}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI smoke: small sizes, under a minute, every row")
    parser.add_argument("--only", default="", help="comma-separated targets (1 includes 2): 1,3,4,5,6,7")
    args = parser.parse_args(argv)
    chosen = [t for t in TARGETS if not args.only or t in args.only.replace("2", "1").split(",")]
    started = time.perf_counter()
    print(f"bench/run.py{' --quick' if args.quick else ''}: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print("  " + " | ".join(["#", "measure", "figure", "floor", "ratio", "target", "verdict"]), flush=True)
    failed = []
    with tempfile.TemporaryDirectory(prefix="stui-bench-") as tmp:
        for key in chosen:
            try:
                TARGETS[key](Path(tmp), args.quick)
            except Exception as exc:  # one broken measurement must not hide the other rows
                failed.append(key)
                print(f"  {key} | ERROR: the measurement failed: {type(exc).__name__}: {exc}", flush=True)
    missed = [r for r in ROWS if r.met is False]
    print(f"{len(ROWS)} rows in {time.perf_counter() - started:.0f} s; {len(missed)} target(s) not met"
          + (f"; measurements of target(s) {', '.join(failed)} FAILED" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
