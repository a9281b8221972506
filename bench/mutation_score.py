"""Mutation score of the conformance suite: how many broken reference servers does the default profile catch?

Run: python bench/mutation_score.py [--sample N] [--seed S] [--jobs J] [--faults-only | --ast-only]
     [--files engine,sessions,...] [--json FILE]

Two kinds of mutants, each a reference server with exactly one change, served over real ZeroMQ:
- the hand-written faults of tests/faulty/server.py (`--fault NAME`): reply rewrites and the semantic
  patches of tests/faulty/semantic.py (state, time, restarts, retries);
- automated mutants: a small AST mutator over the reference server's engine, sessions, reply cache and
  storage, and the shared lifecycle (expiry) module - flip a comparison (< <=, > >=, == !=, in / not in),
  shift an integer constant by one, drop a statement (replaced by `pass`), swap a constant (True/False,
  min/max) - each served by bench/mutant_server.py, which imports the one mutated module in its place.
  Every mutation site is listed in a fixed order; `--sample N` draws N of them with `--seed`.
Each mutant is judged by a whole default-profile run (`stui-conformance run` against it as the
embedded server). A mutant is caught when any case FAILED, TIMED OUT or was NON-STRICT, or when it
cannot start (counted apart as "stillborn": the suite never saw it serve). The script prints
caught/total and every survivor with its diff, for a person to classify (equivalent, left free by the
spec, or a gap to close). Figures only; nothing here is asserted by the tests.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAULTY_SERVER = ROOT / "tests" / "faulty" / "server.py"
MUTANT_SERVER = ROOT / "bench" / "mutant_server.py"
# file stem -> (module name, source path): the parts whose logic decides sessions, expiry, retries, storage
TARGETS = {
    "engine": ("stui_protocol_kit.reference_server.engine", ROOT / "reference_server" / "engine.py"),
    "sessions": ("stui_protocol_kit.reference_server.sessions", ROOT / "reference_server" / "sessions.py"),
    "reply_cache": ("stui_protocol_kit.reference_server.reply_cache", ROOT / "reference_server" / "reply_cache.py"),
    "sqlite_store": ("stui_protocol_kit.reference_server.sqlite_store", ROOT / "reference_server" / "sqlite_store.py"),
    "lifecycle": ("stui_protocol_kit.protocol.lifecycle", ROOT / "protocol" / "lifecycle.py"),
}
RUN_CAP_S = 240  # a mutant whose run takes longer hangs the suite: caught (the run would time out in CI)

_FLIP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
         ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}


@dataclass(frozen=True)
class Mutant:
    name: str
    argv: list[str]  # the server command line (without the suite's own arguments)
    diff: str = ""


# -- the AST mutator ----------------------------------------------------------------------------------

def _sites(tree: ast.AST) -> list[tuple[str, ast.AST, int]]:
    """Every place a mutation applies, in a fixed order: (operator, node, index within node)."""
    sites: list[tuple[str, ast.AST, int]] = []
    docstrings = {id(n.body[0]) for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sites += [("flip", node, i) for i, op in enumerate(node.ops) if type(op) in _FLIP]
        elif isinstance(node, ast.Constant) and type(node.value) is bool:
            sites.append(("bool", node, 0))
        elif isinstance(node, ast.Constant) and type(node.value) is int and not isinstance(node.value, bool):
            sites.append(("int", node, 0))
        elif isinstance(node, ast.Name) and node.id in ("min", "max") and isinstance(node.ctx, ast.Load):
            sites.append(("minmax", node, 0))
        if isinstance(node, (ast.FunctionDef, ast.If, ast.For, ast.While, ast.With, ast.Try)):
            for i, stmt in enumerate(node.body):
                if isinstance(stmt, (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return)) \
                        and id(stmt) not in docstrings and len(node.body) > 1:
                    sites.append(("drop", node, i))
    return sites


def _apply(kind: str, node: ast.AST, index: int) -> None:
    if kind == "flip":
        node.ops[index] = _FLIP[type(node.ops[index])]()  # type: ignore[attr-defined]
    elif kind == "bool":
        node.value = not node.value  # type: ignore[attr-defined]
    elif kind == "int":
        node.value = node.value + 1  # type: ignore[attr-defined]
    elif kind == "minmax":
        node.id = "max" if node.id == "min" else "min"  # type: ignore[attr-defined]
    elif kind == "drop":
        node.body[index] = ast.Pass()  # type: ignore[attr-defined]


def ast_mutants(files: list[str], sample: int, seed: int, workdir: Path) -> list[Mutant]:
    listed: list[tuple[str, int, str]] = []  # (file, site index, kind)
    for stem in files:
        _, path = TARGETS[stem]
        for i, (kind, _node, _j) in enumerate(_sites(ast.parse(path.read_text(encoding="utf-8")))):
            listed.append((stem, i, kind))
    chosen = sorted(random.Random(seed).sample(listed, min(sample, len(listed)))) if sample else listed
    mutants = []
    for stem, i, kind in chosen:
        module, path = TARGETS[stem]
        original = path.read_text(encoding="utf-8")
        tree = ast.parse(original)
        kind_, node, j = _sites(tree)[i]
        _apply(kind_, node, j)
        mutated = ast.unparse(ast.fix_missing_locations(tree))
        if mutated == ast.unparse(ast.parse(original)):
            continue
        source = workdir / f"{stem}-{i}.py"
        source.write_text(mutated, encoding="utf-8")
        diff = "".join(line for line in difflib.unified_diff(
            ast.unparse(ast.parse(original)).splitlines(True), mutated.splitlines(True), n=0)
            if line.startswith(("+", "-")) and not line.startswith(("+++", "---")))
        mutants.append(Mutant(f"{stem}#{i} ({kind})", [sys.executable, str(MUTANT_SERVER), "--mutant-module", module,
                                                       "--mutant-source", str(source)], diff.strip()))
    return mutants


def fault_mutants() -> list[Mutant]:
    sys.path.insert(0, str(FAULTY_SERVER.parent))
    from server import FAULTS  # the hand-written faults

    return [Mutant(f"fault {name}", [sys.executable, str(FAULTY_SERVER), "--fault", name]) for name in sorted(FAULTS)]


# -- judging one mutant --------------------------------------------------------------------------------

_ONE = """
import json, sys
from stui_protocol_kit.conformance.case import Outcome
from stui_protocol_kit.conformance.runner import RunConfig, run
from stui_protocol_kit.conformance.target import TargetUnavailable
try:
    report = run(RunConfig(server_argv=json.loads(sys.argv[1])))
except TargetUnavailable as exc:
    print(json.dumps({"stillborn": str(exc)[:300]})); sys.exit(0)
bad = (Outcome.FAILED, Outcome.TIMEOUT, Outcome.NON_STRICT)
print(json.dumps({"caught_by": sorted(r.case.id for r in report.results if r.outcome in bad),
                  "errors": sorted(r.case.id for r in report.results if r.outcome is Outcome.ERROR)}))
"""


def judge(mutant: Mutant) -> dict:
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-c", _ONE, json.dumps(mutant.argv)], capture_output=True, text=True,
                              timeout=RUN_CAP_S, cwd=ROOT)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        verdict = json.loads(lines[-1]) if lines else {"stillborn": f"no verdict: {done.stderr.strip()[-300:]}"}
    except subprocess.TimeoutExpired:
        verdict = {"caught_by": [f"(the run took over {RUN_CAP_S}s)"]}
    verdict["seconds"] = round(time.monotonic() - started, 1)
    return verdict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=40, help="AST mutants drawn (0: every site; default 40)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="mutants judged at once (default 2)")
    parser.add_argument("--files", default=",".join(TARGETS), help=f"comma-separated, of {', '.join(TARGETS)}")
    parser.add_argument("--faults-only", action="store_true")
    parser.add_argument("--ast-only", action="store_true")
    parser.add_argument("--only", action="append", default=[], help="judge only mutants whose name contains this")
    parser.add_argument("--json", type=Path, help="write every verdict as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="stui-mutants-") as tmp:
        mutants: list[Mutant] = []
        if not args.ast_only:
            mutants += fault_mutants()
        if not args.faults_only:
            mutants += ast_mutants([f for f in args.files.split(",") if f], args.sample, args.seed, Path(tmp))
        if args.only:
            mutants = [m for m in mutants if any(o in m.name for o in args.only)]
        print(f"judging {len(mutants)} mutants, {args.jobs} at a time, each by a default-profile run", flush=True)
        verdicts: dict[str, dict] = {}

        def one(m: Mutant) -> None:
            verdicts[m.name] = judge(m)
            v = verdicts[m.name]
            state = "stillborn" if "stillborn" in v else ("caught" if v["caught_by"] else "SURVIVED")
            print(f"  {state:9} {m.name}  ({v['seconds']}s) {', '.join(v.get('caught_by', [])[:4])}", flush=True)

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            list(pool.map(one, mutants))
    for kind, chosen in (("hand-written faults", [m for m in mutants if m.name.startswith("fault ")]),
                         ("automated (AST) mutants", [m for m in mutants if not m.name.startswith("fault ")])):
        if not chosen:
            continue
        stillborn = [m for m in chosen if "stillborn" in verdicts[m.name]]
        served = [m for m in chosen if m not in stillborn]
        caught = [m for m in served if verdicts[m.name]["caught_by"]]
        print(f"\n{kind}: caught {len(caught)}/{len(served)} that served"
              f" ({len(stillborn)} more could not start: caught at start-up)")
        for m in served:
            if not verdicts[m.name]["caught_by"]:
                print(f"  survivor {m.name}" + (f"\n    {m.diff.replace(chr(10), chr(10) + '    ')}" if m.diff else ""))
    if args.json:
        args.json.write_text(json.dumps({m.name: {**verdicts[m.name], "diff": m.diff} for m in mutants}, indent=1),
                             encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
