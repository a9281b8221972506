"""The conformance case model and the case registry: what a case is, how it reports, where it lives.

Theory of operation:
1. A case is data plus one function: an ID, a title, what it sends, the requirement IDs it checks, a
   level, tags, what it needs from the target, and `run(ctx)`. `run` returns (PASSED) or raises one of
   `CaseFailed`, `CaseSkipped`, `CaseUnsupported`; a `ReplyTimeout` from the client becomes TIMEOUT.
2. Every reply a case receives through its context is schema-checked by the context before the case
   sees it (see `conformance/context.py`), so a case only states what it expects beyond the schema.
3. Cases register themselves at import time into `REGISTRY` with the `@case(...)` decorator. The
   runner imports every module of the packages in `CASE_PACKAGES` (hand-written cases in
   `conformance/cases/`, generated/stateful cases in `conformance/generated/`), then selects.

Case IDs are `<group>.<slug>`, lower-case, e.g. `snapshot.revision-conflict`: the group is the spec
section (one module per section under `conformance/cases/`, named as in `GROUPS`), the slug says what
is checked. IDs are stable: reports, `--select` and the faulty-server tests name cases by ID. Tags are
free-form words (`--select`/`--exclude` match IDs and tags with shell globs); the group is always a tag.

This module must never do I/O or know about a particular target: it only describes cases and results.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the context imports this module; annotations only, no cycle at run time
    from stui_protocol_kit.conformance.context import CaseContext

Level = Literal["MUST", "SHOULD"]

# Groups in spec order; a case's group is the part of its ID before the first dot.
GROUPS: tuple[str, ...] = (
    "transport", "envelope", "versioning", "hello", "create", "resume", "validate", "snapshot", "close",
    "evaluate", "inspect", "lifecycle", "security", "persistence", "expiry", "concurrency", "retries",
    "limits", "errors", "compatibility", "generated", "stateful",
)

# Needs a case may declare. Capability names (as announced by hello) make the case UNSUPPORTED when
# the target does not announce them; the others make it SKIPPED when the run cannot provide them.
CAPABILITY_NEEDS = frozenset({"evaluate", "inspect", "retry.durable"})
NEED_RESTART = "restart"  # the run must be able to restart the target (embedded, or --restart-command)
NEED_EXPIRY = "expiry"  # the target's idle/absolute timeouts must fit the run's expiry budget
NEED_EXCLUSIVE = "exclusive"  # must not overlap any other case (e.g. it restarts the target)

CASE_PACKAGES: tuple[str, ...] = ("stui_protocol_kit.conformance.cases",)

_ID_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z0-9][a-z0-9._-]*$")
_REQ_RE = re.compile(r"^[A-Z]{2,4}-\d+$")


class Outcome(StrEnum):
    PASSED = "PASSED"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"
    UNSUPPORTED = "UNSUPPORTED"  # the target does not announce a capability the case needs
    SKIPPED = "SKIPPED"  # the run cannot provide what the case needs (restart command, expiry budget)


class CaseFailed(AssertionError):
    """The target did something the spec does not allow.

    `expected` and `actual` are short human-readable texts (or JSON values); `requirement` is the ID of
    the requirement broken (one of the case's, or a schema requirement such as ENV-3 found by the
    automatic reply check); `violations` lists schema violations when there are any."""

    def __init__(self, expected: Any, actual: Any, requirement: str | None = None,
                 message: str = "", violations: Iterable[Mapping[str, Any]] = ()) -> None:
        self.expected = expected
        self.actual = actual
        self.requirement = requirement
        self.message = message or f"expected {expected!r}, got {actual!r}"
        self.violations = [dict(v) for v in violations]
        super().__init__(self.message)


class CaseSkipped(Exception):
    """The run cannot perform this case (reason says why); not a verdict on the target."""


class CaseUnsupported(Exception):
    """The target does not announce the feature this case checks."""


RunFunction = Callable[["CaseContext"], None]


@dataclass(frozen=True)
class Case:
    """One conformance case. `sends` describes what goes on the wire; `allows` lists the outcomes the
    spec allows (e.g. `("InvalidRequest/json", "InvalidRequest/nesting_depth")`), for the report."""

    id: str
    title: str
    sends: str
    requirements: tuple[str, ...]
    run: RunFunction
    level: Level = "MUST"
    tags: frozenset[str] = frozenset()
    allows: tuple[str, ...] = ()
    needs: frozenset[str] = frozenset()
    # Upper bound for the whole case, checked before each request it sends (TIMEOUT past it); scaled
    # up for a longer --timeout and, for generated cases, a bigger --examples (context.effective_budget).
    budget_s: float = 30.0

    @property
    def group(self) -> str:
        return self.id.split(".", 1)[0]

    def matches(self, pattern: str) -> bool:
        """True when the shell glob `pattern` matches the ID, a tag, the group or a requirement ID."""
        names = (self.id, self.group, *self.tags, *self.requirements)
        return any(fnmatchcase(name, pattern) for name in names)


@dataclass
class Failure:
    """Why a case failed or timed out: expected vs actual, the requirement and its text."""

    expected: Any
    actual: Any
    requirement: str | None
    requirement_text: str
    message: str
    violations: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CaseResult:
    """What happened when a case ran. `transcript` holds the exchanged messages, tokens redacted."""

    case: Case
    outcome: Outcome
    duration_s: float = 0.0
    failure: Failure | None = None
    reason: str = ""  # for SKIPPED / UNSUPPORTED / TIMEOUT
    transcript: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        """True when this result makes the run fail: a MUST case that did not pass or get excused."""
        return self.case.level == "MUST" and self.outcome in (Outcome.FAILED, Outcome.TIMEOUT)


class CaseRegistry:
    """Every known case by ID, in registration order (which is spec order within a module)."""

    def __init__(self) -> None:
        self._cases: dict[str, Case] = {}

    def add(self, item: Case) -> Case:
        if not _ID_RE.match(item.id):
            raise ValueError(f"case ID {item.id!r} is not <group>.<slug> in lower case")
        if item.id in self._cases:
            raise ValueError(f"case {item.id} registered twice")
        if not item.requirements:
            raise ValueError(f"case {item.id} cites no requirement")
        for req in item.requirements:
            if not _REQ_RE.match(req):
                raise ValueError(f"case {item.id}: {req!r} is not a requirement ID")
        if item.level not in ("MUST", "SHOULD"):
            raise ValueError(f"case {item.id}: level must be MUST or SHOULD")
        self._cases[item.id] = item
        return item

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._cases.values())

    def __len__(self) -> int:
        return len(self._cases)

    def __contains__(self, case_id: object) -> bool:
        return case_id in self._cases

    def get(self, case_id: str) -> Case:
        return self._cases[case_id]

    def select(self, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> list[Case]:
        """Cases matching any `include` glob (all when none given) and no `exclude` glob."""
        include, exclude = list(include), list(exclude)
        chosen = []
        for item in self._cases.values():
            if include and not any(item.matches(p) for p in include):
                continue
            if any(item.matches(p) for p in exclude):
                continue
            chosen.append(item)
        return chosen


REGISTRY = CaseRegistry()


def case(
    id: str,
    title: str,
    *,
    sends: str,
    requirements: Iterable[str],
    level: Level = "MUST",
    tags: Iterable[str] = (),
    allows: Iterable[str] = (),
    needs: Iterable[str] = (),
    budget_s: float = 30.0,
    registry: CaseRegistry | None = None,
) -> Callable[[RunFunction], RunFunction]:
    """Decorator: register `run` as a case. The function is returned unchanged (tests may call it)."""

    def register(run: RunFunction) -> RunFunction:
        group = id.split(".", 1)[0]
        (registry or REGISTRY).add(Case(
            id=id, title=title, sends=sends, requirements=tuple(requirements), run=run, level=level,
            tags=frozenset({group, *tags}), allows=tuple(allows), needs=frozenset(needs), budget_s=budget_s,
        ))
        return run

    return register


_loaded = False


def load_cases() -> CaseRegistry:
    """Import every case module (once) and return the registry. A package in CASE_PACKAGES that does
    not exist yet is ignored; a module that fails to import is an error (a silent gap would pass)."""
    global _loaded
    if not _loaded:
        for package_name in CASE_PACKAGES:
            try:
                package = importlib.import_module(package_name)
            except ModuleNotFoundError as exc:
                if exc.name == package_name:
                    continue
                raise
            for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{package_name}.{info.name}")
        _loaded = True
    return REGISTRY
