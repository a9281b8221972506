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
    """A copy of a JSON value with every secret member's value replaced. Iterative, so a message nested as
    deep as any target allows is recorded like any other."""
    secrets = secret_member_names()

    def copy_of(node: Any) -> Any:
        if isinstance(node, dict):
            return {}
        if isinstance(node, list):
            return [None] * len(node)
        return node

    root = copy_of(value)
    pending: list[tuple[Any, Any]] = [(value, root)] if isinstance(value, (dict, list)) else []
    while pending:
        source, target = pending.pop()
        if isinstance(source, dict):
            for key, item in source.items():
                if key in secrets:
                    # Whatever a secret member holds is redacted, also when a client sent it with the wrong type.
                    target[key] = redact_token(item if isinstance(item, str)
                                               else json.dumps(item, sort_keys=True, default=str))
                else:
                    target[key] = copy_of(item)
                    if isinstance(item, (dict, list)):
                        pending.append((item, target[key]))
        else:
            for i, item in enumerate(source):
                target[i] = copy_of(item)
                if isinstance(item, (dict, list)):
                    pending.append((item, target[i]))
    return root
