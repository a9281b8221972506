"""Small valid instances of a schema node: the raw material of the diff's witness messages.

`minimal(schema)` builds, deterministically, a small value the schema accepts: objects with their
required members only, the smallest number within the bounds, the shortest string; strings with a
`pattern` come from hypothesis (`from_regex` via hypothesis-jsonschema, shrunk to the simplest match,
fixed seed, no example database) and are cached. A node the builder cannot satisfy directly (`oneOf`
that needs a branch, `not`, uniqueness...) is tried branch by branch and finally handed to hypothesis-
jsonschema (`from_schema`) with the same fixed seed. Every value is checked with both validators
(`checking.py`) before it is returned: hypothesis-jsonschema is known to generate invalid data for
some keywords (spec/14-schemas.md 14.6).

`search(strategy, condition)` is the one place hypothesis's `find` is called: deterministic (a fixed
`random.Random(seed)`, no database, `seed_only_generation`) and bounded (`max_examples`).

This module must never decide what a change means or how a witness is told.
"""

from __future__ import annotations

import json
import math
import random
import zlib
from functools import lru_cache
from typing import Any

from stui_protocol_kit.conformance.reproducible import seed_only_generation
from stui_protocol_kit.conformance.schema_diff.checking import checker
from stui_protocol_kit.conformance.schema_diff.compare import as_schema, closure, enum_of, types_of


class NoInstance(Exception):
    """No value satisfying the schema was found."""


# Tried in this order when a node allows several types: the most readable witness first.
TYPE_ORDER = ("object", "string", "integer", "boolean", "array", "null", "number")


def stable_seed(seed: int, *parts: Any) -> int:
    """A seed derived from `seed` and a description of the search, stable across runs and machines."""
    return (seed * 1_000_003 + zlib.crc32(json.dumps(parts, sort_keys=True, default=str).encode())) % (2**32)


def search(strategy: Any, condition: Any, *, seed: int, max_examples: int) -> tuple[bool, Any]:
    """(True, a small example satisfying `condition`) or (False, None); deterministic.

    Hypothesis only generates (its own shrinker can spend tens of seconds on one long string); the
    first example found is then made small by `shrink`, which has a fixed budget of condition calls."""
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis.errors import HypothesisException

    try:
        with seed_only_generation():
            value = find(
                strategy, condition,
                settings=settings(database=None, max_examples=max_examples, deadline=None,
                                  suppress_health_check=list(HealthCheck), phases=[Phase.generate]),
                random=random.Random(seed),
            )
    except HypothesisException:  # NoSuchExample, Unsatisfiable, InvalidArgument from the strategy
        return False, None
    except (ValueError, TypeError, RecursionError):  # hypothesis-jsonschema refusing a schema
        return False, None
    return True, shrink(value, condition)


SHRINK_BUDGET = 400  # condition calls per shrink


def shrink(value: Any, condition: Any, budget: int = SHRINK_BUDGET) -> Any:
    """A smaller value that still satisfies `condition`: members and items dropped, strings cut,
    written with '0' and their characters put in order, numbers moved towards 0.
    Greedy, bounded by `budget` calls of `condition`."""
    calls = 0

    def holds(candidate: Any) -> bool:
        nonlocal calls
        calls += 1
        try:
            return bool(condition(candidate))
        except Exception:
            return False

    improved = True
    while improved and calls < budget:
        improved = False
        for candidate in _smaller(value):
            if calls >= budget:
                break
            if holds(candidate):
                value, improved = candidate, True
                break
    return value


def _smaller(value: Any):
    """Candidates smaller than `value`, most aggressive first."""
    if isinstance(value, bool) or value is None:
        if value:
            yield False
        return
    if isinstance(value, int):
        for candidate in (0, 1, value // 2, value - 1 if value > 0 else value + 1):
            if abs(candidate) < abs(value):
                yield candidate
        return
    if isinstance(value, float):
        yield 0
        if value != int(value) and abs(value) > 1:
            yield float(int(value)) + 0.5
        return
    if isinstance(value, str):
        if value:
            yield ""
        # Cut geometrically closer to the whole (1/2, 3/4, 7/8...), then one character: a bound such as
        # maxLength is reached in a few rounds whichever side of it the search started.
        size = len(value)
        for length in dict.fromkeys([size // 2, size * 3 // 4, size * 7 // 8, size * 15 // 16, size - 1]):
            if 0 < length < size:
                yield value[:length]
        if set(value) - {"0"}:
            yield "0" * len(value)
        if set(value) - {"0", "a"}:
            yield "a" * len(value)
        # Characters in order, then one character kept among '0's: the same few characters that
        # hypothesis happened to place anywhere end in one canonical string, so a witness does not
        # depend on where generation put them (nor on the budget running out half-way along a string).
        ordered = "".join(sorted(value))
        if ordered != value:
            yield ordered
        kept = [i for i, ch in enumerate(value) if ch != "0"]
        if 1 < len(kept) <= 64:
            for i in kept:
                yield "0" * i + value[i] + "0" * (len(value) - i - 1)
        if len(value) <= 64:
            for i in kept:
                yield value[:i] + "0" + value[i + 1:]
        return
    if isinstance(value, list):
        if value:
            yield []
        for i in range(len(value)):
            yield value[:i] + value[i + 1:]
        for i, item in enumerate(value):
            for smaller in _smaller(item):
                yield value[:i] + [smaller] + value[i + 1:]
        return
    if isinstance(value, dict):
        for key in value:
            yield {k: v for k, v in value.items() if k != key}
        for key, item in value.items():
            for smaller in _smaller(item):
                yield {**value, key: smaller}
        smaller_keys = {}
        for key in value:
            if isinstance(key, str) and len(key) > 1:
                smaller_keys[key] = key[:1]
        if smaller_keys and len(set(smaller_keys.values()) | (set(value) - set(smaller_keys))) == len(value):
            yield {smaller_keys.get(k, k): v for k, v in value.items()}


def generated(schema: Any, condition: Any, *, seed: int, max_examples: int) -> tuple[bool, Any]:
    """The simplest value hypothesis-jsonschema generates from `schema` that satisfies `condition`."""
    from hypothesis_jsonschema import from_schema

    from stui_protocol_kit.conformance.strategies import generation_schema

    try:
        strategy = from_schema(generation_schema(_with_dialect(schema)))
    except Exception:  # hypothesis-jsonschema rejects schemas it cannot canonicalise
        return False, None
    return search(strategy, condition, seed=seed, max_examples=max_examples)


def _with_dialect(schema: Any) -> Any:
    if schema is True:
        return {}
    if schema is False:
        return {"not": {}}
    return {k: v for k, v in schema.items() if k != "$schema"}


class Builder:
    """Minimal instances for the nodes of one schema tree (recursive references resolve in `defs`)."""

    def __init__(self, defs: dict[str, Any] | None = None, seed: int = 0):
        self.defs = defs or {}
        self.seed = seed
        self._cache: dict[str, Any] = {}

    def accepts(self, schema: Any, value: Any) -> bool:
        return checker(schema, self.defs).accepts(value) is True

    def minimal(self, schema: Any, depth: int = 0) -> Any:
        key = json.dumps(schema, sort_keys=True)
        if key in self._cache:
            value = self._cache[key]
            if isinstance(value, NoInstance):
                raise value
            return json.loads(json.dumps(value))
        try:
            value = self._build(schema, depth)
        except NoInstance as exc:
            self._cache[key] = exc
            raise
        self._cache[key] = value
        return json.loads(json.dumps(value))

    # -- building

    def _build(self, schema: Any, depth: int) -> Any:
        if depth > 40:
            raise NoInstance("schema nested too deeply")
        node = as_schema(schema)
        for candidate in self._candidates(node, depth):
            if self.accepts(schema, candidate):
                return candidate
        ok, value = generated(schema, lambda v: self.accepts(schema, v),
                              seed=stable_seed(self.seed, "minimal", schema), max_examples=200)
        if ok:
            return value
        raise NoInstance(f"no instance found for {json.dumps(schema)[:200]}")

    def _candidates(self, node: dict[str, Any], depth: int):
        if "$ref" in node and node["$ref"].removeprefix("#/$defs/") in self.defs:
            target = self.defs[node["$ref"].removeprefix("#/$defs/")]
            rest = {k: v for k, v in node.items() if k != "$ref"}
            yield from self._safe(lambda: self.minimal({"allOf": [target, rest]} if rest else target, depth + 1))
        values = enum_of(node)
        if values is not None:
            yield from values
            return
        for keyword in ("oneOf", "anyOf"):
            if isinstance(node.get(keyword), list):
                rest = {k: v for k, v in node.items() if k != keyword}
                for branch in node[keyword]:
                    yield from self._safe(lambda b=branch, r=rest: self.minimal(merge(r, b), depth + 1))
                return
        if isinstance(node.get("allOf"), list):
            merged = {k: v for k, v in node.items() if k != "allOf"}
            for part in node["allOf"]:
                merged = merge(merged, part)
            yield from self._safe(lambda: self.minimal(merged, depth + 1))
            return
        types = types_of(node)
        allowed = [t for t in TYPE_ORDER if types is None or t in types or (t == "integer" and "number" in types)]
        if types is None:
            allowed = [_implied_type(node)] + [t for t in allowed if t != _implied_type(node)]
        for kind in allowed:
            yield from self._safe(lambda k=kind: self._of_type(node, k, depth))

    def _safe(self, make):
        try:
            yield make()
        except NoInstance:
            return

    def _of_type(self, node: dict[str, Any], kind: str, depth: int) -> Any:
        if kind == "null":
            return None
        if kind == "boolean":
            return False
        if kind in ("integer", "number"):
            return _number(node)
        if kind == "string":
            return self._string(node)
        if kind == "array":
            count = int(node.get("minItems", 0) or 0)
            if count == 0:
                return []
            item = self.minimal(node.get("items", True), depth + 1)
            if node.get("uniqueItems") and count > 1:
                raise NoInstance("unique items need generation")
            return [item] * count
        return self._object(node, depth)

    def _string(self, node: dict[str, Any]) -> str:
        low = int(node.get("minLength", 0) or 0)
        high = node.get("maxLength")
        if "pattern" not in node:
            if high is not None and low > high:
                raise NoInstance("minLength > maxLength")
            return "a" * low
        string_node = {k: node[k] for k in ("pattern", "minLength", "maxLength") if k in node}
        string_node["type"] = "string"
        value = _pattern_string(json.dumps(string_node, sort_keys=True), self.seed)
        if value is None:
            raise NoInstance(f"no string matches {node.get('pattern')!r}")
        return value

    def _object(self, node: dict[str, Any], depth: int) -> dict[str, Any]:
        props = node.get("properties", {}) or {}
        rest = closure(node)
        out: dict[str, Any] = {}
        for name in node.get("required", []) or []:
            sub = props.get(name, rest if isinstance(rest, dict) else True)
            out[name] = self.minimal(sub, depth + 1)
        wanted = int(node.get("minProperties", 0) or 0)
        for name, sub in props.items():
            if len(out) >= wanted:
                break
            if name not in out:
                out[name] = self.minimal(sub, depth + 1)
        index = 0
        while len(out) < wanted and index < wanted + 5:
            key = self.fresh_name(node, out, index)
            out[key] = self.minimal(rest if isinstance(rest, dict) else True, depth + 1)
            index += 1
        return out

    def fresh_name(self, node: dict[str, Any], taken: Any = (), index: int = 0) -> str:
        """A member name the object does not define, allowed by its propertyNames."""
        names = node.get("propertyNames", True)
        props = node.get("properties", {}) or {}
        for candidate in (f"unknown_member{index or ''}", f"x{index}", f"X{index}", f"k{index}"):
            if candidate not in props and candidate not in taken and self.accepts(names, candidate):
                return candidate
        ok, value = generated(names if isinstance(names, dict) else {}, lambda v: isinstance(v, str) and v not in props
                              and v not in taken and self.accepts(names, v),
                              seed=stable_seed(self.seed, "name", names, index), max_examples=200)
        if ok:
            return value
        raise NoInstance("no free member name")


@lru_cache(maxsize=1024)
def _pattern_string(node_text: str, seed: int) -> str | None:
    """The simplest string hypothesis finds for a string node with a pattern (cached per process:
    the same patterns recur in every kind and every diff)."""
    node = json.loads(node_text)
    ok, value = generated(node, lambda v: checker(node).accepts(v) is True,
                          seed=stable_seed(seed, "string", node), max_examples=300)
    return value if ok else None


def merge(base: dict[str, Any], extra: Any) -> dict[str, Any]:
    """`base` and `extra` as one schema node (both must hold): later keys win, except that `properties`
    and `required` are united. Used to build an instance of one variant; the result is always checked."""
    extra = as_schema(extra)
    out = dict(base)
    for key, value in extra.items():
        if key == "properties" and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        elif key == "required" and isinstance(out.get(key), list):
            out[key] = list(dict.fromkeys([*out[key], *value]))
        else:
            out[key] = value
    return out


def _implied_type(node: dict[str, Any]) -> str:
    if any(k in node for k in ("properties", "required", "additionalProperties", "propertyNames",
                               "minProperties", "maxProperties")):
        return "object"
    if any(k in node for k in ("items", "minItems", "maxItems", "uniqueItems")):
        return "array"
    if any(k in node for k in ("pattern", "minLength", "maxLength")):
        return "string"
    if any(k in node for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")):
        return "integer"
    return "integer"  # an unconstrained value: 0 is the plainest JSON


def _number(node: dict[str, Any]) -> int:
    low = -math.inf
    if isinstance(node.get("minimum"), (int, float)):
        low = max(low, math.ceil(node["minimum"]))
    if isinstance(node.get("exclusiveMinimum"), (int, float)):
        low = max(low, math.floor(node["exclusiveMinimum"]) + 1)
    high = math.inf
    if isinstance(node.get("maximum"), (int, float)):
        high = min(high, math.floor(node["maximum"]))
    if isinstance(node.get("exclusiveMaximum"), (int, float)):
        high = min(high, math.ceil(node["exclusiveMaximum"]) - 1)
    value = 0 if low <= 0 <= high else (low if low != -math.inf else high)
    step = node.get("multipleOf")
    if isinstance(step, int) and step > 0 and value % step:
        value += step - value % step
    if value == math.inf or value == -math.inf or value > high or value < low:
        raise NoInstance("no integer within the bounds")
    return int(value)
