"""A plain (non-editable) install is complete: the wheel ships the schemas, the spec and the examples,
every Python package of the source tree, and an installed `stui-conformance` finds its schemas
without the source tree.

The wheel is built from a copy of the source tree, so the build leaves no `build/` or `*.egg-info`
behind in the working tree.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import hypothesis
import jsonschema
import pytest
import zmq

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_ROOTS = ("protocol", "reference_server", "conformance")
# Never part of a build: VCS data, caches, earlier build output.
IGNORE = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis",
                                ".pytest_cache", ".ruff_cache", ".benchmarks", ".venv", "*.pyc")


BUILD_LOG: list[str] = []  # the wheel build's verbose output (setuptools' warnings are only shown with -v)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(ROOT, source, ignore=IGNORE)
    out = work / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-w", str(out), "-v"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    BUILD_LOG.append(done.stdout + done.stderr)
    (built,) = out.glob("stui_protocol_kit-*.whl")
    return built


@pytest.fixture(scope="module")
def names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def _source(pattern: str, base: str) -> list[str]:
    return sorted(p.relative_to(ROOT / base).as_posix() for p in (ROOT / base).glob(pattern))


def test_wheel_ships_every_schema_file(names: set[str]) -> None:
    for pattern in ("*.json", "commands/*.json", "bundle/*.json"):
        expected = _source(pattern, "schemas")
        assert expected, pattern
        assert sorted(rel for rel in expected if f"stui_protocol_kit/schemas/{rel}" not in names) == []


def test_wheel_ships_the_spec_and_the_examples(names: set[str]) -> None:
    expected = _source("*.md", "spec") + _source("examples/**/*.json", "spec") + ["examples/README.md"]
    assert len(expected) > 100
    assert sorted(rel for rel in expected if f"stui_protocol_kit/spec/{rel}" not in names) == []


def test_wheel_ships_every_python_package_of_the_source_tree(names: set[str]) -> None:
    # pyproject.toml lists packages by hand (package-dir mappings defeat `find`); a new package
    # directory that is not listed there would be missing from every installation.
    modules = sorted(f"stui_protocol_kit/{p.relative_to(ROOT).as_posix()}" for top in PACKAGE_ROOTS
                     for p in (ROOT / top).rglob("*.py")
                     if "__pycache__" not in p.parts and (p.parent / "__init__.py").exists())
    assert len(modules) > 50
    missing = [m for m in modules if m not in names]
    assert missing == [], "add their packages to [tool.setuptools] packages in pyproject.toml"


def test_the_build_warns_about_no_ignored_package(wheel: Path) -> None:
    """Every directory the wheel ships is declared: `pip install .` prints no "Package would be ignored"
    (a user's first install used to print nine of them, for the data directories of schemas/ and spec/)."""
    assert BUILD_LOG and "would be ignored" not in BUILD_LOG[-1], [
        line for line in BUILD_LOG[-1].splitlines() if "is absent from the `packages`" in line]


def test_wheel_declares_the_console_scripts(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        entry_points = next(archive.read(n).decode() for n in archive.namelist() if n.endswith("entry_points.txt"))
    assert "stui-conformance = stui_protocol_kit.conformance.cli:main" in entry_points


@pytest.mark.slow
def test_installed_validate_finds_its_schemas_outside_the_source_tree(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    # A bare venv made by whichever interpreter runs the tests (a system Python, pyenv, or a venv
    # itself, as the README recommends on Debian). The dependencies come from the directories this
    # interpreter imports them from, added by a .pth file: no download, and - because a .pth line adds a
    # plain directory, whose own .pth files are not run - no editable install of the kit leaks in.
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site_dir = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    dependency_dirs = {str(Path(module.__file__).resolve().parents[1]) for module in (zmq, jsonschema, hypothesis)}
    (Path(site_dir) / "kit-test-dependencies.pth").write_text("\n".join(sorted(dependency_dirs)) + "\n")
    done = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr

    work = tmp_path / "elsewhere"
    work.mkdir()
    vector = json.loads((ROOT / "spec/examples/requests/valid/session.snapshot.full.json").read_text())
    (work / "ok.json").write_text(json.dumps(vector["message"]))
    bad = json.loads((ROOT / "spec/examples/requests/invalid/session.resume.token-too-short.json").read_text())
    (work / "bad.jsonl").write_text(json.dumps(vector["message"]) + "\n" + json.dumps(bad["message"]) + "\n")
    script = venv / "bin" / "stui-conformance"

    where = subprocess.run([str(python), "-c", "import stui_protocol_kit.protocol.schemas as s; print(s.schema_dir())"],
                           cwd=work, capture_output=True, text=True, timeout=60)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(venv), "the installed copy, not the source tree"

    ok = subprocess.run([str(script), "validate", "ok.json"], cwd=work, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok.json: valid request session.snapshot" in ok.stdout
    failed = subprocess.run([str(script), "validate", "--json", "bad.jsonl"], cwd=work,
                            capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1, failed.stderr
    records = [json.loads(line) for line in failed.stdout.splitlines()]
    assert [(r["line"], r["valid"]) for r in records] == [(1, True), (2, False)]
    assert records[1]["violations"][0]["path"] == "$.parameters.token"
    vectors = subprocess.run([str(python), "-c", "import stui_protocol_kit.protocol.requirements as r; "
                              "print(r.spec_dir() / 'examples')"],
                             cwd=work, capture_output=True, text=True, timeout=60)
    shipped = vectors.stdout.strip()
    checked = subprocess.run([str(script), "validate", "--vectors", shipped], cwd=work,
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr
