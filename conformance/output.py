"""Terminal output for the conformance CLI: rich on a terminal, plain text when piped, JSON Lines on request.

One decision lives here and nowhere else: whether a stream gets colour. It does when the stream is a
terminal, the user did not pass `--no-color` and the `NO_COLOR` environment variable is unset or empty
(https://no-color.org). Everything a verb prints goes through `Output`, so `validate`, `run` and `replay`
behave alike and a piped run is always grep-able plain text with the same words as the coloured one.

This module must never decide what is valid or how a verb's results are worded beyond a style name;
it only renders lines it is given.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Literal, TextIO

Style = Literal["ok", "fail", "warn", "detail", "dim", "heading"]

# Rich styles per semantic style; plain output ignores them, so wording must carry the meaning alone.
_RICH_STYLES: dict[str, str] = {
    "ok": "bold green",
    "fail": "bold red",
    "warn": "yellow",
    "detail": "",
    "dim": "dim",
    "heading": "bold",
}


def wants_color(stream: TextIO, no_color: bool = False) -> bool:
    """True when `stream` should get rich (coloured) output."""
    if no_color or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Output:
    """Writes lines made of (text, style) segments to one stream, coloured or plain."""

    def __init__(self, stream: TextIO | None = None, *, no_color: bool = False, color: bool | None = None):
        self.stream = stream if stream is not None else sys.stdout
        self.color = wants_color(self.stream, no_color) if color is None else color
        self._console: Any = None
        if self.color:
            from rich.console import Console  # imported only when colouring: plain runs stay light

            # highlight=False: rich would otherwise recolour numbers and paths inside messages at random.
            self._console = Console(file=self.stream, highlight=False, soft_wrap=True)

    @property
    def console(self) -> Any:
        """The rich Console when colouring, else None (for tables and progress bars)."""
        return self._console

    def line(self, *segments: str | tuple[str, Style | None], indent: int = 0) -> None:
        """One output line; each segment is a plain string or (text, style)."""
        parts = [(s, None) if isinstance(s, str) else s for s in segments]
        if self._console is None:
            self.stream.write(" " * indent + "".join(text for text, _ in parts) + "\n")
            return
        from rich.text import Text

        text = Text(" " * indent)
        for chunk, style in parts:
            # Text.append never parses markup, so "[type]" in a message is printed as written.
            text.append(chunk, style=_RICH_STYLES.get(style or "", "") or None)
        self._console.print(text)

    def json(self, record: dict[str, Any]) -> None:
        """One JSON Lines record (machine output is never coloured)."""
        self.stream.write(json.dumps(record, ensure_ascii=False, sort_keys=False) + "\n")

    def flush(self) -> None:
        self.stream.flush()
