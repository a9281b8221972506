"""The run configuration: everything one conformance run is told, defined once.

The CLI (`stui-conformance run`, `replay`), the pytest plugin, the runner and the cases all read this
one object; its defaults are the defaults everywhere (the CLI shows them in `--help` from here). It
holds settings only and must never start, reach or judge anything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from stui_protocol_kit.protocol.curve import ClientCurve

SocketKind = Literal["dealer", "req"]

# The budgets of the cases are written for these; a longer --timeout or a bigger --examples scales them.
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_EXAMPLES = 50
DEFAULT_EXPIRY_BUDGET_S = 10.0


@dataclass(frozen=True)
class RunConfig:
    """One run's settings. `target=None` means: start the embedded server (`server_argv`, default the
    reference server) - a main one with long timeouts and a second with short ones for expiry cases."""

    target: str | None = None
    restart_command: str | None = None
    # A shell command that damages the newest stored revision of the session whose id the suite appends
    # as its last argument (cases of fallback after a restart; SKIPPED without it; embedded: provided).
    corrupt_command: str | None = None
    socket_kind: SocketKind = "dealer"
    timeout_s: float = DEFAULT_TIMEOUT_S
    seed: int = 0
    examples: int = DEFAULT_EXAMPLES
    select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    expiry_budget_s: float = DEFAULT_EXPIRY_BUDGET_S
    # SHOULD failures (NON-STRICT) fail the run too.
    strict: bool = False
    # Replay the generated sequences against an embedded reference server too and compare (differential).
    differential: bool = False
    # Keep the transcripts of passed cases in the JSON report as well ("failed": only of cases that did not pass).
    transcripts: Literal["failed", "all"] = "failed"
    server_argv: tuple[str, ...] | None = None
    server_extra_args: tuple[str, ...] = field(default_factory=tuple)
    # Settings (command-line options without "--") for ONE embedded server that serves every case, instead
    # of the two default ones: checks the suite against the reference server under a given configuration.
    server_settings: Mapping[str, object] | None = None
    # CurveZMQ keys for talking to --target (never written to a report: only the run's sockets use them).
    curve: ClientCurve | None = field(default=None, repr=False)
    # Where hypothesis may write its caches during the run (None: a temporary directory, removed after;
    # conformance/hypothesis_storage.py). The run keeps no example database either way.
    hypothesis_dir: str | None = None

    def __post_init__(self) -> None:
        # Lists are accepted for convenience (tests, the plugin) and kept as tuples: the config is a value.
        for name in ("select", "exclude", "server_extra_args"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.server_argv is not None:
            object.__setattr__(self, "server_argv", tuple(self.server_argv))
        if not self.timeout_s > 0:
            raise ValueError("timeout must be positive")
        if self.examples < 0 or self.expiry_budget_s < 0:
            raise ValueError("examples and expiry budget must not be negative")

    def replace(self, **changes: object) -> RunConfig:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @property
    def embedded(self) -> bool:
        return self.target is None


DEFAULTS = RunConfig()
