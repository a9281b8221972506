"""The checks of `stui-conformance lint`: is the protocol's source (schemas/, spec/) consistent with itself?

Each check takes a `LintRoot` (a directory holding `schemas/` and `spec/`: this repository, an installed
kit, or a copy under test) and returns `Finding`s, each with the file and line it is about:

- `schemas`        every source schema parses, is valid against its meta-schema, declares the 2020-12
                   dialect and its own `$id`, uses no keyword of spec 14.2's "not used" list, compiles
                   its patterns and resolves every `$ref` inside schemas/;
- `commands`       every command file has `$defs/Parameters`, `$defs/Result` and a well-formed
                   `x-stui-command` whose capability is one hello.json's `x-stui-capabilities` defines, and
                   spec/04-commands.md has a section heading per command (and none for a command that does
                   not exist);
- `errors`         every variant of the registry (error.json's `oneOf`) has its own constant `code`, every
                   code is documented in spec/12-errors.md's registry table and every documented code
                   exists, and every error a command may answer (`x-stui-command.errors`) is in the registry;
- `vectors`        every vector in spec/examples reaches its expected verdict (the same check as
                   `stui-conformance validate --vectors`, imported from it, run against this root's schemas);
- `traceability`   every MUST requirement has a conformance case (a client requirement: a client-check
                   check or scenario) and every cited ID exists
                   (`conformance.traceability`, shared with the test suite);
- `requirement-ids` requirement IDs are unique (a retired ID included), numbered without gaps per prefix (an
                   ID that disappeared instead of being listed as retired could be reused), use a prefix
                   the spec README lists, and carry an RFC 2119 keyword;
- `bundles`        schemas/bundle/ is what `python -m stui_protocol_kit.protocol.bundle` would write;
- `versions`       request.json and response.json carry the same protocol version, and the spec
                   edition's MAJOR.MINOR is that version (spec README "Versioning");
- `requirement-history` (only with a git ref to compare with, `lint --since REF`) no requirement ID of the
                   spec at REF disappeared instead of being retired, and no retired ID is used again.

This module must never fix anything; it only reports.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from stui_protocol_kit.protocol.schemas import BASE_URI, DIALECT, FORBIDDEN_KEYWORDS, SchemaRegistry, iter_keywords

CHECKS = ("schemas", "commands", "errors", "vectors", "traceability", "requirement-ids", "bundles", "versions")


@dataclass(frozen=True)
class Finding:
    check: str
    where: str  # "schemas/commands/hello.json" or "spec/04-commands.md:35"
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check, "where": self.where, "message": self.message}


class LintRoot:
    """The directory being linted, with what several checks share (loaded once, failures remembered)."""

    def __init__(self, root: Path, since: str | None = None, repo: Path | None = None):
        self.root = root
        self.since = since  # a git ref to compare requirement IDs with (requirement-history)
        self.repo = repo
        self.schemas = root / "schemas"
        self.spec = root / "spec"
        self._registry: SchemaRegistry | None = None
        self._registry_error: str | None = None

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def source_files(self) -> list[Path]:
        return sorted(p for p in self.schemas.rglob("*.json") if "bundle" not in p.relative_to(self.schemas).parts)

    @property
    def registry(self) -> SchemaRegistry | None:
        if self._registry is None and self._registry_error is None:
            try:
                self._registry = SchemaRegistry(self.schemas)
            except Exception as exc:  # any broken input: reported by the schemas check, blocks the others
                self._registry_error = f"{type(exc).__name__}: {exc}"
        return self._registry

    def registry_or_finding(self, check: str) -> tuple[SchemaRegistry | None, list[Finding]]:
        registry = self.registry
        if registry is None:
            return None, [Finding(check, "schemas/", f"not checked: the schemas do not load ({self._registry_error})")]
        return registry, []


def _line_of(text: str, needle: str) -> int:
    index = text.find(needle)
    return text.count("\n", 0, index) + 1 if index >= 0 else 1


# -- schemas ----------------------------------------------------------------------------------------------


def check_schemas(root: LintRoot) -> list[Finding]:
    from stui_protocol_kit.protocol.validation import ecma_regex

    found: list[Finding] = []
    for path in root.source_files():
        where = root.rel(path)
        rel = path.relative_to(root.schemas).as_posix()
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            line = getattr(exc, "lineno", None)
            found.append(Finding("schemas", f"{where}:{line}" if line else where, f"not JSON: {exc}"))
            continue
        if not isinstance(doc, dict):
            found.append(Finding("schemas", where, "a schema file must hold a JSON object"))
            continue
        try:
            jsonschema.validators.validator_for(doc, default=jsonschema.Draft202012Validator).check_schema(doc)
        except jsonschema.SchemaError as exc:
            pointer = "/" + "/".join(str(p) for p in exc.absolute_path)
            found.append(Finding("schemas", where, f"invalid against its meta-schema at {pointer}: {exc.message}"))
        if doc.get("$schema") != DIALECT:
            found.append(Finding("schemas", where, f"$schema must be {DIALECT} (spec 14.2)"))
        if doc.get("$id") != BASE_URI + rel:
            found.append(Finding("schemas", where, f"$id must be {BASE_URI + rel}"))
        forbidden = sorted(set(iter_keywords(doc)) & FORBIDDEN_KEYWORDS)
        if forbidden:
            found.append(Finding("schemas", where, f"uses {', '.join(forbidden)}, which spec 14.2 rules out"))
        for pattern in _values_of(doc, "pattern"):
            try:
                ecma_regex(pattern)
            except re.error as exc:
                found.append(Finding("schemas", where, f"pattern {pattern!r} does not compile: {exc}"))
    registry = root.registry
    if registry is None:
        found.append(Finding("schemas", "schemas/", f"the registry does not load: {root._registry_error}"))
        return found
    for uri, doc in registry.documents.items():
        for ref in _values_of(doc, "$ref"):
            try:
                registry.resolve(ref, uri)
            except KeyError as exc:
                found.append(Finding("schemas", f"schemas/{registry.paths[uri]}", f"$ref {ref!r} does not resolve: "
                                     f"{exc.args[0] if exc.args else exc}"))
    return found


def _values_of(node: Any, key: str) -> list[Any]:
    out: list[Any] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key and isinstance(v, str):
                out.append(v)
            elif k not in ("const", "enum", "examples", "default"):
                out.extend(_values_of(v, key))
    elif isinstance(node, list):
        for item in node:
            out.extend(_values_of(item, key))
    return out


# -- commands ------------------------------------------------------------------------------------------------

_HEADING = re.compile(r"^#{2,4}\s+(?:[\d.]+\s+)?`?([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*)`?\s*$")


def check_commands(root: LintRoot) -> list[Finding]:
    found: list[Finding] = []
    names: list[str] = []
    for path in sorted((root.schemas / "commands").glob("*.json")):
        where = root.rel(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # reported by the schemas check
        name = doc.get("title")
        if name != path.stem:
            found.append(Finding("commands", where, f"title {name!r} must be the command name {path.stem!r}"))
        names.append(path.stem)
        defs = doc.get("$defs") or {}
        for part in ("Parameters", "Result"):
            if not isinstance(defs.get(part), dict):
                found.append(Finding("commands", where, f"no $defs/{part} schema"))
        meta = doc.get("x-stui-command")
        if not isinstance(meta, dict):
            found.append(Finding("commands", where, "no x-stui-command member"))
            continue
        if not isinstance(meta.get("session_scoped"), bool):
            found.append(Finding("commands", where, "x-stui-command.session_scoped must be true or false"))
        if meta.get("capability") is not None and not isinstance(meta.get("capability"), str):
            found.append(Finding("commands", where, "x-stui-command.capability must be a string or null"))
        if not isinstance(meta.get("errors"), list) or not all(isinstance(e, str) for e in meta.get("errors", [])):
            found.append(Finding("commands", where, "x-stui-command.errors must be a list of error codes"))
    declared = _declared_capabilities(root)
    registry = root.registry
    if declared is not None and registry is not None:
        for name, info in registry.commands.items():
            if info.capability is not None and info.capability not in declared:
                found.append(Finding("commands", f"schemas/commands/{name}.json", f"capability {info.capability!r} "
                                     "is not among the names hello.json's x-stui-capabilities defines"))
    spec = root.spec / "04-commands.md"
    if not spec.is_file():
        return found + [Finding("commands", root.rel(spec), "missing: every command needs a section there")]
    headings: dict[str, int] = {}
    for number, line in enumerate(spec.read_text(encoding="utf-8").splitlines(), start=1):
        match = _HEADING.match(line)
        if match and match.group(1) not in headings:
            headings[match.group(1)] = number
    for name in names:
        if name not in headings:
            found.append(Finding("commands", root.rel(spec), f"no section heading for command {name!r} "
                                 f"(e.g. '## 4.N {name}')"))
    for name, number in headings.items():  # a heading that is one lower-case dotted word names a command
        if name not in names:
            found.append(Finding("commands", f"{root.rel(spec)}:{number}",
                                 f"section for {name!r}, which has no schema in schemas/commands/"))
    return found


def _declared_capabilities(root: LintRoot) -> set[str] | None:
    from stui_protocol_kit.conformance.schema_diff.registry_changes import declared_capabilities

    registry = root.registry
    return declared_capabilities(registry) if registry is not None else None


# -- errors ------------------------------------------------------------------------------------------------------

_REGISTRY_ROW = re.compile(r"^\|\s*`([A-Z][A-Za-z]+)`\s*\|")


def check_errors(root: LintRoot) -> list[Finding]:
    registry, found = root.registry_or_finding("errors")
    if registry is None:
        return found
    error_path = f"schemas/{registry.paths[registry.uri('error.json')]}"
    codes = list(registry.error_codes)
    variants: list[str] = []
    for variant in registry.document("error.json").get("oneOf", []):
        code = ((variant.get("properties") or {}).get("code") or {}).get("const")
        if not isinstance(code, str):
            found.append(Finding("errors", error_path, f"variant {variant.get('title')!r} has no constant code"))
        else:
            variants.append(code)
    for code in sorted({c for c in variants if variants.count(c) > 1}):
        found.append(Finding("errors", error_path, f"{code} has more than one variant"))
    spec = root.spec / "12-errors.md"
    documented: dict[str, int] = {}
    if spec.is_file():
        for number, line in enumerate(spec.read_text(encoding="utf-8").splitlines(), start=1):
            match = _REGISTRY_ROW.match(line)
            if match:
                documented.setdefault(match.group(1), number)
    for code in codes:
        if code not in documented:
            found.append(Finding("errors", root.rel(spec), f"error code {code} is not documented in the registry "
                                 "table (a row '| `Code` | step | when | details |')"))
    for code, number in documented.items():
        if code not in codes:
            found.append(Finding("errors", f"{root.rel(spec)}:{number}", f"documents {code}, which error.json "
                                 "does not define"))
    for name, info in registry.commands.items():
        for code in info.errors:
            if code not in codes:
                path = root.schemas / "commands" / f"{name}.json"
                text = path.read_text(encoding="utf-8") if path.is_file() else ""
                found.append(Finding("errors", f"{root.rel(path)}:{_line_of(text, json.dumps(code))}",
                                     f"x-stui-command.errors names {code}, which is not in the registry"))
    return found


# -- vectors ------------------------------------------------------------------------------------------------------


def check_vectors(root: LintRoot) -> list[Finding]:
    # The same check `validate --vectors` runs, imported rather than restated.
    from stui_protocol_kit.conformance.vectors import vector_mismatches
    from stui_protocol_kit.protocol.validation import MessageValidator

    registry, found = root.registry_or_finding("vectors")
    if registry is None:
        return found
    try:
        checker = MessageValidator(registry)
    except Exception as exc:  # a schema jsonschema-rs cannot compile: reported here, not raised
        return [Finding("vectors", "schemas/", f"not checked: the validators do not compile ({exc})")]
    examples = root.spec / "examples"
    files = sorted(examples.rglob("*.json"))
    if not files:
        return [Finding("vectors", root.rel(examples), "no vectors found")]
    for path in files:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            found.append(Finding("vectors", root.rel(path), f"not a JSON vector file: {exc}"))
            continue
        for mismatch in vector_mismatches(doc, checker):  # checks the vector format first
            found.append(Finding("vectors", root.rel(path), mismatch))
    return found


# -- requirements -------------------------------------------------------------------------------------------------

_BULLET = re.compile(r"^\s*[-*]\s+\*\*\[(?P<id>[A-Z]{2,4})-(?P<n>\d+)\]\*\*\s*(?P<text>.*)$")


@dataclass(frozen=True)
class _Bullet:
    prefix: str
    number: int
    retired: bool
    where: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.prefix}-{self.number}"


def _bullets(root: LintRoot) -> list[_Bullet]:
    out = []
    for path in sorted(root.spec.glob("*.md")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            match = _BULLET.match(line)
            if match:
                out.append(_Bullet(match["id"], int(match["n"]), match["text"].lstrip().startswith("(retired"),
                                   f"{root.rel(path)}:{number}", match["text"]))
    return out


def _prefixes(root: LintRoot) -> set[str] | None:
    readme = root.spec / "README.md"
    if not readme.is_file():
        return None
    text = " ".join(readme.read_text(encoding="utf-8").split())
    match = re.search(r"`PREFIX` is one of ([A-Z, ]+);", text)
    return {p.strip() for p in match.group(1).split(",")} if match else None


def check_requirement_ids(root: LintRoot) -> list[Finding]:
    from stui_protocol_kit.protocol.requirements import _KEYWORD_RE

    found: list[Finding] = []
    bullets = _bullets(root)
    by_id: dict[str, _Bullet] = {}
    for bullet in bullets:
        if bullet.id in by_id:
            first = by_id[bullet.id]
            state = "retired" if first.retired or bullet.retired else "defined"
            found.append(Finding("requirement-ids", bullet.where, f"{bullet.id} is {state} twice (first at "
                                 f"{first.where}): an ID is never reused"))
        else:
            by_id[bullet.id] = bullet
        if not bullet.retired and not _KEYWORD_RE.search(bullet.text):
            found.append(Finding("requirement-ids", bullet.where, f"{bullet.id} has no RFC 2119 keyword"))
    prefixes = _prefixes(root)
    numbers: dict[str, set[int]] = {}
    for bullet in bullets:
        numbers.setdefault(bullet.prefix, set()).add(bullet.number)
        if prefixes is not None and bullet.prefix not in prefixes:
            found.append(Finding("requirement-ids", bullet.where, f"prefix {bullet.prefix} is not one the spec "
                                 "README lists"))
    for prefix, used in sorted(numbers.items()):
        for gap in sorted(set(range(1, max(used) + 1)) - used):
            found.append(Finding("requirement-ids", f"spec/ ({prefix})", f"{prefix}-{gap} is missing: a withdrawn "
                                 f"requirement stays listed as '- **[{prefix}-{gap}]** (retired in X.Y.Z)' so its ID "
                                 "is never reused"))
    return found


def check_requirement_history(root: LintRoot) -> list[Finding]:
    """Against the spec at `root.since` (a git ref of `root.repo`): no requirement ID disappears (it stays
    listed as retired) and no retired ID comes back with a new text."""
    from stui_protocol_kit.conformance.schema_diff.sources import SourceError, read_files_at

    if root.since is None:
        return []
    try:
        before = read_files_at(root.repo or root.root, root.since, "spec", ".md")
    except SourceError as exc:
        return [Finding("requirement-history", "spec/", f"not checked: {exc}")]
    then: dict[str, bool] = {}  # ID -> retired at `since`
    for text in (before[name] for name in sorted(before)):
        for line in text.splitlines():
            match = _BULLET.match(line)
            if match:
                then.setdefault(f"{match['id']}-{match['n']}", match["text"].lstrip().startswith("(retired"))
    now = {bullet.id: bullet for bullet in _bullets(root)}
    found: list[Finding] = []
    for req_id, retired in sorted(then.items()):
        bullet = now.get(req_id)
        if bullet is None:
            found.append(Finding("requirement-history", f"spec/ ({req_id})", f"{req_id} existed at {root.since} and "
                                 f"is gone: list it as '- **[{req_id}]** (retired in X.Y.Z)' so it is never reused"))
        elif retired and not bullet.retired:
            found.append(Finding("requirement-history", bullet.where, f"{req_id} was retired at {root.since} and is "
                                 "used again: a retired ID is never reused, give the requirement a new ID"))
    return found


def check_traceability(root: LintRoot) -> list[Finding]:
    from stui_protocol_kit.conformance.case import AUTOMATIC_REQUIREMENTS, load_cases
    from stui_protocol_kit.conformance.client_check import catalog
    from stui_protocol_kit.conformance.traceability import (
        uncovered_musts,
        unknown_check_citations,
        unknown_citations,
    )
    from stui_protocol_kit.protocol.requirements import load

    try:
        index = load(root.spec)
    except ValueError as exc:  # duplicates or a bullet without keyword: the requirement-ids check details it
        return [Finding("traceability", "spec/", f"not checked: the requirements do not parse ({exc})")]
    cases = [*load_cases(), *catalog.cases()]
    found = [Finding("traceability", f"spec/{r.section}:{r.line}", f"MUST requirement {r.id} has no "
                     "conformance case (or client-check check)") for r in uncovered_musts(index, cases)]
    found += [Finding("traceability", f"case {case_id}", f"cites {req}, which the spec does not define")
              for case_id, req in unknown_citations(index, cases)]
    found += [Finding("traceability", "conformance/case.py AUTOMATIC_REQUIREMENTS",
                      f"cites {req}, which the spec does not define")
              for req in unknown_check_citations(index, AUTOMATIC_REQUIREMENTS)]
    return found


# -- bundles, versions ---------------------------------------------------------------------------------------------


def check_bundles(root: LintRoot) -> list[Finding]:
    from stui_protocol_kit.protocol.bundle import expected_files, stale_files

    registry, found = root.registry_or_finding("bundles")
    if registry is None:
        return found
    try:
        expected = expected_files(registry)
    except Exception as exc:  # e.g. a bundle name clash
        return [Finding("bundles", "schemas/", f"the bundles cannot be generated: {type(exc).__name__}: {exc}")]
    return [Finding("bundles", f"schemas/bundle/{problem.split(':')[0]}", problem.split(": ", 1)[1] +
                    " (run `python -m stui_protocol_kit.protocol.bundle`)")
            for problem in stale_files(root.schemas / "bundle", expected)]


def check_versions(root: LintRoot) -> list[Finding]:
    from stui_protocol_kit.conformance.schema_diff.sources import protocol_version, read_edition

    registry, found = root.registry_or_finding("versions")
    if registry is None:
        return found
    version = protocol_version(registry)
    if version is None:
        return [Finding("versions", "schemas/request.json", "`version` is not a string constant")]
    for name in ("Success", "Error"):
        value = protocol_version(registry, "response.json", "$defs", name)
        if value != version:
            found.append(Finding("versions", "schemas/response.json", f"$defs/{name} version {value!r} differs from "
                                 f"request.json's {version!r}"))
    edition = read_edition(root.spec / "README.md")
    if edition is None:
        found.append(Finding("versions", "spec/README.md", "no 'Spec edition: **X.Y.Z**' line"))
    elif f"{edition[0]}.{edition[1]}" != version:
        found.append(Finding("versions", "spec/README.md", f"edition {'.'.join(map(str, edition))}: MAJOR.MINOR must "
                             f"be the protocol version {version} (spec README 'Versioning')"))
    return found


RUNNERS: dict[str, Callable[[LintRoot], list[Finding]]] = {
    "schemas": check_schemas, "commands": check_commands, "errors": check_errors, "vectors": check_vectors,
    "traceability": check_traceability, "requirement-ids": check_requirement_ids, "bundles": check_bundles,
    "versions": check_versions, "requirement-history": check_requirement_history,
}


def lint(root: Path, checks: tuple[str, ...] = CHECKS, *, since: str | None = None,
         repo: Path | None = None) -> dict[str, list[Finding]]:
    """Findings per check, in the order asked (with `since`, requirement-history runs too)."""
    target = LintRoot(root, since, repo)
    if since is not None and "requirement-history" not in checks:
        checks = (*checks, "requirement-history")
    return {name: RUNNERS[name](target) for name in checks}
