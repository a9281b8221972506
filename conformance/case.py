"""The conformance case model and the case registry: what a case is, how it reports, where it lives.

Theory of operation:
1. A case is data plus one function: an ID, a title, what it sends, the requirement IDs it checks, a
   level, tags, what it needs from the target, what it waits for, and `run(ctx)`. `run` returns
   (PASSED) or raises `CaseFailed` (typed problems, each naming a requirement), `CaseSkipped`,
   `CaseUnsupported` or `SuiteError`; a `ReplyTimeout` from the client becomes TIMEOUT; anything else
   - a stray `assert`, a bug - is the suite's ERROR, never a verdict on the target.
2. A case may cite only the requirements it declares, plus the few every reply and every setup step
   is held to (`AUTOMATIC_REQUIREMENTS`). Registration checks the requirement IDs written in a case's
   code; the runner checks every problem a case raises (an undeclared one is the suite's ERROR).
3. The outcome follows the level of what was broken: a problem citing a MUST requirement is FAILED,
   problems citing only SHOULD (or MAY) requirements are NON-STRICT, whatever the case's own level.
4. Every reply a case receives through its context is checked before the case sees it (see
   `conformance/context.py`), so a case only states what it expects beyond that.
5. Cases register themselves at import time into `REGISTRY` with the `@case(...)` decorator. The
   runner imports every module of the packages in `CASE_PACKAGES` (one module per spec section in
   `conformance/cases/`, named as its group), then selects; runs follow `GROUPS` (spec order).

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

from stui_protocol_kit.protocol import reply_checks
from stui_protocol_kit.protocol.facts import Capability
from stui_protocol_kit.protocol.problems import Problem, show
from stui_protocol_kit.protocol.requirements import success_requirement
from stui_protocol_kit.protocol.schemas import registry
from stui_protocol_kit.protocol.validation import response_requirements

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
CAPABILITY_NEEDS = frozenset(Capability)
NEED_RESTART = "restart"  # the run must be able to restart the target (embedded, or --restart-command)
NEED_EXPIRY = "expiry"  # the target's idle/absolute timeouts must fit the run's expiry budget
NEED_CORRUPT = "corrupt"  # the run must be able to damage a stored revision (--corrupt-newest-revision-command)
CORRUPT_REASON = ("needs a way to damage the target's newest stored revision: pass --corrupt-newest-revision-command"
                  " CMD (the suite appends the session id; the embedded server provides it) with --restart-command")
NEED_EXCLUSIVE = "exclusive"  # must not overlap any other case (e.g. it restarts the target)

CASE_PACKAGES: tuple[str, ...] = ("stui_protocol_kit.conformance.cases",)

# What any case may cite without declaring it: the reply checks every reply gets (the context runs
# them: the schemas' own requirement annotations included), TRN-3 for a reply that never came, and each
# command's success requirement (RES-1, SNP-1...), which a step that sets a case up is held to.
AUTOMATIC_REQUIREMENTS: frozenset[str] = frozenset({
    *reply_checks.REPLY_CHECK_REQUIREMENTS, *response_requirements(), "TRN-3",
    *(success_requirement(command) for command in registry().commands),
})

_ID_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z0-9][a-z0-9._-]*$")
_REQ_RE = re.compile(r"^[A-Z]{2,4}-\d+$")


class Outcome(StrEnum):
    """What became of one case. Only FAILED and TIMEOUT (and NON-STRICT under --strict) are verdicts
    against the target; ERROR is the suite's own trouble and never counts against a requirement."""

    PASSED = "PASSED"
    FAILED = "FAILED"  # the target broke a MUST requirement
    NON_STRICT = "NON-STRICT"  # the target broke only SHOULD requirements (Autobahn's word); --strict fails it
    TIMEOUT = "TIMEOUT"  # a request got no reply within --timeout (TRN-3)
    ERROR = "ERROR"  # the suite or its harness failed: a case's own exception, its budget, a restart command
    UNSUPPORTED = "UNSUPPORTED"  # the target does not announce a capability the case needs
    SKIPPED = "SKIPPED"  # the run cannot provide what the case needs (restart command, expiry budget, limits)


class CaseFailed(Exception):
    """The target did something the spec does not allow: one or more typed `Problem`s.

    Not an AssertionError on purpose: a stray `assert` in case code is a bug of the suite (ERROR), never
    a verdict on the target. Build it from one problem's parts - `CaseFailed(expected, actual,
    requirement, message=..., path=...)` - or from a list with `CaseFailed.of(problems)`. Every problem
    names its requirement."""

    def __init__(self, expected: Any, actual: Any, requirement: str, message: str = "",
                 violations: Iterable[Mapping[str, Any]] = (), *, path: str = "$", subject: str = "reply",
                 rule: str = "") -> None:
        if not isinstance(requirement, str) or not _REQ_RE.match(requirement):
            raise TypeError(f"CaseFailed needs a requirement ID, got {requirement!r}")
        text = message or f"expected {show(expected)}, got {show(actual)}"
        self.problems: list[Problem] = [Problem(requirement, text, path, expected, actual, rule, subject)]
        self.violations = [dict(v) for v in violations]
        super().__init__(text)

    @classmethod
    def of(cls, problems: Iterable[Problem], violations: Iterable[Mapping[str, Any]] = ()) -> CaseFailed:
        problems = list(problems)
        if not problems:
            raise ValueError("CaseFailed.of needs at least one problem")
        first = problems[0]
        made = cls(first.expected, first.actual, first.requirement, first.message, violations, path=first.path,
                   subject=first.subject, rule=first.rule)
        made.problems = problems
        return made

    @property
    def problem(self) -> Problem:
        """The first problem: the one the report headlines."""
        return self.problems[0]

    # Read-only views of the first problem, for callers that show one line.
    @property
    def requirement(self) -> str:
        return self.problem.requirement

    @property
    def expected(self) -> Any:
        return self.problem.expected

    @property
    def actual(self) -> Any:
        return self.problem.actual

    @property
    def message(self) -> str:
        return self.problem.message


class CaseSkipped(Exception):
    """The run cannot perform this case (reason says why, and which flag or setting would let it run);
    not a verdict on the target."""


class CaseUnsupported(Exception):
    """The target does not announce the feature this case checks."""


class SuiteError(Exception):
    """The suite or its harness could not do its job (a restart command failed, a case ran past its
    budget although the target answered): the ERROR outcome, never a verdict on the target."""


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
    # Upper bound for the case's own work, checked before each request it sends (ERROR past it); scaled
    # up for a longer --timeout and, for generated cases, a bigger --examples (context.effective_budget).
    budget_s: float = 30.0
    # The limits the case waits out on the target's clock, and how many times each: the budget grows by
    # them as the target announces them, so a slow but correct setting never overruns the budget.
    waits: Mapping[str, float] = field(default_factory=dict)

    @property
    def group(self) -> str:
        return self.id.split(".", 1)[0]

    def matches(self, pattern: str) -> bool:
        """True when the shell glob `pattern` matches the ID, a tag, the group or a requirement ID."""
        names = (self.id, self.group, *self.tags, *self.requirements)
        return any(fnmatchcase(name, pattern) for name in names)


@dataclass
class CaseResult:
    """What happened when a case ran: its outcome, the typed problems found (FAILED, NON-STRICT, TIMEOUT),
    why it did not run or could not finish (SKIPPED, UNSUPPORTED, ERROR), and the exchanged messages
    (`transcript`, tokens redacted). `sequence` is the JSON Lines of a shrunk stateful failure."""

    case: Case
    outcome: Outcome
    duration_s: float = 0.0
    problems: list[Problem] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    transcript: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sequence: str | None = None
    detail: str = ""  # ERROR: the suite's traceback, for whoever fixes the suite

    @property
    def problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def blocking(self, strict: bool = False) -> bool:
        """True when this result fails the run: a MUST requirement broken (FAILED), no reply (TIMEOUT),
        and, with --strict, a SHOULD requirement broken (NON-STRICT)."""
        return self.outcome in (Outcome.FAILED, Outcome.TIMEOUT) or (strict and self.outcome is Outcome.NON_STRICT)

    def broken(self) -> set[str]:
        """The requirements this case found broken (none when the suite erred: its problems then tell the
        suite's authors what went wrong, not what the target did)."""
        if self.outcome not in (Outcome.FAILED, Outcome.NON_STRICT, Outcome.TIMEOUT):
            return set()
        return {p.requirement for p in self.problems}


class CaseRegistry:
    """Every known case by ID, in registration order (which is spec order within a module)."""

    def __init__(self) -> None:
        self._cases: dict[str, Case] = {}

    def add(self, item: Case) -> Case:
        if not _ID_RE.match(item.id):
            raise ValueError(f"case ID {item.id!r} is not <group>.<slug> in lower case")
        if item.id in self._cases:
            raise ValueError(f"case {item.id} registered twice")
        if item.group not in GROUPS:
            raise ValueError(f"case {item.id}: group {item.group!r} is not one of GROUPS (spec order)")
        if not item.requirements:
            raise ValueError(f"case {item.id} cites no requirement")
        for req in item.requirements:
            if not _REQ_RE.match(req):
                raise ValueError(f"case {item.id}: {req!r} is not a requirement ID")
        undeclared = sorted(cited_in_code(item.run) - set(item.requirements) - AUTOMATIC_REQUIREMENTS)
        if undeclared:
            raise ValueError(f"case {item.id} cites {', '.join(undeclared)} in its code but does not declare it"
                             " (add it to requirements=[...] or cite a declared one)")
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
        """Cases matching any `include` glob (all when none given) and no `exclude` glob, in spec order
        (the order of GROUPS; within a group, the order of registration)."""
        include, exclude = list(include), list(exclude)
        chosen = []
        for item in self._cases.values():
            if include and not any(item.matches(p) for p in include):
                continue
            if any(item.matches(p) for p in exclude):
                continue
            chosen.append(item)
        rank = {group: i for i, group in enumerate(GROUPS)}
        return sorted(chosen, key=lambda c: rank.get(c.group, len(rank)))  # stable: keeps module order


def cited_in_code(run: Callable[..., Any]) -> set[str]:
    """The requirement IDs written literally in a function's code, nested functions included."""
    found: set[str] = set()
    pending = [getattr(run, "__code__", None)]
    while pending:
        code = pending.pop()
        if code is None:
            continue
        for const in code.co_consts:
            if isinstance(const, str) and _REQ_RE.match(const):
                found.add(const)
            elif hasattr(const, "co_consts"):
                pending.append(const)
            elif isinstance(const, tuple):
                found.update(c for c in const if isinstance(c, str) and _REQ_RE.match(c))
    return found


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
    waits: Mapping[str, float] | None = None,
    registry: CaseRegistry | None = None,
) -> Callable[[RunFunction], RunFunction]:
    """Decorator: register `run` as a case. The function is returned unchanged (tests may call it)."""

    def register(run: RunFunction) -> RunFunction:
        group = id.split(".", 1)[0]
        (registry if registry is not None else REGISTRY).add(Case(
            id=id, title=title, sends=sends, requirements=tuple(requirements), run=run, level=level,
            tags=frozenset({group, *tags}), allows=tuple(allows), needs=frozenset(needs), budget_s=budget_s,
            waits=dict(waits or {}),
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
