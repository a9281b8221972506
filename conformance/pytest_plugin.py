"""A pytest plugin so teams can run the conformance suite inside their own pytest run.

Registered under the `pytest11` entry point, it adds options and a fixture, and does nothing unless
asked: `pytest --stui-conformance [--stui-target ADDR] [--stui-select GLOB]` collects one pytest item
per conformance case (MUST failures fail, SHOULD failures and SKIPPED/UNSUPPORTED are skips).
The `stui_conformance_report` fixture runs the selected cases once per session and returns the
`RunReport`, for teams that prefer to assert on it themselves.

It must never run anything when the options are absent, and never import the suite at module level:
pytest loads this module in every run of every environment where the kit is installed, so it imports
only pytest and defers the runner, the cases and the schemas to the hooks that need them (as
hypothesis does with its plugin); tests/test_import_contracts.py keeps it that way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from stui_protocol_kit.conformance.config import RunConfig
    from stui_protocol_kit.conformance.runner import RunReport

_REPORT_KEY = pytest.StashKey["RunReport"]()


DEFAULT_TIMEOUT_S = 5.0  # conformance/config.py's DEFAULT_TIMEOUT_S; repeated: no suite import at load time


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stui-conformance", "STUI conformance suite (stui-protocol-kit)")
    group.addoption("--stui-conformance", action="store_true",
                    help="collect the STUI conformance cases, one test per case (nothing happens without it)")
    group.addoption("--stui-target", default=None, metavar="ADDR",
                    help="ZeroMQ endpoint of the server under test, tcp://HOST:PORT or ipc://PATH (default: start"
                         " the reference server in a temporary directory)")
    group.addoption("--stui-restart-command", default=None, metavar="CMD",
                    help="shell command that restarts the target (cases that need a restart are skipped without"
                         " it)")
    group.addoption("--stui-select", action="append", default=[], metavar="GLOB",
                    help="run only cases whose ID, group, tag or requirement matches (repeatable)")
    group.addoption("--stui-exclude", action="append", default=[], metavar="GLOB",
                    help="leave out matching cases (repeatable)")
    group.addoption("--stui-timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                    help="per-request timeout in seconds (default %(default)s)")
    group.addoption("--stui-hypothesis-dir", default=None, metavar="DIR",
                    help="where hypothesis keeps its caches during the conformance run (default: a temporary"
                         " directory, removed after; never ./.hypothesis)")
    group.addoption("--stui-curve-secret-key", default=None, metavar="FILE",
                    help="talk CurveZMQ to the target with this secret key file (needs --stui-curve-server-key)")
    group.addoption("--stui-curve-server-key", default=None, metavar="FILE", help="the target's CURVE public key file")


def pytest_configure(config: pytest.Config) -> None:
    """Usage errors before anything runs: a malformed endpoint once, not once per case."""
    if not config.getoption("--stui-conformance", default=False):
        return
    from stui_protocol_kit.protocol.endpoints import EndpointError, check_endpoint

    target = config.getoption("--stui-target")
    if target is not None:
        try:
            check_endpoint(target)
        except EndpointError as exc:
            raise pytest.UsageError(f"--stui-target: {exc}") from None
    if not config.getoption("--stui-timeout") > 0:
        raise pytest.UsageError("--stui-timeout must be positive")


def _config(config: pytest.Config) -> RunConfig:
    from stui_protocol_kit.conformance.config import RunConfig
    from stui_protocol_kit.protocol.curve import CurveKeyError, client_curve_from_args

    try:
        curve = client_curve_from_args(config.getoption("--stui-curve-secret-key"),
                                       config.getoption("--stui-curve-server-key"))
    except CurveKeyError as exc:
        raise pytest.UsageError(str(exc)) from exc
    return RunConfig(target=config.getoption("--stui-target"),
                     restart_command=config.getoption("--stui-restart-command"),
                     select=config.getoption("--stui-select"), exclude=config.getoption("--stui-exclude"),
                     timeout_s=config.getoption("--stui-timeout"), curve=curve,
                     hypothesis_dir=config.getoption("--stui-hypothesis-dir"))


def _report(config: pytest.Config) -> RunReport:
    from stui_protocol_kit.conformance.runner import Runner
    from stui_protocol_kit.conformance.target import TargetUnavailable

    if _REPORT_KEY not in config.stash:
        try:
            config.stash[_REPORT_KEY] = Runner(_config(config)).run()
        except TargetUnavailable as exc:
            # One clear stop, as `stui-conformance run` exits 2: not one failure (and one hello timeout)
            # per case with an internal traceback each.
            pytest.exit(f"stui-conformance: target unavailable: {exc}", returncode=2)
    return config.stash[_REPORT_KEY]


@pytest.fixture(scope="session")
def stui_conformance_report(request: pytest.FixtureRequest) -> RunReport:
    """The run report of the selected cases against the configured target (run once per session)."""
    return _report(request.config)


class ConformanceItem(pytest.Item):
    def __init__(self, *, case_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case_id = case_id
        self.user_properties.append(("case", case_id))

    def runtest(self) -> None:
        from stui_protocol_kit.conformance.case import Outcome

        result = next(r for r in _report(self.config).results if r.case.id == self.case_id)
        for req in result.case.requirements:
            self.user_properties.append(("requirement", req))
        if result.outcome is Outcome.PASSED:
            return
        if result.outcome in (Outcome.SKIPPED, Outcome.UNSUPPORTED):
            pytest.skip(f"{result.outcome.value}: {result.reason}")
        problem = result.problem
        message = f"{problem.requirement} at {problem.path}: {problem.message}" if problem else result.reason
        if result.outcome is Outcome.NON_STRICT:
            pytest.skip(f"NON-STRICT (a SHOULD requirement broken): {message}")
        if result.outcome is Outcome.ERROR:
            raise RuntimeError(f"{self.case_id}: suite error (not a verdict on the target): {message}")
        raise AssertionError(f"{self.case_id} {result.outcome.value}: {message}")

    def reportinfo(self) -> tuple[str, int, str]:
        return "stui-conformance", 0, self.case_id


class ConformanceCollector(pytest.Collector):
    def collect(self) -> list[pytest.Item]:
        from stui_protocol_kit.conformance.hypothesis_storage import hypothesis_storage
        from stui_protocol_kit.conformance.runner import Runner

        run_config = _config(self.config)
        with hypothesis_storage(run_config.hypothesis_dir):  # loading the cases writes hypothesis caches
            runner = Runner(run_config)
        return [ConformanceItem.from_parent(self, name=c.id, case_id=c.id) for c in runner.selected()]


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--stui-conformance", default=False):
        return
    collector = ConformanceCollector.from_parent(session, name="stui-conformance")
    items.extend(collector.collect())
