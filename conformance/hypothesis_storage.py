"""Where hypothesis may write while the suite runs: never the user's current directory unless asked.

The generated and stateful cases use hypothesis with no example database (a run is reproduced by its
`--seed`), but hypothesis still writes caches (`unicode_data/`, `constants/`) under its home
directory, `./.hypothesis` by default: `stui-conformance run` and the pytest plugin left a
`.hypothesis/` in whatever directory the user ran them from. During a run this module points that home
directory at the directory the user names (`--hypothesis-dir`, `--stui-hypothesis-dir`), or else at a
temporary directory removed afterwards, and then restores hypothesis' own setting, so a team's own
hypothesis tests in the same pytest session keep their database where they had it.
`HYPOTHESIS_STORAGE_DIRECTORY`, hypothesis' own variable, is respected when set.

It must never create an example database: reproducibility comes from the seed alone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_HOME_GLOBAL = "__hypothesis_home_directory"  # hypothesis.configuration's module-level setting


@contextmanager
def hypothesis_storage(directory: str | os.PathLike[str] | None = None) -> Iterator[Path | None]:
    """Within the block, hypothesis writes under `directory` (created), else under a temporary directory
    that is removed at the end; None is yielded when HYPOTHESIS_STORAGE_DIRECTORY already decides."""
    from hypothesis import configuration

    if directory is None and os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        yield None
        return
    previous = vars(configuration).get(_HOME_GLOBAL)
    temporary = None
    if directory is None:
        temporary = tempfile.mkdtemp(prefix="stui-conformance-hypothesis-")
        home = Path(temporary)
    else:
        home = Path(directory)
        home.mkdir(parents=True, exist_ok=True)
    configuration.set_hypothesis_home_dir(home)
    try:
        yield home
    finally:
        setattr(configuration, _HOME_GLOBAL, previous)
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
