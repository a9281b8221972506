"""Where the two sides of a diff come from: a directory, or a git ref of a repository.

A side is read into a `Side`: its `SchemaRegistry` (so `$ref`s resolve exactly as everywhere else in
the kit), its protocol version (the constant request.json's `version` member holds, written inline or
behind a `$ref` such as common.json `$defs/Version`) and its spec edition (the
"Spec edition: **X.Y.Z**" line of `spec/README.md`, when there is one).

A directory may be a repository root (holding `schemas/` and `spec/`) or a schemas directory itself
(holding `request.json`; the spec is then looked for beside it). A git ref is read with
`git archive REF -- schemas spec/README.md` into a temporary directory: the work tree, the index and
HEAD are never touched, so `diff main HEAD` is safe in a dirty checkout.

This is the only module of the diff that reads files or runs processes. Every failure to read a side
is a `SourceError` (the verb turns it into exit status 2).
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from stui_protocol_kit.protocol.schemas import SchemaRegistry

EDITION_RE = re.compile(r"Spec edition:\s*\*\*(\d+)\.(\d+)\.(\d+)\*\*")
GIT_TIMEOUT_S = 60


class SourceError(Exception):
    """A side cannot be read (no such directory or ref, no schemas, broken JSON): exit status 2."""


@dataclass
class Side:
    label: str  # as given on the command line
    description: str  # what was read, e.g. "git ref main (1a2b3c4d) of /repo" or "directory /x/schemas"
    registry: SchemaRegistry
    protocol_version: str
    edition: tuple[int, int, int] | None
    _tmp: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    @property
    def edition_text(self) -> str:
        return ".".join(map(str, self.edition)) if self.edition else "unknown"

    @property
    def protocol_tuple(self) -> tuple[int, int]:
        major, _, minor = self.protocol_version.partition(".")
        try:
            return int(major), int(minor or 0)
        except ValueError:
            return (0, 0)

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def read_edition(spec_readme: Path) -> tuple[int, int, int] | None:
    if not spec_readme.is_file():
        return None
    match = EDITION_RE.search(spec_readme.read_text(encoding="utf-8"))
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def load_directory(path: Path, *, label: str, description: str, schemas_dir: str = "schemas",
                   spec_dir: str = "spec") -> Side:
    """A side from a repository root or a schemas directory."""
    if not path.is_dir():
        raise SourceError(f"{label}: not a directory")
    if (path / schemas_dir / "request.json").is_file():
        schemas, spec_readme = path / schemas_dir, path / spec_dir / "README.md"
    elif (path / "request.json").is_file():
        schemas, spec_readme = path, path.parent / spec_dir / "README.md"
    else:
        raise SourceError(f"{label}: neither a schemas directory (with request.json) nor a directory holding "
                          f"{schemas_dir}/request.json")
    try:
        registry = SchemaRegistry(schemas)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SourceError(f"{label}: cannot load the schemas in {schemas}: {type(exc).__name__}: {exc}") from None
    version = protocol_version(registry)
    if version is None:
        raise SourceError(f"{label}: request.json's `version` member is not a string constant")
    return Side(label, description, registry, version, read_edition(spec_readme))


def protocol_version(registry: SchemaRegistry, document: str = "request.json", *path: str) -> str | None:
    """The constant a document's `version` member holds (request.json's by default; `path` leads to
    another object, e.g. response.json's `$defs`, `Success`), following `$ref`s: older schema sets write
    it inline, newer ones in common.json `$defs/Version`. None when there is no string constant."""
    try:
        base = registry.uri(document)
        node = registry.document(document)
        for key in path:
            node = node[key]
        node = node["properties"]["version"]
        for _ in range(8):  # a short chain of references at most
            if not isinstance(node, dict) or "$ref" not in node:
                break
            base, _, node = registry.resolve(node["$ref"], base)
    except (KeyError, TypeError):
        return None
    value = node.get("const") if isinstance(node, dict) else None
    return value if isinstance(value, str) else None


def _git(repo: Path, *args: str, binary: bool = False) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, timeout=GIT_TIMEOUT_S,
                              text=not binary, check=False)
    except FileNotFoundError:
        raise SourceError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise SourceError(f"git {' '.join(args)} took longer than {GIT_TIMEOUT_S} s") from None


def resolve_ref(repo: Path, ref: str) -> tuple[Path, str]:
    """(the repository's top level, the commit `ref` names); SourceError when either is not there."""
    if ref.startswith("-"):
        raise SourceError(f"{ref}: a git ref cannot start with '-'")
    top = _git(repo, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise SourceError(f"{ref}: not a directory, and {repo} is not a git repository (use --repo)")
    # Paths given to git are relative to the directory it runs in: always run at the top level.
    repo = Path(top.stdout.strip())
    found = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if found.returncode != 0:
        raise SourceError(f"{ref}: neither a directory nor a git ref of {repo}")
    return repo, found.stdout.strip()


def read_files_at(repo: Path, ref: str, directory: str, suffix: str) -> dict[str, str]:
    """The text of every file `directory/*suffix` (not below it) at `ref`, by file name; read from git's
    objects, never from the work tree."""
    top, commit = resolve_ref(repo, ref)
    listed = _git(top, "ls-tree", "--name-only", commit, "--", f"{directory}/")
    if listed.returncode != 0:
        raise SourceError(f"{ref}: cannot list {directory}/: {listed.stderr.strip()}")
    out: dict[str, str] = {}
    for path in listed.stdout.split("\n"):
        if path.endswith(suffix) and "/" not in path[len(directory) + 1:]:
            shown = _git(top, "show", f"{commit}:{path}")
            if shown.returncode != 0:
                raise SourceError(f"{ref}: cannot read {path}: {shown.stderr.strip()}")
            out[path.rsplit("/", 1)[-1]] = shown.stdout
    return out


def load_git_ref(repo: Path, ref: str, *, schemas_dir: str = "schemas", spec_dir: str = "spec") -> Side:
    """A side from `ref` of the repository at `repo`, read with git archive (the work tree is not touched)."""
    repo, commit = resolve_ref(repo, ref)
    listed = _git(repo, "ls-tree", "--name-only", commit, "--", f"{schemas_dir}/request.json", f"{spec_dir}/README.md")
    names = set(listed.stdout.split())
    if f"{schemas_dir}/request.json" not in names:
        raise SourceError(f"{ref} ({commit[:10]}): has no {schemas_dir}/request.json")
    paths = [schemas_dir] + ([f"{spec_dir}/README.md"] if f"{spec_dir}/README.md" in names else [])
    archive = _git(repo, "archive", "--format=tar", commit, "--", *paths, binary=True)
    if archive.returncode != 0:
        raise SourceError(f"{ref}: git archive failed: {archive.stderr.decode(errors='replace').strip()}")
    tmp = tempfile.TemporaryDirectory(prefix="stui-diff-")
    try:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: refuse links and paths leaving tmp
                tar.extractall(tmp.name, filter="data")
            else:  # git archive writes only the tree's own paths
                tar.extractall(tmp.name)  # noqa: S202
        side = load_directory(Path(tmp.name), label=ref, description=f"git ref {ref} ({commit[:10]})",
                              schemas_dir=schemas_dir, spec_dir=spec_dir)
    except BaseException:
        tmp.cleanup()
        raise
    side._tmp = tmp
    return side


def load_side(text: str, *, repo: Path, schemas_dir: str = "schemas", spec_dir: str = "spec") -> Side:
    """An existing directory is read as one; anything else is a git ref of `repo`."""
    path = Path(text)
    if path.is_dir():
        return load_directory(path, label=text, description=f"directory {path.resolve()}",
                              schemas_dir=schemas_dir, spec_dir=spec_dir)
    if shutil.which("git") is None:
        raise SourceError(f"{text}: not a directory (and git is not installed to read it as a ref)")
    return load_git_ref(repo, text, schemas_dir=schemas_dir, spec_dir=spec_dir)
