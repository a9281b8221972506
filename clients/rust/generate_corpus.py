"""Writes the generated-message corpus the Rust types are held to (clients/rust/ci.sh runs it before
`cargo test`): JSON Lines of v1 messages generated from the schemas by the kit's own generators.

- valid requests of every command (`conformance.strategies.valid_requests`);
- valid replies: a success of every command and an error of every code, generated from the bundled
  reply schemas with hypothesis-jsonschema as tests/test_schemas.py does, and kept only when the kit's
  validator finds nothing wrong (so the only nulls are an error's `id`/`command` and those inside the
  client documents);
- invalid requests: every mutation the kit makes of some valid requests of every command
  (`conformance.strategies.every_mutation`: a member dropped, added, retyped, `3` written `3.0`, `null`
  for an optional member, a wrong version, a near-miss command name, ...).

- boundary values: in valid messages of every kind, each value the schemas constrain (a pattern, a
  length, a minimum or maximum, a constant, an enum; also the keys of `variables` and `objects`)
  replaced by values just inside and just outside the constraint - one character shorter or longer
  than allowed, a character outside the pattern, the minimum minus one, 2^53 -, each list with a size
  or uniqueness rule emptied, shortened, lengthened and given a repeat, and each member the schemas
  define left out; each with the verdict the kit's validator gives the whole message. The types must
  reach the same verdict, so a constraint made stricter or looser in the schemas, or a member made
  required or optional, which no valid message shows, fails too. One exception, kept in
  tests/generated.rs: an `error.code` moved outside the registry is invalid here but must be read as
  `ErrorBody::Unknown` (a client takes a newer server's code as a failed request, ERR-5).

Each line is `{"kind", "label", "body"}` (`body` is the exact wire text) plus, for a valid message,
`expect`: the JSON value the Rust types must write back, and for a boundary value, `valid` and
`direction`. That is the message itself, without the
members v1 does not define: reply schemas are open (a newer server may add members), generation fills
them in, and a client ignores them (spec CMP-2). The first line is `{"kind": "meta", ...}`.

The step fails (exit 1) unless the corpus covers the schemas: every command and every error code, every
member the schemas define present in some message and, when optional, absent from another, and every
value of every `enum`. A schema change that the Rust types do not follow then shows up in
`cargo test` as a message the types refuse or write back differently.

Run with the kit installed: `python3 clients/rust/generate_corpus.py --out FILE`. It never talks to a
server and never writes anything but FILE.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from stui_protocol_kit.conformance.strategies import every_mutation, generation_schema, valid_requests
from stui_protocol_kit.protocol.schemas import registry
from stui_protocol_kit.protocol.validation import validator

Json = Any
DEFAULT_OUT = Path(__file__).resolve().parent / "target" / "stui-corpus.jsonl"


def draw(strategy: st.SearchStrategy[Json], count: int, seed_value: int) -> list[Json]:
    """Up to `count` examples of `strategy`, the same ones for the same seed."""
    found: list[Json] = []

    @seed(seed_value)
    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(example: Json) -> None:
        found.append(example)

    collect()
    return found


def body_of(message: Json) -> str | None:
    """The compact wire text, or None when the message cannot be a UTF-8 body (a lone surrogate)."""
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return text


class SchemaWalk:
    """Walks messages alongside their (bundled) schema: returns a message without the members the
    schema does not define, and records what it saw - which defined members were present or absent,
    which enum values and which `oneOf`/`anyOf` branches occurred - for `gaps`."""

    def __init__(self, schema: dict[str, Any], root: str) -> None:
        self.schema, self.defs, self.root = schema, schema.get("$defs", {}), root
        self.present: Counter[str] = Counter()
        self.absent: Counter[str] = Counter()
        self.enums: dict[str, set[str]] = defaultdict(set)
        self.branches: dict[str, set[int]] = defaultdict(set)
        self.dropped: Counter[str] = Counter()
        self._validators: dict[int, Any] = {}

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = self.defs[node["$ref"].removeprefix("#/$defs/")]
        return node

    def matches(self, value: Json, node: dict[str, Any]) -> bool:
        key = id(node)
        if key not in self._validators:
            self._validators[key] = jsonschema.Draft202012Validator({**node, "$defs": self.defs})
        return self._validators[key].is_valid(value)

    def effective(self, node: dict[str, Any], value: Json, path: str) -> dict[str, Any]:
        """`node` with the first `oneOf`/`anyOf` branch that `value` matches merged in."""
        node = self.resolve(node)
        for key in ("oneOf", "anyOf"):
            if key in node:
                index = next(i for i, b in enumerate(node[key]) if self.matches(value, b))
                self.branches[path].add(index)
                rest = {k: v for k, v in node.items() if k != key}
                branch = self.effective(node[key][index], value, path)
                node = {**rest, **branch}
                if "properties" in rest or "properties" in branch:
                    node["properties"] = {**rest.get("properties", {}), **branch.get("properties", {})}
                node["required"] = [*rest.get("required", []), *branch.get("required", [])]
        return node

    def known(self, value: Json, node: dict[str, Any] | None = None, path: str = "$") -> Json:
        node = self.effective(self.schema if node is None else node, value, path)
        if "enum" in node and isinstance(value, str):
            self.enums[path].add(value)
        if isinstance(value, list) and "items" in node:
            return [self.known(item, node["items"], path + "[]") for item in value]
        if not isinstance(value, dict):
            return value
        properties = node.get("properties")
        extra = node.get("additionalProperties")
        if properties is None and not isinstance(extra, dict):
            return value  # free-form (a client document): kept verbatim
        properties = properties or {}
        for name in properties:
            if name in value:
                self.present[f"{path}.{name}"] += 1
            else:
                self.absent[f"{path}.{name}"] += 1
        out = {}
        for name, member in value.items():
            if name in properties:
                out[name] = self.known(member, properties[name], f"{path}.{name}")
            elif isinstance(extra, dict):
                out[name] = self.known(member, extra, f"{path}{{*}}")
            else:
                self.dropped[path] += 1  # a member v1 does not define: a client ignores it (CMP-2)
        return out

    def defined(self, node: dict[str, Any] | None = None, path: str = "$", seen: frozenset[str] = frozenset()
                ) -> Iterator[tuple[str, str, Any]]:
        """What the schema defines, as (path, what, detail): ("member", optional), ("enum", values),
        ("branches", count)."""
        node = self.schema if node is None else node
        if "$ref" in node:
            name = node["$ref"].removeprefix("#/$defs/")
            if name not in seen:
                yield from self.defined(self.defs[name], path, seen | {name})
            return
        if "enum" in node:
            yield path, "enum", [v for v in node["enum"] if isinstance(v, str)]
        required = set(node.get("required", []))
        for key in ("oneOf", "anyOf"):
            if key in node:
                yield path, "branches", len(node[key])
                for branch in node[key]:
                    yield from self.defined(branch, path, seen)
        for name, member in node.get("properties", {}).items():
            yield f"{path}.{name}", "member", name not in required
            yield from self.defined(member, f"{path}.{name}", seen)
        if isinstance(node.get("additionalProperties"), dict):
            yield from self.defined(node["additionalProperties"], f"{path}{{*}}", seen)
        if isinstance(node.get("items"), dict):
            yield from self.defined(node["items"], f"{path}[]", seen)

    def gaps(self) -> list[str]:
        """What the walked messages never showed: a defined member, an optional member's absence, an
        enum value, a branch of a `oneOf`/`anyOf`."""
        out = []
        for path, what, detail in self.defined():
            if what == "enum":
                out += [f"{self.root} {path} never {v!r}" for v in detail if v not in self.enums[path]]
            elif what == "branches":
                out += [f"{self.root} {path} never matched branch {i}" for i in range(detail)
                        if i not in self.branches[path]]
            else:
                if not self.present[path]:
                    out.append(f"{self.root} {path} never present")
                if detail and not self.absent[path]:
                    out.append(f"{self.root} {path} never absent")
        return sorted(set(out))


# Characters tried inside and around a constrained string: pattern classes' members and outsiders.
PROBE_CHARS = ("a", "Z", "0", "_", "-", ".", ":", "=", " ", "\u00e9", "\n", "\u007f")


def string_probes(value: str, node: dict[str, Any]) -> set[str]:
    """Strings near `value` and near the length limits of `node`."""
    out = {value[:-1], value[1:], value + value[-1:], value.upper(), value.lower(), value.swapcase()}
    for c in PROBE_CHARS:
        out |= {c + value, value + c, value[:1] + c + value[1:], value[:-1] + c}
    base = value or "a"
    for limit in (node.get("minLength"), node.get("maxLength")):
        if isinstance(limit, int):
            for n in (limit - 1, limit, limit + 1):
                if n >= 0:
                    out.add((base * (n // len(base) + 1))[:n])
    for option in node.get("enum", []):
        if isinstance(option, str):
            out |= {option, option.upper(), option + "x"}
    out.discard(value)
    return out


def integer_probes(value: int, node: dict[str, Any]) -> set[int]:
    out = {value - 1, value + 1, -1, 0, 1}
    for bound in (node.get("minimum"), node.get("maximum"), node.get("const")):
        if isinstance(bound, int) and not isinstance(bound, bool):
            out |= {bound - 1, bound, bound + 1}
    out.discard(value)
    return out


def constrained(node: dict[str, Any]) -> bool:
    return any(k in node for k in ("pattern", "minLength", "maxLength", "minimum", "maximum", "const", "enum"))


ABSENT = object()  # a probe that removes the member


def positions(walk: SchemaWalk, value: Json, node: dict[str, Any], pointer: tuple[Any, ...] = (), path: str = "$"
              ) -> Iterator[tuple[tuple[Any, ...], str, dict[str, Any], str]]:
    """(pointer, schema path, schema, role) of everything in a message a probe can change: a
    constrained value (`value`), a map key with `propertyNames` (`key`), a list with a size or
    uniqueness rule (`list`), a member the schema defines (`member`: the probe leaves it out)."""
    node = walk.effective(node, value, path)
    if isinstance(value, dict):
        properties = node.get("properties", {})
        extra = node.get("additionalProperties")
        names = node.get("propertyNames")
        for name, member in value.items():
            if name in properties:
                yield (*pointer, name), f"{path}.{name}", properties[name], "member"
                yield from positions(walk, member, properties[name], (*pointer, name), f"{path}.{name}")
            elif isinstance(extra, dict):
                if isinstance(names, dict):
                    yield (*pointer, name), f"{path}{{key}}", walk.resolve(names), "key"
                yield from positions(walk, member, extra, (*pointer, name), f"{path}{{*}}")
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        if any(k in node for k in ("minItems", "maxItems", "uniqueItems")):
            yield pointer, path, node, "list"
        if value:
            yield from positions(walk, value[0], node["items"], (*pointer, 0), f"{path}[]")
    elif constrained(node) and not isinstance(value, (dict, list)) and value is not None:
        yield pointer, path, node, "value"


def list_probes(value: list[Json], node: dict[str, Any]) -> list[list[Json]]:
    out = [[], value[:1], value + value[:1]]
    most = node.get("maxItems")
    if isinstance(most, int) and value:
        out.append((value * (most // len(value) + 1))[: most + 1])
    return out


def substituted(message: Json, pointer: tuple[Any, ...], new: Json, role: str) -> Json:
    out = copy.deepcopy(message)
    parent = out
    for step in pointer[:-1]:
        parent = parent[step]
    if role == "key":
        parent[new] = parent.pop(pointer[-1])
    elif new is ABSENT:
        del parent[pointer[-1]]
    elif pointer:
        parent[pointer[-1]] = new
    else:
        out = new
    return out


def boundary_probes(label: str, direction: str, schema: dict[str, Any], messages: list[Json]
                    ) -> Iterator[tuple[str, Json, bool]]:
    """(label, message, valid) for probes of everything `positions` finds: each schema path is probed
    in the first message that has it (optional members are absent from many)."""
    check = validator()
    probed: set[tuple[str, str]] = set()
    for host in messages:
        walk = SchemaWalk(schema, label)
        for pointer, path, node, role in list(positions(walk, host, schema)):
            if (path, role) in probed:
                continue
            probed.add((path, role))
            original = pointer[-1] if role == "key" else _at(host, pointer)
            probes: list[Json]
            if role == "member":
                probes = [ABSENT]
            elif role == "list":
                probes = list_probes(original, node)
            elif isinstance(original, bool):
                probes = [not original]
            elif isinstance(original, int):
                probes = sorted(integer_probes(original, node))
            elif isinstance(original, str):
                probes = sorted(string_probes(original, node))
            else:
                continue
            for probe in probes:
                if role == "key" and probe in _at(host, pointer[:-1]):
                    continue
                message = substituted(host, pointer, probe, role)
                violations = check.check(message, direction)[1]
                if violations and all(v.requirement == "ERR-2" for v in violations):
                    continue  # which codes a command may answer binds servers; no reply type checks it
                what = "absent" if role == "member" else role
                yield f"{label} {path} ({what})", message, not violations


def _at(message: Json, pointer: tuple[Any, ...]) -> Json:
    for step in pointer:
        message = message[step]
    return message


# Extra members in generated replies are held to short scalars: schema-valid, free of the nulls and
# floats that the kit's validator refuses there (CMP-3, CMP-5), and about three times quicker to
# generate than arbitrary JSON. Most replies are generated closed (no extra member at all), quicker still.
SCALAR_EXTRA = {"anyOf": [{"type": "string", "maxLength": 8}, {"type": "boolean"},
                          {"type": "integer", "minimum": 0, "maximum": 9007199254740991}]}


def with_extras(node: Json, extra: Json) -> Json:
    """`node` with `additionalProperties: extra` on every object that defines properties and leaves
    other members open. A generation aid only: every message is validated against the real schemas."""
    if isinstance(node, list):
        return [with_extras(item, extra) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: with_extras(value, extra) for key, value in node.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = extra
    return out


TOP_UP_ROUNDS = 3


def reply_schema(label: str) -> dict[str, Any]:
    reg = registry()
    return reg.success_schema(label) if label in reg.commands else reg.error_response_schema(label)


def generate(job: tuple[str, str, int, int]) -> list[Json]:
    """One generation job, run in a worker process: (kind, label, count, seed) with kind `request`,
    `closed` or `open` (replies without, or with, extra members)."""
    kind, label, count, seed_value = job
    if kind == "request":
        return draw(valid_requests(label), count, seed_value)
    schema = with_extras(reply_schema(label), False if kind == "closed" else SCALAR_EXTRA)
    return draw(from_schema(generation_schema(schema)), count, seed_value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON Lines file to write ({DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--examples", type=int, default=50,
                        help="valid requests per command; closed replies per command and per error code "
                             "(and a quarter as many replies with extra members)")
    parser.add_argument("--mutated", type=int, default=3,
                        help="valid requests per command whose every mutation is written as an invalid request")
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="worker processes")
    args = parser.parse_args(argv)

    started = time.monotonic()
    reg, check = registry(), validator()
    jobs = [("request", command, args.examples, args.seed + n) for n, command in enumerate(reg.commands)]
    for n, label in enumerate([*reg.commands, *reg.error_codes]):
        jobs.append(("closed", label, args.examples, args.seed + 1000 + n))
        jobs.append(("open", label, max(1, args.examples // 4), args.seed + 2000 + n))
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = dict(zip(jobs, pool.map(generate, jobs), strict=True))

    lines: list[dict[str, Any]] = []
    counts: Counter[tuple[str, str]] = Counter()
    skipped: Counter[str] = Counter()
    problems: list[str] = []
    topped_up: list[str] = []
    dropped = 0

    def add(kind: str, label: str, message: Json, walk: SchemaWalk | None) -> None:
        nonlocal dropped
        body = body_of(message)
        if body is None:
            skipped["not UTF-8 (lone surrogate)"] += 1
            return
        line: dict[str, Any] = {"kind": kind, "label": label, "body": body}
        if walk is not None:
            before = sum(walk.dropped.values())
            line["expect"] = walk.known(message)
            dropped += sum(walk.dropped.values()) - before
        lines.append(line)
        counts[(kind, label)] += 1

    for command in reg.commands:
        walk = SchemaWalk(reg.request_schema(command), f"request {command}")
        requests = results[("request", command, args.examples, args.seed + list(reg.commands).index(command))]
        for message in requests:
            add("request", command, message, walk)
        if sum(walk.dropped.values()):
            raise AssertionError(f"request schemas are closed, yet members were dropped: {dict(walk.dropped)}")
        problems += walk.gaps()
        for message in requests[: args.mutated]:
            for bad in every_mutation(message, check):
                add("invalid-request", f"{command}: {bad.mutation}", bad.message, None)

    walks = {label: SchemaWalk(reply_schema(label), f"response {label}") for label in [*reg.commands, *reg.error_codes]}

    def add_replies(batches: dict[tuple[str, str, int, int], list[Json]]) -> None:
        for (kind, label, _, _), messages in batches.items():
            if kind == "request":
                continue
            for message in messages:
                if check.check(message, "response")[1]:
                    skipped["rejected by the kit's validator"] += 1
                    continue
                add("response", label, message, walks[label])

    add_replies(results)
    # A rare enum value or branch can be missed by one draw: draw again for that kind, with new seeds,
    # rather than let a schema change fail the coverage check by chance.
    for round_ in range(1, TOP_UP_ROUNDS + 1):
        short = [label for label, walk in walks.items() if walk.gaps()]
        if not short:
            break
        more = [("closed", label, args.examples, args.seed + 3000 + 100 * round_ + n) for n, label in enumerate(short)]
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            add_replies(dict(zip(more, pool.map(generate, more), strict=True)))
        topped_up.extend(label for label in short if label not in topped_up)
    for walk in walks.values():
        problems += walk.gaps()

    # Boundary values of every constrained member, with the kit's verdict.
    hosts: dict[str, tuple[str, dict[str, Any], list[Json]]] = {}
    for line in lines:
        if line["kind"] in ("request", "response"):
            label = f"{line['kind']} {line['label']}"
            if label not in hosts:
                schema = (reg.request_schema(line["label"]) if line["kind"] == "request"
                          else reply_schema(line["label"]))
                hosts[label] = (line["kind"], schema, [])
            hosts[label][2].append(json.loads(line["body"]))
    verdicts: Counter[bool] = Counter()
    for label, (direction, schema, messages) in hosts.items():
        for probe_label, message, valid in boundary_probes(label, direction, schema, messages):
            body = body_of(message)
            if body is None:
                continue
            lines.append({"kind": "boundary", "label": probe_label, "direction": direction, "body": body,
                          "valid": valid})
            counts[("boundary", probe_label)] += 1
            verdicts[valid] += 1
    if not verdicts[True] or not verdicts[False]:
        problems.append(f"boundary values: {verdicts[True]} valid, {verdicts[False]} invalid; both kinds expected")

    # Coverage: every command and code, often enough, and (above) every defined member and enum value.
    minimum = max(1, args.examples // 2)
    for command in reg.commands:
        for kind in ("request", "response"):
            if counts[(kind, command)] < minimum:
                problems.append(f"{counts[(kind, command)]} {kind}s of {command}, fewer than {minimum}")
        if not any(k == "invalid-request" and label.startswith(command + ":") for k, label in counts):
            problems.append(f"no invalid request of {command}")
    for code in reg.error_codes:
        if counts[("response", code)] < minimum:
            problems.append(f"{counts[('response', code)]} {code} replies, fewer than {minimum}")

    schemas_digest = hashlib.sha256(json.dumps(reg.bundles(), sort_keys=True).encode("utf-8")).hexdigest()[:16]
    by_kind = Counter(kind for kind, _ in counts.elements())
    meta = {"kind": "meta", "seed": args.seed, "examples": args.examples, "schemas_sha256_16": schemas_digest,
            "counts": dict(sorted(by_kind.items())), "commands": list(reg.commands),
            "error_codes": list(reg.error_codes)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as out:
        for line in [meta, *lines]:
            out.write(json.dumps(line, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n")

    elapsed = time.monotonic() - started
    print(f"{args.out}: {len(lines)} messages in {elapsed:.1f} s "
          f"({', '.join(f'{n} {k}' for k, n in sorted(by_kind.items()))}); "
          f"{dropped} unknown members to be ignored; skipped: {dict(skipped) or 'none'}; "
          f"drawn again for coverage: {', '.join(topped_up) or 'none'}")
    print(f"boundary values: {verdicts[True]} valid, {verdicts[False]} invalid, "
          f"at {len({label for kind, label in counts if kind == 'boundary'})} probed positions")
    print(f"coverage: {len(reg.commands)} commands, {len(reg.error_codes)} error codes; every defined member "
          f"present and (if optional) absent, every enum value, every oneOf/anyOf branch: "
          f"{'ok' if not problems else f'{len(problems)} gaps'}")
    for problem in problems:
        print(f"  gap: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
