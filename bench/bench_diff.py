"""How long `stui-conformance diff` takes: this repository against itself, and with changes to classify.

Run: python bench/bench_diff.py [--repeats N]

Side by side, N times each, as separate processes (what CI pays, interpreter start included):
- `diff SCHEMAS SCHEMAS`: no change (the gate on a pull request that touched only prose);
- `diff SCHEMAS EDITED` with three breaking changes (a new required request member, a tightened token
  pattern, a result member made optional) with witness search, and the same with `--no-witness`;
- `diff HEAD HEAD` through git (git archive of both sides) when this checkout is a git repository.
Prints the median wall time of each and its ratio to the no-change run. Figures only; tests check behaviour.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def edited_copy(target: Path) -> Path:
    shutil.copytree(ROOT / "schemas", target / "schemas", ignore=shutil.ignore_patterns("bundle"))
    (target / "spec").mkdir()
    shutil.copy(ROOT / "spec" / "README.md", target / "spec" / "README.md")
    snapshot = target / "schemas" / "commands" / "session.snapshot.json"
    doc = json.loads(snapshot.read_text())
    doc["$defs"]["Parameters"]["properties"]["label"] = {"type": "string"}
    doc["$defs"]["Parameters"]["required"].append("label")
    doc["$defs"]["Result"]["required"].remove("saved_at")
    snapshot.write_text(json.dumps(doc))
    common = target / "schemas" / "common.json"
    doc = json.loads(common.read_text())
    doc["$defs"]["Token"]["pattern"] = "^[A-Za-z0-9_-]{43,64}$"
    common.write_text(json.dumps(doc))
    return target


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "stui_protocol_kit.conformance.cli", "diff", *args],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"diff {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        edited = edited_copy(Path(tmp) / "edited")
        runs = {
            "no change (directories)": [str(ROOT), str(ROOT)],
            "3 breaking changes, witnesses": [str(ROOT), str(edited)],
            "3 breaking changes, --no-witness": [str(ROOT), str(edited), "--no-witness"],
        }
        if (ROOT / ".git").exists():
            runs["no change (git HEAD HEAD)"] = ["HEAD", "HEAD", "--repo", str(ROOT)]
        walls: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, argv in runs.items():
                walls[name].append(timed(argv))
    base = statistics.median(walls["no change (directories)"])
    print(f"stui-conformance diff, {args.repeats} runs each, separate processes")
    print(f"{'run':<36} {'median s':>9} {'min s':>7} {'x no change':>12}")
    for name, values in walls.items():
        median = statistics.median(values)
        print(f"{name:<36} {median:>9.2f} {min(values):>7.2f} {median / base:>12.1f}")


if __name__ == "__main__":
    main()
