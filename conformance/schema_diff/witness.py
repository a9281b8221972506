"""Witnesses: whole protocol messages that one side accepts and the other rejects.

For a breaking change the diff shows the message that breaks: an old client's request a new server
rejects, a new client's request an old server rejects, a new server's reply an old client rejects, or an
old server's reply a new client rejects. A witness is built in two steps:

1. a *value* at the changed node that the accepting side's node accepts and the rejecting side's node
   rejects: first targeted candidates derived from the change (the removed enum value, a number just
   past the new bound, the object without the newly required member, a string one pattern accepts...),
   then hypothesis-jsonschema's examples of the accepting node, filtered and shrunk;
2. the *message*: the smallest valid message of the accepting side (`instances.Builder`) with that value
   put at the changed place (following the matched `oneOf` variant where the path goes through one).

Every witness is then checked before it is shown: the accepting side's bundled message schema must
accept it and the rejecting side's reject it, with python-jsonschema and with jsonschema-rs alike
(`checking.py`), and the kit's own `MessageValidator` of each side must agree (it also knows the rules
beyond one schema: dispatch on `command`, a command's allowed error codes). A value the validators
disagree on is never a witness. When nothing is found within the budget the change is reported with
"no witness found" and the reason.

The same search decides the pattern and "other keyword" families (`decide`): which way a string or
value is found says whether the new schema accepts less, more, or both.

Searches are deterministic: fixed seeds derived from `--seed` and the change, no example database.
This module must never change a verdict of `rules.py` other than by the witnesses it finds.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from stui_protocol_kit.conformance.schema_diff import rules
from stui_protocol_kit.conformance.schema_diff.checking import checker
from stui_protocol_kit.conformance.schema_diff.compare import RawChange, Step, as_schema, canon, closure
from stui_protocol_kit.conformance.schema_diff.instances import Builder, NoInstance, generated, merge, stable_seed
from stui_protocol_kit.conformance.schema_diff.kinds import Kind, fingerprint
from stui_protocol_kit.protocol.validation import MessageValidator, strict_validator

NARROWING, WIDENING = "narrowing", "widening"

STORIES = {
    ("request", NARROWING): "an old client's request that a new server rejects",
    ("request", WIDENING): "a new client's request that an old server rejects",
    ("response", WIDENING): "a new server's reply that an old client rejects",
    ("response", NARROWING): "an old server's reply that a new client rejects",
}

# Registry rules whose break is about which commands a server serves, not about what a schema accepts.
BEHAVIOUR_ONLY = {
    "CMD-MADE-OPTIONAL", "CMD-MADE-MANDATORY", "CMD-CAPABILITY-RENAMED", "CMD-SCOPE-CHANGED",
    "CMD-DURABLE-RETRY-ADDED", "CMD-DURABLE-RETRY-REMOVED",
}


@dataclass
class Witness:
    kind: str
    accepted_by: str  # "old" or "new"
    story: str
    message: Any
    rejection: list[str]  # why the rejecting side refuses it (its kit validator's violations)
    checks: dict[str, dict[str, bool]]  # side -> validator -> accepted
    notes: list[str] = field(default_factory=list)  # limits of the check, e.g. a side the kit cannot read

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "accepted_by": self.accepted_by, "story": self.story, "message": self.message,
                "rejected_because": self.rejection, "checks": self.checks, "notes": self.notes}


@dataclass
class WitnessResult:
    """The outcome for one broken party of one change."""

    breaks: str  # rules.OLD_CLIENTS or rules.OLD_SERVERS
    mode: str  # NARROWING (accepted by old) or WIDENING (accepted by new)
    witness: Witness | None
    note: str = ""  # why there is none

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"breaks": self.breaks, "found": self.witness is not None}
        if self.witness is not None:
            out["witness"] = self.witness.as_dict()
        else:
            out["note"] = self.note
        return out


def mode_for(direction: str, breaks: str) -> str:
    """Which way a witness must go to show that `breaks` are broken in this direction."""
    if direction == "response":
        return WIDENING if breaks == rules.OLD_CLIENTS else NARROWING
    return NARROWING if breaks == rules.OLD_CLIENTS else WIDENING


@dataclass
class Sides:
    """What the search needs of each side: message kinds, builders, the kit's validators."""

    old_kinds: dict[str, Kind]
    new_kinds: dict[str, Kind]
    old_registry: Any
    new_registry: Any
    seed: int = 0
    max_examples: int = 200
    _builders: dict[tuple[str, str], Builder] = field(default_factory=dict)
    _validators: dict[str, MessageValidator | None] = field(default_factory=dict)
    validator_errors: dict[str, str] = field(default_factory=dict)

    def kinds(self, side: str) -> dict[str, Kind]:
        return self.old_kinds if side == "old" else self.new_kinds

    def builder(self, side: str, kind: str) -> Builder:
        key = (side, kind)
        if key not in self._builders:
            found = self.kinds(side).get(kind)
            self._builders[key] = Builder(found.bundle.get("$defs") if found else None, self.seed)
        return self._builders[key]

    def validator(self, side: str) -> MessageValidator | None:
        """The kit's validator for a side, or None when it cannot read that schema set (an older layout,
        e.g. one without common.json `$defs/Version`): witnesses are then judged by the bundles alone."""
        if side not in self._validators:
            try:
                self._validators[side] = message_validator(self.old_registry if side == "old" else self.new_registry)
            except Exception as exc:
                self._validators[side] = None
                self.validator_errors[side] = f"{type(exc).__name__}: {exc}"
        return self._validators[side]


_VALIDATORS: OrderedDict[str, MessageValidator] = OrderedDict()


def message_validator(registry: Any) -> MessageValidator:
    """The kit's validator for a registry, shared between diffs of equal schemas in one process
    (compiling every message kind twice is most of a small diff's cost)."""
    key = fingerprint(registry)
    if key not in _VALIDATORS:
        _VALIDATORS[key] = MessageValidator(registry)
        while len(_VALIDATORS) > 4:
            _VALIDATORS.popitem(last=False)
    return _VALIDATORS[key]


def _other(side: str) -> str:
    return "new" if side == "old" else "old"


class WitnessSearch:
    def __init__(self, sides: Sides):
        self.sides = sides
        self._decided: dict[tuple, tuple[str, list[Any], list[Any]]] = {}
        self.why_not = ""  # why the last candidate message was not a witness

    # -- deciding the witness-decided families --------------------------------------------------------

    def decide(self, raw: RawChange) -> str:
        """The rule of a PATTERN or SCHEMA change, from the witnesses found each way (stored in facts)."""
        prefix = "REQ-" if raw.direction == "request" else "RES-"
        key = (raw.family, canon(raw.old), canon(raw.new))  # the same node pair in requests and replies
        if key not in self._decided:
            self._decided[key] = self._decide(raw)
        suffix, narrowing, widening = self._decided[key]
        raw.facts["narrowing_values"], raw.facts["widening_values"] = list(narrowing), list(widening)
        return f"{prefix}{raw.family}-{suffix}"

    def _decide(self, raw: RawChange) -> tuple[str, list[Any], list[Any]]:
        builder = self.sides.builder("new", raw.kind)
        if raw.family == "PATTERN":
            base = {k: raw.old[k] for k in ("minLength", "maxLength") if isinstance(raw.old, dict) and k in raw.old}
            base["type"] = "string"
            old_node = {**base, **({"pattern": raw.facts["old_pattern"]} if raw.facts["old_pattern"] else {})}
            new_node = {**base, **({"pattern": raw.facts["new_pattern"]} if raw.facts["new_pattern"] else {})}
        else:
            old_node, new_node = as_schema(raw.old), as_schema(raw.new)
            changed = [k for k in raw.facts.get("keywords", []) if k not in ("oneOf", "anyOf")]
            if changed and not raw.detail.startswith("node restructured"):
                # Only the keywords that changed differ: other changes at this node (reported by their own
                # rules) must not lend this one a witness.
                old_node = {**{k: v for k, v in new_node.items() if k not in changed},
                            **{k: old_node[k] for k in changed if k in old_node}}
        old_only = self._value(old_node, new_node, self._plain_candidates(builder, old_node, new_node), raw, "old")
        new_only = self._value(new_node, old_node, self._plain_candidates(builder, new_node, old_node), raw, "new")
        suffix = {(True, True): "CHANGED", (True, False): "TIGHTENED" if raw.family == "PATTERN" else "NARROWED",
                  (False, True): "LOOSENED" if raw.family == "PATTERN" else "WIDENED",
                  (False, False): "NO-WITNESS"}[(old_only[0], new_only[0])]
        return suffix, [old_only[1]] if old_only[0] else [], [new_only[1]] if new_only[0] else []

    def _plain_candidates(self, builder: Builder, accept: Any, reject: Any) -> list[Any]:
        out = []
        for node in (accept, reject):
            with contextlib.suppress(NoInstance):
                out.append(builder.minimal(node))
        if isinstance(reject, dict) and "not" in reject and isinstance(accept, dict):
            # An instance of what the rejecting side's `not` excludes, built within the accepting side.
            with contextlib.suppress(NoInstance):
                out.append(builder.minimal(merge({k: v for k, v in accept.items() if k != "not"}, reject["not"])))
        return out + mentioned_values(accept, reject)

    def _value(self, accept: Any, reject: Any, candidates: list[Any], raw: RawChange, label: str) -> tuple[bool, Any]:
        """A value `accept` takes and `reject` refuses, both validators agreeing on both."""
        a, r = checker(accept), checker(reject)

        def good(value: Any) -> bool:
            return a.accepts(value) is True and r.accepts(value) is False

        for value in candidates:
            if good(value):
                return True, value
        return generated(accept, good, seed=stable_seed(self.sides.seed, raw.kind, raw.path, raw.detail, label),
                         max_examples=self.sides.max_examples)

    # -- witnesses for one change ------------------------------------------------------------------------

    def witness(self, raw: RawChange, rule: rules.Rule, breaks: str) -> WitnessResult:
        direction = raw.direction if raw.direction != "any" else _registry_direction(rule.id)
        mode = mode_for(direction, breaks)
        if rule.id in BEHAVIOUR_ONLY:
            return WitnessResult(breaks, mode, None, "the break is in what a server does (which commands it serves "
                                 "under which capability, which replies survive a restart), not in what a schema "
                                 "accepts: no message shows it")
        self.why_not = ""
        try:
            found = self._registry_witness(raw, rule, mode) if raw.direction == "any" else self._tree_witness(raw, mode)
        except NoInstance as exc:
            return WitnessResult(breaks, mode, None, f"no witness found: {exc}")
        except Exception as exc:  # a generator or validator failing on an unusual schema: say so, go on
            return WitnessResult(breaks, mode, None, f"no witness found: the search failed ({type(exc).__name__}: "
                                 f"{exc})")
        if found is None:
            note = f"no witness found within the search budget ({self.sides.max_examples} examples)"
            if self.why_not:
                note += f"; the nearest candidate failed: {self.why_not}"
            return WitnessResult(breaks, mode, None, note)
        found.story = STORIES[(direction, mode)]
        return WitnessResult(breaks, mode, found)

    # ---- tree changes

    def _tree_witness(self, raw: RawChange, mode: str) -> Witness | None:
        accept = "old" if mode == NARROWING else "new"
        reject = _other(accept)
        kind_a, kind_r = self.sides.kinds(accept).get(raw.kind), self.sides.kinds(reject).get(raw.kind)
        if kind_a is None or kind_r is None:
            return None
        node_a = raw.old if accept == "old" else raw.new
        node_r = raw.new if accept == "old" else raw.old
        builder = self.sides.builder(accept, raw.kind)
        tried: set[str] = set()
        values = list(self._candidates(raw, mode, as_schema(node_a), as_schema(node_r), builder))
        ok, value = self._value(node_a, node_r, values, raw, accept)
        check_a, check_r = checker(node_a), checker(node_r)
        attempts = [value] if ok else []
        attempts += [v for v in values if check_a.accepts(v) is True and check_r.accepts(v) is False]
        reason = ""
        for value in attempts:
            key = json.dumps(value, sort_keys=True, default=str)
            if key in tried:
                continue
            tried.add(key)
            try:
                message = self._lift(kind_a.tree, raw.steps, value, accept, builder)
            except NoInstance:
                continue
            found = self._verify(message, raw.kind, accept)
            if found is not None:
                return found
            reason = reason or self.why_not  # the first value that shows the change at its node
        # Last resort: whole messages of the accepting side, filtered by the rejecting side.
        ok, message = generated(kind_a.tree, lambda m: self._verify(m, raw.kind, accept) is not None,
                                seed=stable_seed(self.sides.seed, "message", raw.kind, raw.path, raw.detail, mode),
                                max_examples=max(10, self.sides.max_examples // 4))
        self.why_not = reason
        return self._verify(message, raw.kind, accept) if ok else None

    def _candidates(self, raw: RawChange, mode: str, a: dict[str, Any], r: dict[str, Any], builder: Builder):
        """Values at the changed node that should show the change, cheapest first (each is checked)."""
        family, facts = raw.family, raw.facts

        def attempt(make):
            try:
                return [make()]
            except (NoInstance, KeyError, TypeError, ValueError):
                return []

        for key in ("narrowing_values" if mode == NARROWING else "widening_values",):
            yield from facts.get(key, [])
        if family.startswith("MEMBER-"):
            name = facts["member"]
            base = attempt(lambda: builder.minimal(a))
            sub = (a.get("properties", {}) or {}).get(name, closure(a) if isinstance(closure(a), dict) else True)
            for obj in base:
                if isinstance(obj, dict):
                    yield {k: v for k, v in obj.items() if k != name}
                    for value in attempt(lambda s=sub: builder.minimal(s)):
                        yield {**obj, name: value}
                yield obj
            return
        if family in ("OBJECT-OPENED", "OBJECT-CLOSED"):
            for obj in attempt(lambda: builder.minimal(a)):
                if isinstance(obj, dict):
                    for name in attempt(lambda o=obj: builder.fresh_name(a, tuple(o) + tuple(r.get("properties", {})))):
                        yield {**obj, name: 0}
            return
        if family in ("ENUM-VALUE-ADDED", "ENUM-VALUE-REMOVED", "VALUES-RESTRICTED", "VALUES-UNRESTRICTED"):
            yield from facts.get("values", [])
        if family == "CONST-CHANGED":
            yield from facts.get("removed" if mode == NARROWING else "added", [])
        if family.startswith("TYPE-"):
            for t in facts.get("lost" if mode == NARROWING else "gained", []):
                if t == "number":
                    yield 0.5
                yield from attempt(lambda t=t: builder.minimal({**a, "type": t}))
        if family.startswith("CONSTRAINT-") or family == "MEMBER-COUNT-LOOSENED":
            yield from (v for s in _complements(a, r, facts) for v in attempt(lambda s=s: builder.minimal(s)))
            if facts.get("keyword") == "uniqueItems":
                for item in attempt(lambda: builder.minimal(a.get("items", True))):
                    yield [item, copy.deepcopy(item)]
        if family in ("VARIANT-ADDED", "VARIANT-REMOVED"):
            keyword = facts["keyword"]
            index = facts.get("old_index") if mode == NARROWING else facts.get("new_index")
            if index is not None and isinstance(a.get(keyword), list):
                rest = {k: v for k, v in a.items() if k != keyword}
                yield from attempt(lambda: builder.minimal(merge(rest, a[keyword][index])))
        yield from attempt(lambda: builder.minimal(a))
        yield from mentioned_values(a, r)

    def _lift(self, root: Any, steps: tuple[Step, ...], value: Any, side: str, builder: Builder) -> Any:
        """The smallest message of `root` with `value` at the place `steps` lead to."""
        if not steps:
            return copy.deepcopy(value)
        step, rest = steps[0], steps[1:]
        node = as_schema(root)
        if step.kind == "variant":
            index = step.old_index if side == "old" else step.new_index
            branches = node.get(step.keyword) or []
            if index is None or index >= len(branches):
                raise NoInstance("variant not found")
            others = {k: v for k, v in node.items() if k != step.keyword}
            return self._lift(merge(others, branches[index]), rest, value, side, builder)
        if step.kind == "items":
            item = self._lift(node.get("items", True), rest, value, side, builder)
            filler = [builder.minimal(node.get("items", True)) for _ in range(max(0, int(node.get("minItems", 0)) - 1))]
            return [item, *filler]
        base = builder.minimal(node)
        if not isinstance(base, dict):
            base = {}
        props = node.get("properties", {}) or {}
        extra = closure(node)
        if step.kind == "prop":
            base[step.name] = self._lift(props.get(step.name, extra if isinstance(extra, dict) else True), rest, value,
                                         side, builder)
            return base
        if step.kind == "value":
            keys = [k for k in base if k not in props]
            key = keys[0] if keys else builder.fresh_name(node, tuple(base))
            base[key] = self._lift(extra if isinstance(extra, dict) else True, rest, value, side, builder)
            return base
        if step.kind == "names":
            if not isinstance(value, str):
                raise NoInstance("a property name must be a string")
            inner = props.get(value, extra if isinstance(extra, dict) else True)
            base[value] = builder.minimal(inner)
            return base
        raise NoInstance(f"cannot follow step {step}")

    # ---- checking a message

    def _verify(self, message: Any, kind: str, accept: str) -> Witness | None:
        reject = _other(accept)
        kind_a, kind_r = self.sides.kinds(accept).get(kind), self.sides.kinds(reject).get(kind)
        checks: dict[str, dict[str, bool]] = {}
        if kind_a is None:
            return None
        va = checker(kind_a.bundle).verdicts(message)
        checks[accept] = va.as_dict()
        if va.agreed is not True:
            self.why_not = (f"the {accept} schema's validators "
                            + ("disagree" if va.agreed is None else "reject the message built around it"))
            return None
        if kind_r is not None:
            vr = checker(kind_r.bundle).verdicts(message)
            checks[reject] = vr.as_dict()
            if vr.agreed is not False:
                self.why_not = f"the {reject} schema's validators " + ("disagree" if vr.agreed is None else "accept it")
                return None
        direction = kind_a.direction
        notes: list[str] = []
        kit_a, kit_r = self.sides.validator(accept), self.sides.validator(reject)
        if kit_a is not None:
            _, problems_a = kit_a.check(message, direction)
            if problems_a:
                first = problems_a[0]
                self.why_not = (f"the {accept} side's own rules refuse it: {first.path}: {first.message}"
                                + (f" ({first.requirement})" if first.requirement else ""))
                return None
            checks[f"{accept} (kit)"] = {"MessageValidator": True}
        else:
            notes.append(f"the kit's MessageValidator cannot read the {accept} schema set "
                         f"({self.sides.validator_errors.get(accept)}): judged by its bundled schema alone")
        if kit_r is not None:
            _, problems_r = kit_r.check(message, direction)
            if not problems_r:
                self.why_not = f"the {reject} side's validator accepts it"
                return None
            checks[f"{reject} (kit)"] = {"MessageValidator": False}
            rejection = [f"{p.path}: {p.message}" + (f" ({p.requirement})" if p.requirement else "")
                         for p in problems_r]
        elif kind_r is not None:
            notes.append(f"the kit's MessageValidator cannot read the {reject} schema set "
                         f"({self.sides.validator_errors.get(reject)}): judged by its bundled schema alone")
            errors = sorted(strict_validator(checker(kind_r.bundle).schema).iter_errors(message),
                            key=lambda e: list(e.path))
            rejection = [f"{e.json_path}: {e.message}" for e in errors]
        else:
            self.why_not = f"neither a {reject} schema nor a {reject} validator can judge it"
            return None
        return Witness(kind, accept, "", message, rejection[:5], checks, notes)

    # ---- registry changes

    def _registry_witness(self, raw: RawChange, rule: rules.Rule, mode: str) -> Witness | None:
        accept = "old" if mode == NARROWING else "new"
        if rule.id in ("CMD-REMOVED", "CMD-ADDED-MANDATORY", "CMD-ADDED-UNDER-EXISTING-CAPABILITY"):
            kind = self.sides.kinds(accept).get(raw.kind)
            if kind is None:
                return None
            message = self.sides.builder(accept, raw.kind).minimal(kind.tree)
            return self._verify(message, raw.kind, accept)
        if rule.id == "CMD-ERROR-ADDED":
            kind = self.sides.kinds(accept).get(raw.kind)
            if kind is None:
                return None
            message = self.sides.builder(accept, raw.kind).minimal(kind.tree)
            if isinstance(message, dict):
                message["command"] = raw.facts["command"]
            # The schemas of both sides accept the reply; the old side's command metadata does not.
            found = self._verify_beyond_schema(message, raw.kind, accept)
            return found
        return None

    def _verify_beyond_schema(self, message: Any, kind: str, accept: str) -> Witness | None:
        """A witness that both sides' schemas accept and only the rejecting side's registry refuses."""
        reject = _other(accept)
        checks: dict[str, dict[str, bool]] = {}
        for side in (accept, reject):
            found = self.sides.kinds(side).get(kind)
            if found is None:
                return None
            verdicts = checker(found.bundle).verdicts(message)
            checks[side] = verdicts.as_dict()
            if verdicts.agreed is not True:
                return None
        direction = self.sides.kinds(accept)[kind].direction
        kit_a, kit_r = self.sides.validator(accept), self.sides.validator(reject)
        if kit_a is None or kit_r is None:
            return None  # the refusal lives in the kit's registry rules: nothing else can judge it
        if kit_a.check(message, direction)[1]:
            return None
        _, problems = kit_r.check(message, direction)
        if not problems:
            return None
        checks[f"{accept} (kit)"] = {"MessageValidator": True}
        checks[f"{reject} (kit)"] = {"MessageValidator": False}
        rejection = [f"{p.path}: {p.message}" + (f" ({p.requirement})" if p.requirement else "") for p in problems]
        return Witness(kind, accept, "", message, rejection[:5], checks)


def mentioned_values(*nodes: Any) -> list[Any]:
    """Values a schema names, and the integers next to its bounds: where two schemas most often part
    (`not: {const: 5}` against `not: {enum: [5, 6]}` differ exactly at 6)."""
    found: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        if "const" in node:
            found.append(node["const"])
        if isinstance(node.get("enum"), list):
            found.extend(node["enum"])
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"):
            value = node.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                found.extend((value - 1, value, value + 1))
        for key, value in node.items():
            if key not in ("const", "enum") and isinstance(value, (dict, list)):
                walk(value)

    for node in nodes:
        walk(node)
    unique: dict[str, Any] = {}
    for value in found:
        unique.setdefault(json.dumps(value, sort_keys=True), value)
    return list(unique.values())[:200]


def _registry_direction(rule_id: str) -> str:
    return "response" if rule_id.startswith(("CMD-ERROR", "ERROR-CODE")) else "request"


def _complements(a: dict[str, Any], r: dict[str, Any], facts: dict[str, Any]) -> list[dict[str, Any]]:
    """Schemas for values inside `a`'s bound but outside `r`'s, for the bound keyword that changed."""
    out: list[dict[str, Any]] = []
    counts = {"minLength": "maxLength", "maxLength": "minLength", "minItems": "maxItems", "maxItems": "minItems",
              "minProperties": "maxProperties", "maxProperties": "minProperties"}
    for keyword, opposite in counts.items():
        if keyword in r and r.get(keyword) != a.get(keyword):
            bound = r[keyword]
            limit = bound - 1 if keyword.startswith("min") else bound + 1
            if limit >= 0:
                out.append({**a, opposite: limit})
    for keyword in ("minimum", "exclusiveMinimum"):
        if keyword in r and r.get(keyword) != a.get(keyword):
            out.append({**a, "exclusiveMaximum" if keyword == "minimum" else "maximum": r[keyword]})
    for keyword in ("maximum", "exclusiveMaximum"):
        if keyword in r and r.get(keyword) != a.get(keyword):
            out.append({**a, "exclusiveMinimum" if keyword == "maximum" else "minimum": r[keyword]})
    if "multipleOf" in r and isinstance(r["multipleOf"], int):
        out.append({**a, "minimum": 1, "maximum": r["multipleOf"] - 1} if r["multipleOf"] > 1 else a)
    return out
