"""The schema registry: loads `schemas/`, answers what the protocol's data says, and bundles.

The JSON files in `schemas/` are the only place a field list lives. This module reads them and derives
everything else from them: the command set, which commands are session-scoped or keep durable retry
replies, which errors each command may return, the error codes (the `code` constants of error.json's
variants: the one list there is), and self-contained ("bundled") schema documents for validators,
generators and Rust code generators. `stui_protocol_kit.protocol.facts` turns what it reads into the
Python symbols the rest of the kit imports. It names only the envelope's structural members (`command`,
`parameters`, `result`, `error`, `code`, `status`), which the protocol dispatches on.

It must never restate a field list, and never do network I/O: every `$ref` resolves inside `schemas/`.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

DIALECT = "https://json-schema.org/draft/2020-12/schema"
BASE_URI = "https://stui.dev/schemas/v1/"

# Keywords that tools in our chain mishandle (see spec/14-schemas.md); a test keeps them out.
FORBIDDEN_KEYWORDS = frozenset(
    {"prefixItems", "unevaluatedProperties", "unevaluatedItems", "dependentRequired", "$dynamicRef"}
)


def schema_dir() -> Path:
    """Where the schema files are: inside the installed package, or the source tree's `schemas/`."""
    # Installed, `stui_protocol_kit/schemas` sits beside `stui_protocol_kit/protocol`; in the source tree
    # `schemas/` sits beside `protocol/`: the same relative place either way.
    return Path(__file__).resolve().parent.parent / "schemas"


@dataclass(frozen=True)
class CommandInfo:
    """What `schemas/commands/<name>.json` says about one command."""

    name: str
    description: str
    session_scoped: bool
    capability: str | None
    durable_retry: bool  # its replies are kept durably for retries when `retry.durable` is announced
    errors: tuple[str, ...]
    # Its replies are kept in the retry cache (RTY-1): commands that change something. Read-only ones
    # are safe to execute again, and session.create is never replayed (its reply holds a token, RTY-11).
    retry_cached: bool = False


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[._]", name))


class SchemaRegistry:
    """All v1 schema documents, keyed by absolute URI, plus the bundles derived from them."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or schema_dir()
        self.documents: dict[str, dict[str, Any]] = {}
        self.paths: dict[str, str] = {}
        for path in sorted(self.directory.rglob("*.json")):
            rel = path.relative_to(self.directory).as_posix()
            if rel.startswith("bundle/"):
                continue  # generated output, never an input
            doc = json.loads(path.read_text(encoding="utf-8"))
            uri = doc.get("$id") or urljoin(BASE_URI, rel)
            self.documents[uri] = doc
            self.paths[uri] = rel
        self.commands: dict[str, CommandInfo] = {}
        for uri, doc in self.documents.items():
            if self.paths[uri].startswith("commands/"):
                meta = doc["x-stui-command"]
                self.commands[doc["title"]] = CommandInfo(
                    name=doc["title"],
                    description=doc.get("description", ""),
                    session_scoped=bool(meta["session_scoped"]),
                    capability=meta.get("capability"),
                    durable_retry=bool(meta.get("durable_retry", False)),
                    retry_cached=bool(meta.get("retry_cached", False)),
                    errors=tuple(meta["errors"]),
                )
        # The error registry is error.json's `oneOf`: one variant per code, tagged by a `code` constant.
        self._error_variants: dict[str, dict[str, Any]] = {
            variant["properties"]["code"]["const"]: variant for variant in self.document("error.json")["oneOf"]
        }
        self.error_codes: tuple[str, ...] = tuple(self._error_variants)

    # -- lookups ---------------------------------------------------------------------------------

    def uri(self, rel: str) -> str:
        return urljoin(BASE_URI, rel)

    def document(self, rel: str) -> dict[str, Any]:
        return self.documents[self.uri(rel)]

    def command_uri(self, command: str) -> str:
        return self.uri(f"commands/{command}.json")

    def error_variant(self, code: str) -> dict[str, Any]:
        """error.json's variant for `code` (KeyError for a code v1 does not define)."""
        return self._error_variants[code]

    def resolve(self, ref: str, base: str) -> tuple[str, str, dict[str, Any]]:
        """Resolve `ref` against `base`; return (document URI, def name or "", schema)."""
        target = urljoin(base, ref)
        doc_uri, fragment = urldefrag(target)
        doc = self.documents.get(doc_uri)
        if doc is None:
            raise KeyError(f"$ref {ref!r} from {base} leaves schemas/ ({doc_uri})")
        if fragment == "":
            root = {k: v for k, v in doc.items() if k not in ("$schema", "$id", "$defs", "x-stui-command")}
            return doc_uri, "", root
        match = re.fullmatch(r"/\$defs/([A-Za-z0-9_]+)", fragment)
        if not match:
            raise KeyError(f"$ref {ref!r}: only #/$defs/NAME fragments are used in v1")
        return doc_uri, match.group(1), doc["$defs"][match.group(1)]

    def local_name(self, doc_uri: str, def_name: str) -> str:
        """The name a definition gets inside a bundle: unique, and readable as a Rust type name."""
        rel = self.paths[doc_uri]
        if rel.startswith("commands/"):
            return _camel(self.documents[doc_uri]["title"]) + (def_name or "Command")
        if rel == "response.json":
            return (def_name or "Any") + "Response"
        if rel == "error.json" and not def_name:
            return "ErrorBody"
        if rel == "state.json" and not def_name:
            return "StateDocument"
        if not def_name:
            return _camel(rel.removesuffix(".json"))
        return def_name

    # -- bundling ---------------------------------------------------------------------------------

    def bundle(self, root: dict[str, Any], base: str, title: str | None = None) -> dict[str, Any]:
        """A self-contained copy of `root` (whose refs are relative to `base`): every `$ref` points
        into the result's own `$defs`, so generators that fetch nothing can use it."""
        defs: dict[str, Any] = {}
        owners: dict[str, str] = {}

        def rewrite(node: Any, node_base: str) -> Any:
            if isinstance(node, dict):
                out = {}
                for key, value in node.items():
                    if key == "$ref":
                        out[key] = "#/$defs/" + include(value, node_base)
                    elif key in ("$defs", "$schema", "$id", "x-stui-command"):
                        continue
                    else:
                        out[key] = rewrite(value, node_base)
                return out
            if isinstance(node, list):
                return [rewrite(item, node_base) for item in node]
            return node

        def include(ref: str, ref_base: str) -> str:
            doc_uri, def_name, target = self.resolve(ref, ref_base)
            name = self.local_name(doc_uri, def_name)
            key = f"{doc_uri}#{def_name}"
            if name in owners:
                if owners[name] != key:
                    raise ValueError(f"bundle name clash: {name} for {owners[name]} and {key}")
                return name
            owners[name] = key
            defs[name] = None  # reserve first: recursive definitions terminate
            defs[name] = rewrite(target, doc_uri)
            return name

        body = rewrite(copy.deepcopy(root), base)
        doc: dict[str, Any] = {"$schema": DIALECT}
        if title:
            doc["title"] = title
        doc.update(body)
        if defs:
            doc["$defs"] = dict(sorted(defs.items()))
        return doc

    def request_schema(self, command: str) -> dict[str, Any]:
        """The whole request message for one command: the envelope with `command` fixed and
        `parameters` bound to the command's schema."""
        envelope = copy.deepcopy(self.document("request.json"))
        envelope["properties"]["command"] = {"const": command}
        envelope["properties"]["parameters"] = {"$ref": f"commands/{command}.json#/$defs/Parameters"}
        return self.bundle(envelope, self.uri("request.json"), title=f"{command} request")

    def envelope_schema(self) -> dict[str, Any]:
        return self.bundle(self.document("request.json"), self.uri("request.json"), title="request envelope")

    def success_schema(self, command: str) -> dict[str, Any]:
        success = copy.deepcopy(self.document("response.json")["$defs"]["Success"])
        success["properties"]["command"] = {"const": command}
        success["properties"]["result"] = {"$ref": f"commands/{command}.json#/$defs/Result"}
        return self.bundle(success, self.uri("response.json"), title=f"{command} success response")

    def error_response_schema(self, code: str | None = None) -> dict[str, Any]:
        """The error reply; with `code`, its `error` bound to that code's variant (exact messages)."""
        error = copy.deepcopy(self.document("response.json")["$defs"]["Error"])
        title = "error response"
        if code is not None:
            variant = self.error_variant(code)
            error["properties"]["error"] = _absolutize(variant, self.uri("error.json"))
            title = f"{code} error response"
        return self.bundle(error, self.uri("response.json"), title=title)

    def response_schema(self) -> dict[str, Any]:
        return self.bundle(self.document("response.json"), self.uri("response.json"), title="response")

    def component_schema(self, rel_ref: str, title: str | None = None) -> dict[str, Any]:
        """Any one definition, bundled: e.g. `commands/evaluate.json#/$defs/Parameters`."""
        return self.bundle({"$ref": rel_ref}, BASE_URI, title=title or rel_ref)

    def parameters_schema(self, command: str) -> dict[str, Any]:
        return self.component_schema(f"commands/{command}.json#/$defs/Parameters", f"{command} parameters")

    def result_schema(self, command: str) -> dict[str, Any]:
        return self.component_schema(f"commands/{command}.json#/$defs/Result", f"{command} result")

    def rust_bundle(self) -> dict[str, Any]:
        """One document for Rust code generators (typify, quicktype): every type under top-level
        `$defs`, requests and successes as `oneOf`s of inline variants tagged by a required
        constant `command`, which typify turns into serde-tagged enums."""
        defs: dict[str, Any] = {}

        def add(name: str, schema: dict[str, Any], base: str) -> None:
            bundled = self.bundle(schema, base)
            bundled.pop("$schema", None)
            for key, value in bundled.pop("$defs", {}).items():
                if defs.get(key, value) != value:
                    raise ValueError(f"bundle name clash: {key}")
                defs[key] = value
            defs[name] = bundled

        requests, successes = [], []
        for command in self.commands:
            req = copy.deepcopy(self.document("request.json"))
            req["properties"]["command"] = {"const": command}
            req["properties"]["parameters"] = {"$ref": f"commands/{command}.json#/$defs/Parameters"}
            req["title"] = _camel(command) + "Request"
            requests.append(req)
            ok = copy.deepcopy(self.document("response.json")["$defs"]["Success"])
            ok["properties"]["command"] = {"const": command}
            ok["properties"]["result"] = {"$ref": f"commands/{command}.json#/$defs/Result"}
            ok["title"] = _camel(command) + "Success"
            successes.append(ok)
        add("Request", {"oneOf": requests}, self.uri("request.json"))
        add("SuccessResponse", {"oneOf": successes}, self.uri("response.json"))
        add("ErrorResponse", self.document("response.json")["$defs"]["Error"], self.uri("response.json"))
        defs["Response"] = {
            "anyOf": [{"$ref": "#/$defs/SuccessResponse"}, {"$ref": "#/$defs/ErrorResponse"}]
        }
        add("StateDocument", {"$ref": "state.json#/$defs/State"}, BASE_URI)
        defs["StateDocument"] = {"$ref": "#/$defs/State"}
        return {
            "$schema": DIALECT,
            "$comment": "Generated by `python -m stui_protocol_kit.protocol.bundle` from schemas/; do not edit.",
            "title": "STUI protocol v1",
            "$defs": dict(sorted(defs.items())),
        }

    def bundles(self) -> dict[str, dict[str, Any]]:
        """Every generated document, by file name under schemas/bundle/."""
        out: dict[str, dict[str, Any]] = {"stui-protocol-v1.json": self.rust_bundle()}
        out["request.envelope.json"] = self.envelope_schema()
        out["response.json"] = self.response_schema()
        out["state.json"] = self.component_schema("state.json#/$defs/State", "session state document")
        for command in self.commands:
            out[f"request.{command}.json"] = self.request_schema(command)
            out[f"response.{command}.json"] = self.success_schema(command)
        for code in self.error_codes:
            out[f"error.{code}.json"] = self.error_response_schema(code)
        return out


def _absolutize(node: Any, base: str) -> Any:
    """A copy of `node` with every `$ref` made absolute, so it can be moved into another document."""
    if isinstance(node, dict):
        return {k: (urljoin(base, v) if k == "$ref" else _absolutize(v, base)) for k, v in node.items()}
    if isinstance(node, list):
        return [_absolutize(item, base) for item in node]
    return node


def iter_keywords(node: Any) -> Iterator[str]:
    """Every object key in a schema tree (used to keep forbidden keywords out)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            if key not in ("properties", "$defs"):
                yield from iter_keywords(value)
            else:
                for sub in value.values():
                    yield from iter_keywords(sub)
    elif isinstance(node, list):
        for item in node:
            yield from iter_keywords(item)


@cache
def registry() -> SchemaRegistry:
    """The process-wide registry, loaded once."""
    return SchemaRegistry()
