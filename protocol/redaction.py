"""Secret redaction for logs, transcripts and reports (spec SEC).

Which members hold secrets is read from the schemas: every property whose schema is the common
`Token` type. A redacted token keeps a short digest prefix so two transcript lines can still be seen
to carry the same token, without the token being recoverable.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from stui_protocol_kit.protocol.schemas import registry


@cache
def secret_member_names() -> frozenset[str]:
    """Names of object members typed as `common.json#/$defs/Token` anywhere in the schemas."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                for name, sub in props.items():
                    if isinstance(sub, dict) and str(sub.get("$ref", "")).endswith("common.json#/$defs/Token"):
                        names.add(name)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for doc in registry().documents.values():
        walk(doc)
    return frozenset(names)


def redact_token(token: str) -> str:
    return "<redacted:" + hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:8] + ">"


def redact(value: Any) -> Any:
    """A copy of a JSON value with every secret member's string value replaced."""
    secrets = secret_member_names()

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            # Whatever a secret member holds is redacted, also when a client sent it with the wrong type.
            return {
                k: (redact_token(v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str))
                    if k in secrets else walk(v))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    return walk(value)
