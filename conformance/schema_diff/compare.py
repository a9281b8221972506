"""The walk over two inlined schemas of one message kind that lists what changed, rule by rule.

`compare_kind(old, new)` walks both trees in step (members by name, `items`, map values, property
names, `oneOf`/`anyOf` variants matched by content, then by their constant discriminator such as
`code` or `reason`, then by title) and emits a `RawChange` per difference, named by a rule of
`rules.py`. Before comparing, nodes are normalised so that what cannot change a verdict is no change:
annotations are set aside (reported as ANNOTATION-CHANGED), `const` is a one-value `enum`, enum values,
`required` and variants are compared as sets, a type list as a set in which `number` includes
`integer`, `additionalProperties: false` and `unevaluatedProperties: false` on a plain object both
close it, and patterns are compared after normalisation (`patterns.py`).

Two families are not decided here: a pattern that differs after normalisation and any other keyword
(`not`, `allOf`, `format`, ...). Those are emitted with `rule_id=None` and a family, and `witness.py`
decides them by searching for strings or messages one side accepts and the other rejects.

This module must never search, generate or validate: it only compares schema text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from stui_protocol_kit.conformance.schema_diff import patterns
from stui_protocol_kit.conformance.schema_diff.kinds import (
    SCHEMA_LISTS,
    SCHEMA_MAPS,
    SCHEMA_VALUED,
    Kind,
    Schema,
    is_annotation,
)

JSON_TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")
NUMERIC = frozenset({"integer", "number"})


@dataclass(frozen=True)
class Step:
    """One step from a message's root schema to a node: a member, array items, map values, property
    names, or a oneOf/anyOf variant (with its index on each side)."""

    kind: str  # "prop", "items", "value", "names", "variant"
    name: str = ""  # member name, or the variant's label
    keyword: str = ""  # for variants: "oneOf" or "anyOf"
    old_index: int | None = None
    new_index: int | None = None

    def text(self) -> str:
        if self.kind == "prop":
            return f".{self.name}" if self.name.isidentifier() else f"[{json.dumps(self.name)}]"
        return {"items": "[*]", "value": ".*", "names": "{name}"}.get(self.kind, f"<{self.name}>")


def path_text(steps: tuple[Step, ...]) -> str:
    return "$" + "".join(step.text() for step in steps)


@dataclass
class RawChange:
    """One difference at one place of one message kind."""

    rule_id: str | None  # None: a witness-decided family (see `family`)
    family: str  # the rule name without the REQ-/RES- prefix, or "PATTERN" / "SCHEMA" when undecided
    kind: str  # message kind key
    direction: str  # "request" or "response"
    steps: tuple[Step, ...]  # root -> the node the change is at (for a member: its object)
    detail: str
    old: Schema  # the node at `steps` on each side (None when absent)
    new: Schema
    origin: str  # where the nearest enclosing definition is written (new side preferred)
    rel_steps: tuple[Step, ...]  # steps below that definition
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return path_text(self.steps)

    @property
    def location(self) -> str:
        if self.direction == "any":  # registry-level: the file (and member) is the place
            return self.origin
        rel = path_text(self.rel_steps)
        return f"{self.origin} {rel}" if self.origin else rel


# -- normalisation ---------------------------------------------------------------------------------


def as_schema(node: Schema) -> dict[str, Any]:
    """A boolean schema as the object schema with the same meaning."""
    if node is True or node is None:
        return {}
    if node is False:
        return {"not": {}}
    return node


def canon_value(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def normal(node: Schema) -> Any:
    """A normal form of a schema: annotations dropped, const as enum, sets sorted, patterns normalised."""
    node = as_schema(node)
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if is_annotation(key):
            continue
        if key in SCHEMA_VALUED:
            out[key] = normal(value)
        elif key in ("oneOf", "anyOf", "allOf") and isinstance(value, list):
            out[key] = sorted((normal(v) for v in value), key=canon_value)
        elif key in SCHEMA_LISTS and isinstance(value, list):
            out[key] = [normal(v) for v in value]
        elif key in SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {k: normal(v) for k, v in value.items()}
        elif key == "const":
            out["enum"] = [value]
        elif key == "enum" and isinstance(value, list):
            out["enum"] = sorted(value, key=canon_value)
        elif key == "required" and isinstance(value, list):
            out[key] = sorted(set(value))
        elif key == "type":
            types = types_of(node)
            out[key] = sorted(types) if types is not None else value
        elif key == "pattern" and isinstance(value, str):
            out[key] = patterns.normal_form(value)
        else:
            out[key] = value
    if out.get("additionalProperties", True) is True:
        out.pop("additionalProperties", None)
    if "additionalProperties" not in out and out.get("unevaluatedProperties") is False and not _applicators(out):
        out["additionalProperties"] = out.pop("unevaluatedProperties")  # same meaning on a plain object
    if out.get("uniqueItems") is False:
        out.pop("uniqueItems")
    if "minLength" in out and out["minLength"] == 0:
        out.pop("minLength")
    return out


def canon(node: Schema) -> str:
    return canon_value(normal(node))


def types_of(node: dict[str, Any]) -> frozenset[str] | None:
    """The JSON types a node allows by its `type` keyword (None: any); `number` includes `integer`."""
    raw = node.get("type")
    if raw is None:
        return None
    types = set(raw if isinstance(raw, list) else [raw])
    if "number" in types:
        types.discard("integer")
    return frozenset(types)


def effective_types(node: dict[str, Any]) -> frozenset[str] | None:
    """The types a node can actually hold: its `type`, narrowed by the types of its enum values
    (`{"const": "1.0"}` holds strings only, so adding `"type": "string"` to it changes nothing)."""
    declared = types_of(node)
    values = enum_of(node)
    if values is None:
        return declared
    held = {_value_type(v) for v in values}
    held = {"number" if t == "integer" and declared and "number" in declared and "integer" not in declared else t
            for t in held}
    if declared is not None:
        held = {t for t in held if _covers(declared, t)}
    if "number" in held:
        held.discard("integer")
    return frozenset(held)


def _covers(types: frozenset[str] | None, t: str) -> bool:
    return types is None or t in types or (t == "integer" and "number" in types)


def _value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if value is None:
        return "null"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "null")


def _applicators(node: dict[str, Any]) -> bool:
    return any(k in node for k in ("oneOf", "anyOf", "allOf", "if", "dependentSchemas", "$ref"))


def enum_of(node: dict[str, Any]) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    value = node.get("enum")
    return list(value) if isinstance(value, list) else None


def closure(node: dict[str, Any]) -> Schema:
    """What a member the object does not define may be: False (closed), True (open) or a schema."""
    if "additionalProperties" in node:
        return node["additionalProperties"]
    if "unevaluatedProperties" in node and not _applicators(node):
        return node["unevaluatedProperties"]
    return True


# Annotations with a meaning of their own, compared by registry_changes.py (CAPABILITY-*), not as text.
REGISTRY_ANNOTATIONS = frozenset({"x-stui-capabilities"})

# Keywords the walk compares itself; anything else goes to the witness-decided SCHEMA family.
HANDLED = frozenset({
    "type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "minLength", "maxLength", "pattern", "items", "minItems", "maxItems", "uniqueItems", "properties", "required",
    "additionalProperties", "propertyNames", "minProperties", "maxProperties", "oneOf", "anyOf",
})

# (keyword, "lower"|"upper", family of types it applies to)
COUNT_BOUNDS = (
    ("minLength", "lower", "string"), ("maxLength", "upper", "string"),
    ("minItems", "lower", "array"), ("maxItems", "upper", "array"),
    ("minProperties", "lower", "object"), ("maxProperties", "upper", "object"),
)


# -- the walk ------------------------------------------------------------------------------------------


class Walker:
    def __init__(self, old: Kind, new: Kind, versions: tuple[str, str] | None = None):
        self.old, self.new = old, new
        self.direction = new.direction
        self.versions = versions
        self.changes: list[RawChange] = []

    # ---- emitting

    def emit(self, family: str, steps: tuple[Step, ...], o: Schema, n: Schema, detail: str, ctx: tuple[str, tuple],
             decided: bool = True, **facts: Any) -> None:
        if family in ("ANNOTATION-CHANGED", "PATTERN-RESPELLED"):
            rule_id: str | None = family
        elif decided:
            rule_id = ("REQ-" if self.direction == "request" else "RES-") + family
        else:
            rule_id = None
        origin, rel = ctx
        self.changes.append(RawChange(rule_id, family, self.new.key, self.direction, steps, detail, o, n, origin,
                                      rel, facts))

    # ---- nodes

    def node(self, o_raw: Schema, n_raw: Schema, steps: tuple[Step, ...], ctx: tuple[str, tuple]) -> None:
        where = self.new.origins.get(n_raw) or self.old.origins.get(o_raw)
        if where:
            ctx = (where, ())
        o, n = as_schema(o_raw), as_schema(n_raw)
        old_notes = {k: v for k, v in o.items() if is_annotation(k) and k not in REGISTRY_ANNOTATIONS}
        new_notes = {k: v for k, v in n.items() if is_annotation(k) and k not in REGISTRY_ANNOTATIONS}
        if old_notes != new_notes:
            keys = sorted(k for k in set(old_notes) | set(new_notes) if old_notes.get(k) != new_notes.get(k))
            self.emit("ANNOTATION-CHANGED", steps, o_raw, n_raw, "annotation " + ", ".join(keys) + " changed", ctx,
                      keywords=keys)
        if canon_value(o) == canon_value(n):
            return
        if canon(o) == canon(n):
            if o.get("pattern") != n.get("pattern"):
                self._pattern(o, n, steps, ctx)  # written differently, same after normalisation
            self._annotations_below(o, n, steps, ctx)  # same assertions: only annotations can differ below
            return
        if self._version_bump(o, n, steps):
            return
        moved = [k for k in ("oneOf", "anyOf") if (k in o) != (k in n)]
        if moved:
            # A node that gains or loses its variants (members moved into oneOf branches, say) cannot be
            # compared keyword by keyword without misleading member rules: the witnesses decide it whole.
            words = [f"{k} {'added' if k in n else 'removed'}" for k in moved]
            self.emit("SCHEMA", steps, o, n, "node restructured: " + ", ".join(words), ctx, decided=False,
                      keywords=moved)
            return
        to, tn = effective_types(o), effective_types(n)
        self._types(o, n, to, tn, steps, ctx)
        self._values(o, n, steps, ctx)

        def applies(family: frozenset[str]) -> bool:
            return any(_covers(to, t) for t in family) and any(_covers(tn, t) for t in family)

        if applies(NUMERIC):
            self._numeric(o, n, to, tn, steps, ctx)
        if applies(frozenset({"string"})):
            self._counts(o, n, "string", steps, ctx)
            self._pattern(o, n, steps, ctx)
        if applies(frozenset({"array"})):
            self._counts(o, n, "array", steps, ctx)
            if bool(o.get("uniqueItems")) != bool(n.get("uniqueItems")):
                self.emit("CONSTRAINT-TIGHTENED" if n.get("uniqueItems") else "CONSTRAINT-LOOSENED", steps, o_raw,
                          n_raw, f"uniqueItems {bool(o.get('uniqueItems'))} -> {bool(n.get('uniqueItems'))}", ctx,
                          keyword="uniqueItems", old_value=o.get("uniqueItems"), new_value=n.get("uniqueItems"))
            if canon_value(o.get("items", True)) != canon_value(n.get("items", True)):
                self.node(o.get("items", True), n.get("items", True), (*steps, Step("items")),
                          (ctx[0], (*ctx[1], Step("items"))))
        if applies(frozenset({"object"})):
            self._counts(o, n, "object", steps, ctx)
            self._object(o, n, steps, ctx)
        self._variants(o, n, steps, ctx)
        self._rest(o, n, steps, ctx)

    def _annotations_below(self, o: dict[str, Any], n: dict[str, Any], steps: tuple[Step, ...],
                           ctx: tuple[str, tuple]) -> None:
        """Visit the sub-schemas of two nodes with equal assertions, for ANNOTATION-CHANGED."""

        def down(step: Step, a: Schema, b: Schema) -> None:
            self.node(a, b, (*steps, step), (ctx[0], (*ctx[1], step)))

        for name, sub in (n.get("properties") or {}).items():
            if name in (o.get("properties") or {}):
                down(Step("prop", name), o["properties"][name], sub)
        for key, step in (("items", Step("items")), ("additionalProperties", Step("value")),
                          ("propertyNames", Step("names"))):
            if isinstance(o.get(key), dict) and isinstance(n.get(key), dict):
                down(step, o[key], n[key])
        for keyword in ("oneOf", "anyOf"):
            if isinstance(o.get(keyword), list) and isinstance(n.get(keyword), list):
                pairs, _, _ = match_variants(o[keyword], n[keyword])
                for i, j in pairs:
                    down(Step("variant", variant_label(n[keyword][j], j), keyword, i, j), o[keyword][i], n[keyword][j])

    def _version_bump(self, o: dict[str, Any], n: dict[str, Any], steps: tuple[Step, ...]) -> bool:
        """The envelope's `version` constant changing from the old to the new protocol version is the
        version bump itself, which the version check reports; it is not a change of a message."""
        if self.versions is None or len(steps) != 1 or steps[0] != Step("prop", "version"):
            return False
        return enum_of(o) == [self.versions[0]] and enum_of(n) == [self.versions[1]]

    # ---- types and values

    def _types(self, o, n, to, tn, steps, ctx) -> None:
        if to == tn:
            return
        lost = sorted(t for t in (to if to is not None else JSON_TYPES) if not _covers(tn, t))
        gained = sorted(t for t in (tn if tn is not None else JSON_TYPES) if not _covers(to, t))
        if not lost and not gained:
            return
        family = "TYPE-CHANGED" if lost and gained else ("TYPE-NARROWED" if lost else "TYPE-WIDENED")
        self.emit(family, steps, o, n, f"type {_types_text(to)} -> {_types_text(tn)}", ctx, lost=lost, gained=gained)

    def _values(self, o, n, steps, ctx) -> None:
        eo, en = enum_of(o), enum_of(n)
        if eo is None and en is None:
            return
        if eo is None:
            self.emit("VALUES-RESTRICTED", steps, o, n, f"values restricted to {_values_text(en)}", ctx, values=en)
            return
        if en is None:
            self.emit("VALUES-UNRESTRICTED", steps, o, n, f"values no longer restricted to {_values_text(eo)}", ctx,
                      values=eo)
            return
        ko, kn = {canon_value(v): v for v in eo}, {canon_value(v): v for v in en}
        removed = [ko[k] for k in ko if k not in kn]
        added = [kn[k] for k in kn if k not in ko]
        if len(ko) == 1 and len(kn) == 1 and removed and added:
            self.emit("CONST-CHANGED", steps, o, n, f"constant {_values_text(removed)} -> {_values_text(added)}", ctx,
                      removed=removed, added=added)
            return
        if added:
            self.emit("ENUM-VALUE-ADDED", steps, o, n, f"value {_values_text(added)} added", ctx, values=added)
        if removed:
            self.emit("ENUM-VALUE-REMOVED", steps, o, n, f"value {_values_text(removed)} removed", ctx, values=removed)

    # ---- bounds

    def _numeric(self, o, n, to, tn, steps, ctx) -> None:
        integral = (to is not None and to <= {"integer"}) and (tn is not None and tn <= {"integer"})
        for side in ("lower", "upper"):
            bo, bn = _bound(o, side, integral), _bound(n, side, integral)
            if bo == bn:
                continue
            tighter = _tighter(bn, bo, side)
            keywords = [k for k in _BOUND_KEYS[side] if o.get(k) != n.get(k)]
            self.emit("CONSTRAINT-TIGHTENED" if tighter else "CONSTRAINT-LOOSENED", steps, o, n,
                      f"{side} bound {_bound_text(bo, side)} -> {_bound_text(bn, side)}", ctx, keyword=keywords[0]
                      if keywords else side, old_value=_bound_value(bo), new_value=_bound_value(bn), bound=side,
                      integral=integral)
        mo, mn = o.get("multipleOf"), n.get("multipleOf")
        if mo != mn:
            fo = Fraction(str(mo)) if mo is not None else None
            fn = Fraction(str(mn)) if mn is not None else None
            if fo is None:
                family = "CONSTRAINT-TIGHTENED"
            elif fn is None:
                family = "CONSTRAINT-LOOSENED"
            elif (fn / fo).denominator == 1:
                family = "CONSTRAINT-TIGHTENED"
            elif (fo / fn).denominator == 1:
                family = "CONSTRAINT-LOOSENED"
            else:
                family = "CONSTRAINT-CHANGED"
            self.emit(family, steps, o, n, f"multipleOf {mo} -> {mn}", ctx, keyword="multipleOf", old_value=mo,
                      new_value=mn)

    def _counts(self, o, n, family_type, steps, ctx) -> None:
        for keyword, side, applies_to in COUNT_BOUNDS:
            if applies_to != family_type:
                continue
            vo, vn = o.get(keyword), n.get(keyword)
            if side == "lower":
                vo, vn = vo or 0, vn or 0
            if vo == vn:
                continue
            tighter = vn > vo if side == "lower" else (vo is None or (vn is not None and vn < vo))
            family = "CONSTRAINT-TIGHTENED" if tighter else "CONSTRAINT-LOOSENED"
            if not tighter and applies_to == "object" and self.direction == "response":
                family = "MEMBER-COUNT-LOOSENED"
            self.emit(family, steps, o, n, f"{keyword} {o.get(keyword)} -> {n.get(keyword)}", ctx, keyword=keyword,
                      old_value=o.get(keyword), new_value=n.get(keyword), bound=side)

    def _pattern(self, o, n, steps, ctx) -> None:
        po, pn = o.get("pattern"), n.get("pattern")
        if po == pn:
            return
        if po is not None and pn is not None and patterns.normal_form(po) == patterns.normal_form(pn):
            self.emit("PATTERN-RESPELLED", steps, o, n, f"pattern {po!r} -> {pn!r} (same after normalisation)", ctx,
                      old_pattern=po, new_pattern=pn)
            return
        self.emit("PATTERN", steps, o, n, f"pattern {po!r} -> {pn!r}", ctx, decided=False, old_pattern=po,
                  new_pattern=pn)

    # ---- objects

    def _object(self, o, n, steps, ctx) -> None:
        po, pn = o.get("properties", {}) or {}, n.get("properties", {}) or {}
        ro, rn = set(o.get("required", []) or []), set(n.get("required", []) or [])
        co, cn = closure(o), closure(n)
        names = list(dict.fromkeys([*po, *ro, *pn, *rn]))
        for name in names:
            so, sn = _state(name, po, ro, co), _state(name, pn, rn, cn)
            vo = po.get(name, co if isinstance(co, dict) else True)
            vn = pn.get(name, cn if isinstance(cn, dict) else True)
            self._member(name, so, sn, vo, vn, o, n, steps, ctx)
        if co is False and cn is not False:
            self.emit("OBJECT-OPENED", steps, o, n, "object opened: members it does not define are allowed", ctx)
        elif co is not False and cn is False:
            self.emit("OBJECT-CLOSED", steps, o, n, "object closed: members it does not define are rejected", ctx)
        elif canon_value(co) != canon_value(cn):
            step = Step("value")
            self.node(co, cn, (*steps, step), (ctx[0], (*ctx[1], step)))
        no, nn = o.get("propertyNames", True), n.get("propertyNames", True)
        if canon_value(no) != canon_value(nn):
            step = Step("names")
            self.node(no, nn, (*steps, step), (ctx[0], (*ctx[1], step)))

    def _member(self, name, so, sn, vo, vn, o, n, steps, ctx) -> None:
        request = self.direction == "request"
        differs = canon(vo) != canon(vn)
        families: list[str] = []
        recurse = False
        pair = so + sn
        if so == sn:
            recurse = so in "RO"
        elif request:
            families = {
                "FR": ["MEMBER-REQUIRED-ADDED"], "FO": ["MEMBER-OPTIONAL-ADDED"],
                "RF": ["MEMBER-REQUIRED-REMOVED"], "OF": ["MEMBER-OPTIONAL-REMOVED"],
                "OR": ["MEMBER-MADE-REQUIRED"], "RO": ["MEMBER-MADE-OPTIONAL"],
                "UR": ["MEMBER-MADE-REQUIRED"] + (["MEMBER-CONSTRAINED"] if differs else []),
                "RU": ["MEMBER-MADE-OPTIONAL"] + (["MEMBER-UNCONSTRAINED"] if differs else []),
                "UO": ["MEMBER-CONSTRAINED"] if differs else [],
                "OU": ["MEMBER-UNCONSTRAINED"] if differs else [],
            }.get(pair, [])
            recurse = pair in ("OR", "RO")
        else:
            families = {
                "FR": ["MEMBER-REQUIRED-ADDED"], "UR": ["MEMBER-REQUIRED-ADDED"],
                "FO": ["MEMBER-OPTIONAL-ADDED"], "UO": ["MEMBER-OPTIONAL-ADDED"] if differs else [],
                "RU": ["MEMBER-REQUIRED-REMOVED"], "RF": ["MEMBER-REQUIRED-REMOVED", "MEMBER-FORBIDDEN"],
                "OU": ["MEMBER-OPTIONAL-REMOVED"] if differs else [], "OF": ["MEMBER-FORBIDDEN"],
                "OR": ["MEMBER-MADE-REQUIRED"], "RO": ["MEMBER-MADE-OPTIONAL"],
            }.get(pair, [])
            recurse = pair in ("OR", "RO")
        words = {"R": "required", "O": "optional", "U": "not defined (allowed)", "F": "not defined (rejected)"}
        for family in families:
            self.emit(family, steps, o, n, f"member {name!r}: {words[so]} -> {words[sn]}", ctx, member=name,
                      old_state=so, new_state=sn)
        if recurse and canon_value(vo) != canon_value(vn):
            step = Step("prop", name)
            self.node(vo, vn, (*steps, step), (ctx[0], (*ctx[1], step)))

    # ---- variants

    def _variants(self, o, n, steps, ctx) -> None:
        for keyword in ("oneOf", "anyOf"):
            lo, ln = o.get(keyword), n.get(keyword)
            if lo is None and ln is None:
                continue
            if not isinstance(lo, list) or not isinstance(ln, list):
                continue  # added or removed as a whole: decided in node() by the SCHEMA family
            pairs, lonely_old, lonely_new = match_variants(lo, ln)  # same variants in any order pair up
            for i, j in pairs:
                if canon_value(lo[i]) != canon_value(ln[j]):
                    step = Step("variant", variant_label(ln[j], j), keyword, i, j)
                    self.node(lo[i], ln[j], (*steps, step), (ctx[0], (*ctx[1], step)))
            for i in lonely_old:
                label = variant_label(lo[i], i)
                self.emit("VARIANT-REMOVED", steps, o, n, f"{keyword} variant {label} removed", ctx, keyword=keyword,
                          old_index=i, label=label)
            for j in lonely_new:
                label = variant_label(ln[j], j)
                self.emit("VARIANT-ADDED", steps, o, n, f"{keyword} variant {label} added", ctx, keyword=keyword,
                          new_index=j, label=label)

    # ---- everything else

    def _rest(self, o, n, steps, ctx) -> None:
        changed = []
        for key in sorted(set(o) | set(n)):
            if is_annotation(key) or key in HANDLED:
                continue
            if key == "unevaluatedProperties" and not _applicators(o) and not _applicators(n):
                continue  # compared as the object's closure
            if canon_value(normal({key: o[key]}) if key in o else None) != canon_value(
                    normal({key: n[key]}) if key in n else None):
                changed.append(key)
        if changed:
            self.emit("SCHEMA", steps, o, n, "keyword " + ", ".join(sorted(set(changed))) + " changed", ctx,
                      decided=False, keywords=sorted(set(changed)))


def _types_text(types: frozenset[str] | None) -> str:
    return "any" if types is None else "|".join(sorted(types))


def _state(name: str, props: dict, required: set, closed: Schema) -> str:
    if name in required:
        return "R"
    if name in props:
        return "O"
    return "F" if closed is False else "U"


_BOUND_KEYS = {"lower": ("minimum", "exclusiveMinimum"), "upper": ("maximum", "exclusiveMaximum")}


def _bound(node: dict[str, Any], side: str, integral: bool) -> tuple[Fraction, bool] | None:
    """The effective bound as (value, exclusive); for integers an exclusive bound is made inclusive."""
    inclusive_key, exclusive_key = _BOUND_KEYS[side]
    found: list[tuple[Fraction, bool]] = []
    if isinstance(node.get(inclusive_key), (int, float)) and not isinstance(node.get(inclusive_key), bool):
        found.append((Fraction(str(node[inclusive_key])), False))
    if isinstance(node.get(exclusive_key), (int, float)) and not isinstance(node.get(exclusive_key), bool):
        value = Fraction(str(node[exclusive_key]))
        if integral:
            whole = value.numerator // value.denominator
            found.append((Fraction(whole + 1 if side == "lower" else (whole if value.denominator != 1 else whole - 1)),
                          False))
        else:
            found.append((value, True))
    if not found:
        return None
    if side == "lower":
        return max(found, key=lambda b: (b[0], b[1]))
    return min(found, key=lambda b: (b[0], not b[1]))


def _tighter(new: tuple[Fraction, bool] | None, old: tuple[Fraction, bool] | None, side: str) -> bool:
    if old is None:
        return True
    if new is None:
        return False
    if side == "lower":
        return (new[0], new[1]) > (old[0], old[1])
    return (new[0], not new[1]) < (old[0], not old[1])


def _bound_value(bound: tuple[Fraction, bool] | None) -> int | float | None:
    if bound is None:
        return None
    value = bound[0]
    return int(value) if value.denominator == 1 else float(value)


def _bound_text(bound: tuple[Fraction, bool] | None, side: str) -> str:
    if bound is None:
        return "none"
    op = {("lower", False): ">=", ("lower", True): ">", ("upper", False): "<=", ("upper", True): "<"}[(side, bound[1])]
    return f"{op} {_bound_value(bound)}"


def _values_text(values: list[Any] | None) -> str:
    return ", ".join(canon_value(v) for v in values or [])


def discriminator(variant: Schema) -> tuple | None:
    """What tells a variant apart: its members with one constant value (e.g. code, reason), else its title."""
    if not isinstance(variant, dict):
        return None
    consts = []
    for name, sub in (variant.get("properties") or {}).items():
        values = enum_of(sub) if isinstance(sub, dict) else None
        if values is not None and len(values) == 1:
            consts.append((name, canon_value(values[0])))
    if consts:
        return ("const", *sorted(consts))
    if variant.get("title"):
        return ("title", variant["title"])
    return None


def variant_label(variant: Schema, index: int) -> str:
    if isinstance(variant, dict):
        if variant.get("title"):
            return str(variant["title"])
        key = discriminator(variant)
        if key and key[0] == "const":
            return ",".join(f"{name}={value}" for name, value in key[1:])
    return f"#{index}"


def match_variants(old: list[Schema], new: list[Schema]) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Pairs (old index, new index) of the same variant, and the variants left on each side: equal
    content first, then the same discriminator, then a single leftover on each side."""
    pairs: list[tuple[int, int]] = []
    free_old, free_new = list(range(len(old))), list(range(len(new)))
    for i in list(free_old):
        for j in free_new:
            if canon(old[i]) == canon(new[j]):
                pairs.append((i, j))
                free_old.remove(i)
                free_new.remove(j)
                break
    for i in list(free_old):
        key = discriminator(old[i])
        if key is None:
            continue
        for j in free_new:
            if discriminator(new[j]) == key:
                pairs.append((i, j))
                free_old.remove(i)
                free_new.remove(j)
                break
    if len(free_old) == 1 and len(free_new) == 1 and discriminator(old[free_old[0]]) is None \
            and discriminator(new[free_new[0]]) is None:
        pairs.append((free_old.pop(), free_new.pop()))
    return pairs, free_old, free_new


def compare_kind(old: Kind, new: Kind, versions: tuple[str, str] | None = None) -> list[RawChange]:
    """Every difference between two versions of one message kind."""
    walker = Walker(old, new, versions)
    walker.node(old.tree, new.tree, (), (new.root_origin or old.root_origin, ()))
    return walker.changes
