"""The reference server with one module replaced by a mutated copy of its source (bench/mutation_score.py).

Run: python bench/mutant_server.py --mutant-module MODULE --mutant-source FILE [reference server arguments]

An import hook serves MODULE (e.g. stui_protocol_kit.reference_server.engine) from FILE instead of the
installed source, in this process only; everything else is the installed reference server. The suite
starts this script like any embedded server, so a mutant is judged exactly as a real implementation is.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.util
import sys
from pathlib import Path
from typing import Any


class _MutantFinder(importlib.abc.MetaPathFinder):
    def __init__(self, module: str, source: Path) -> None:
        self.module, self.source = module, source

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.module:
            return None
        return importlib.util.spec_from_file_location(fullname, self.source)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--mutant-module", required=True)
    parser.add_argument("--mutant-source", required=True, type=Path)
    args, rest = parser.parse_known_args(argv)
    sys.meta_path.insert(0, _MutantFinder(args.mutant_module, args.mutant_source))
    from stui_protocol_kit.reference_server import cli

    return cli.main(rest)


if __name__ == "__main__":
    sys.exit(main())
