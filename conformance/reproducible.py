"""Hypothesis generation that depends on the seed alone, not on what the process has imported.

Hypothesis (since 6.131) mixes into generation the constants it finds in every *local* module loaded
in the process (`hypothesis.internal.conjecture.providers._get_local_constants`). The same seed then
gives different examples in a pytest process that imported half the kit than in the `stui-conformance`
CLI - a diff witness, a generated request or a shrunk sequence that changes with the caller is not
replayable. Inside `seed_only_generation()` Hypothesis draws from its global constants only.

The hook is private Hypothesis API: when it is absent (an older or newer Hypothesis) nothing is patched
and the local-constants feature, if any, is whatever that version does; the determinism test in
tests/schema_diff/test_diff_cli.py then tells.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_saved: object = None


@contextmanager
def seed_only_generation() -> Iterator[None]:
    """Within the block, generation ignores constants harvested from loaded modules. Re-entrant."""
    global _depth, _saved
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - hypothesis always installed with the kit
        yield
        return
    getter = getattr(providers, "_get_local_constants", None)
    constants_type = getattr(providers, "Constants", None)
    cache = getattr(providers, "CONSTANTS_CACHE", None)
    if getter is None or constants_type is None:
        yield
        return
    with _lock:
        if _depth == 0:
            _saved = getter
            empty = constants_type()
            providers._get_local_constants = lambda: empty
            if cache is not None:  # permitted-constant tuples computed with the local ones
                cache.cache.clear()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                providers._get_local_constants = _saved
                if cache is not None:
                    cache.cache.clear()
