"""What every command of the kit does alike on its command line: `--version`, and a mistyped flag
answered with the nearest real one.

Both commands (`stui-conformance`, `stui-reference-server`) build their parsers with `Parser`:
abbreviations are off (`--targ` used to mean `--target` silently, and a new option starting the same
way would change what an old script does), and `parse_args` answers an unknown flag with
"did you mean --target?" drawn from the flags of the parser - of the verb, for `stui-conformance run`.
`version_text` says what a user needs to report a problem: the kit's version, the spec edition and the
protocol version it speaks.

This module must never know a verb or an option by name: it reads them from the parsers.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any, NoReturn


def kit_version() -> str:
    try:
        return metadata.version("stui-protocol-kit")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def version_text(prog: str) -> str:
    """`PROG KIT_VERSION (spec edition E, protocol version V)`."""
    from stui_protocol_kit.protocol.facts import PROTOCOL_VERSION
    from stui_protocol_kit.protocol.requirements import spec_edition

    return f"{prog} {kit_version()} (stui-protocol-kit; spec edition {spec_edition()}, protocol version" \
           f" {PROTOCOL_VERSION})"


class _VersionAction(argparse.Action):
    """argparse's own `version` action wraps the line at the terminal width; this prints it whole."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        sys.stdout.write(version_text(parser.prog.split()[0]) + "\n")
        parser.exit(0)


def add_version(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action=_VersionAction,
                        help="print the kit version, spec edition and protocol version, and exit")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser without abbreviations whose unknown flags get a suggestion; its sub-parsers too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("parser_class", Parser)
        return super().add_subparsers(**kwargs)

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            owner = self._chosen_subparser(parsed)
            owner.error_unrecognized(extras)
        return parsed

    def _chosen_subparser(self, parsed: argparse.Namespace) -> Parser:
        """The verb's parser when a verb was given (its flags are the ones a user meant), else this one."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(getattr(parsed, action.dest or "", None) or "")
                if isinstance(chosen, Parser):
                    return chosen._chosen_subparser(parsed)
        return self

    def flags(self) -> list[str]:
        return [flag for action in self._actions for flag in action.option_strings if flag.startswith("--")]

    def error_unrecognized(self, extras: list[str]) -> NoReturn:
        hints = []
        for extra in extras:
            name = extra.split("=", 1)[0]
            if name.startswith("-"):
                near = difflib.get_close_matches(name, self.flags(), n=1, cutoff=0.6)
                if near:
                    hints.append(f"{name}: did you mean {near[0]}?")
        message = f"unrecognized arguments: {' '.join(extras)}"
        self.error(f"{message} ({'; '.join(hints)})" if hints else message)
