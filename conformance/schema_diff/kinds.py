"""The message kinds of one side of a diff, each as one fully inlined schema.

A kind is one message a peer writes and the other reads, with its direction:

- `request <command>` (written by clients, read by servers): `SchemaRegistry.request_schema`;
- `success <command>` and `error <Code>` (written by servers): `success_schema`, `error_response_schema`;
- `state document` (the state a server returns from session.resume): the bundled `State` definition.

Each kind's bundle comes from the registry, the same documents every validator of the kit uses. It is
then inlined: every `$ref` is replaced by the definition it names, so a definition moved to another file
(or renamed) with the same content compares equal. Every inlined definition remembers where it came
from (`origins`: node id -> "common.json#/$defs/Token"), which the report uses to group one change seen
in several kinds. A recursive reference (none exists in v1) is left as a `$ref` into the bundle's `$defs`.

This module must never decide what a change means; it only lays the schemas out for `compare`.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from stui_protocol_kit.protocol.schemas import SchemaRegistry

Schema = Any  # a JSON Schema node: dict or bool

# Keywords whose value is a schema, a list of schemas, or a mapping of names to schemas.
SCHEMA_VALUED = frozenset({"additionalProperties", "unevaluatedProperties", "propertyNames", "items", "contains",
                           "not", "if", "then", "else", "unevaluatedItems", "contentSchema"})
SCHEMA_LISTS = frozenset({"oneOf", "anyOf", "allOf", "prefixItems"})
SCHEMA_MAPS = frozenset({"properties", "patternProperties", "dependentSchemas", "$defs"})


@dataclass
class Kind:
    key: str  # "request session.snapshot", "success hello", "error InvalidRequest", "state document"
    direction: str  # "request" or "response"
    command: str | None
    code: str | None
    bundle: dict[str, Any]  # as the registry bundles it (self-contained, local $refs)
    tree: Schema  # inlined
    origins: Origins = field(default_factory=lambda: Origins())  # node in tree -> source location
    root_origin: str = ""


def source_locations(registry: SchemaRegistry) -> dict[str, str]:
    """Bundle-local definition name -> where it is written ("commands/evaluate.json#/$defs/Parameters")."""
    out: dict[str, str] = {}
    for uri, doc in registry.documents.items():
        rel = registry.paths[uri]
        with contextlib.suppress(KeyError, TypeError):
            out.setdefault(registry.local_name(uri, ""), rel)
        for name in doc.get("$defs", {}) or {}:
            out.setdefault(registry.local_name(uri, name), f"{rel}#/$defs/{name}")
    return out


class Origins:
    """Where inlined nodes came from, by node identity (the nodes are kept alive so ids stay unique)."""

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[Any, str]] = {}

    def set(self, node: Any, where: str) -> None:
        self._by_id[id(node)] = (node, where)

    def get(self, node: Any) -> str | None:
        found = self._by_id.get(id(node))
        return found[1] if found is not None and found[0] is node else None


def inline(bundle: dict[str, Any], locations: dict[str, str]) -> tuple[Schema, Origins]:
    """`bundle` with every local `$ref` replaced by its target; origins of the inlined definitions."""
    defs = bundle.get("$defs", {}) or {}
    origins = Origins()

    def walk(node: Schema, stack: tuple[str, ...]) -> Schema:
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("$defs", "$schema", "$ref"):
                continue
            if key in SCHEMA_VALUED:
                out[key] = walk(value, stack)
            elif key in SCHEMA_LISTS and isinstance(value, list):
                out[key] = [walk(item, stack) for item in value]
            elif key in SCHEMA_MAPS and isinstance(value, dict):
                out[key] = {name: walk(sub, stack) for name, sub in value.items()}
            else:
                out[key] = copy.deepcopy(value)
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return out
        name = ref.removeprefix("#/$defs/")
        if name in stack or name not in defs:
            out["$ref"] = ref  # recursion (or a dangling name): compared by name, validated with the bundle's $defs
            return out
        target = walk(defs[name], (*stack, name))
        if not isinstance(target, dict):
            return target if not out else {"allOf": [target, out]}
        clash = set(out) & set(target)
        # A $ref's siblings apply together with the target (2020-12). In v1 they are annotations only;
        # when they would overwrite an assertion of the target, keep both as an allOf instead of merging.
        if any(not is_annotation(k) for k in clash):
            merged: dict[str, Any] = {"allOf": [target, out]}
        else:
            merged = {**target, **out}
        # The innermost definition names where the content is written (A -> B -> {...}: B).
        origins.set(merged, origins.get(target) or locations.get(name, f"#/$defs/{name}"))
        return merged

    return walk(bundle, ()), origins


ANNOTATIONS = frozenset({"title", "description", "$comment", "examples", "default", "deprecated", "readOnly",
                         "writeOnly", "$id", "$anchor", "$schema", "contentMediaType", "contentEncoding"})


def is_annotation(key: str) -> bool:
    return key in ANNOTATIONS or key.startswith("x-")


def fingerprint(registry: SchemaRegistry) -> str:
    """A digest of a registry's source documents: equal for two registries read from equal files."""
    docs = sorted((registry.paths[uri], doc) for uri, doc in registry.documents.items())
    return hashlib.sha256(json.dumps(docs, sort_keys=True).encode()).hexdigest()


_CACHE: OrderedDict[str, dict[str, Kind]] = OrderedDict()
_CACHE_SIZE = 4  # a diff needs two; the rest serves repeated diffs of an unchanged side in one process


def message_kinds(registry: SchemaRegistry) -> dict[str, Kind]:
    """Every message kind of one side, by key, inlined (cached by content: kinds are never mutated)."""
    key = fingerprint(registry)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    kinds = _message_kinds(registry)
    _CACHE[key] = kinds
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return kinds


def _message_kinds(registry: SchemaRegistry) -> dict[str, Kind]:
    locations = source_locations(registry)
    raw: list[tuple[str, str, str | None, str | None, dict[str, Any], str]] = []
    for command in registry.commands:
        raw.append((f"request {command}", "request", command, None, registry.request_schema(command), "request.json"))
    for command in registry.commands:
        raw.append((f"success {command}", "response", command, None, registry.success_schema(command),
                    "response.json#/$defs/Success"))
    for code in registry.error_codes:
        raw.append((f"error {code}", "response", None, code, registry.error_response_schema(code),
                    "response.json#/$defs/Error"))
    raw.append(("state document", "response", None, None,
                registry.component_schema("state.json#/$defs/State", "session state document"), ""))
    kinds: dict[str, Kind] = {}
    for key, direction, command, code, bundle, root in raw:
        tree, origins = inline(bundle, locations)
        kinds[key] = Kind(key, direction, command, code, bundle, tree, origins, root or origins.get(tree) or "")
    return kinds
