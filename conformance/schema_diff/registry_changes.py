"""Changes above single messages: the command set, capabilities, session scope, error codes.

These facts live in `x-stui-command` of each command file and in `error.json`'s registry and are read
through `SchemaRegistry` (`commands`, `error_codes`), never restated. Each difference becomes a
`RawChange` with a rule of the CMD-* / ERROR-CODE-* family (`rules.py`):

- a command only NEW has: CMD-ADDED when it needs a capability no OLD command uses,
  CMD-ADDED-UNDER-EXISTING-CAPABILITY when an OLD command already uses that capability (old servers
  announcing it do not serve the new command), CMD-ADDED-MANDATORY without a capability;
- a command only OLD has: CMD-REMOVED, or CMD-OPTIONAL-REMOVED when it was capability-gated;
- a command's capability added, dropped or renamed, its session scope or `durable_retry` flipped;
- a capability name added to or removed from hello.json's `x-stui-capabilities`;
- an error code a command may answer added (CMD-ERROR-ADDED) or removed (CMD-ERROR-REMOVED), and codes
  added to or removed from the registry.

A new command's own messages are not compared member by member: there is nothing to compare them with.
This module must never generate or validate messages.
"""

from __future__ import annotations

from stui_protocol_kit.conformance.schema_diff.compare import RawChange
from stui_protocol_kit.protocol.schemas import SchemaRegistry


def declared_capabilities(registry: SchemaRegistry) -> set[str] | None:
    """The capability names hello.json's `x-stui-capabilities` annotation defines (None without one)."""
    found: set[str] | None = None

    def walk(node: object) -> None:
        nonlocal found
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "x-stui-capabilities" and isinstance(value, dict):
                    found = (found or set()) | set(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    try:
        walk(registry.document("commands/hello.json"))
    except KeyError:
        return None
    return found


def _stated(registry: SchemaRegistry, command: str, key: str) -> object | None:
    """A member of a command's x-stui-command as written (None when the file does not state it)."""
    meta = registry.document(f"commands/{command}.json").get("x-stui-command") or {}
    return meta.get(key)


def capabilities(registry: SchemaRegistry) -> set[str]:
    """Every capability name a side knows: declared in hello.json, or named by a command."""
    used = {info.capability for info in registry.commands.values() if info.capability}
    return used | (declared_capabilities(registry) or set())


def _change(rule_id: str, kind: str, detail: str, origin: str, **facts: object) -> RawChange:
    return RawChange(rule_id, rule_id, kind, "any", (), detail, None, None, origin, (), dict(facts))


def registry_changes(old: SchemaRegistry, new: SchemaRegistry) -> list[RawChange]:
    out: list[RawChange] = []
    old_capabilities = capabilities(old)
    for name, info in new.commands.items():
        where = f"commands/{name}.json"
        if name not in old.commands:
            if info.capability is None:
                out.append(_change("CMD-ADDED-MANDATORY", f"request {name}", f"command {name!r} added without a "
                                   "capability", where, command=name))
            elif info.capability in old_capabilities:
                users = sorted(c for c, i in old.commands.items() if i.capability == info.capability)
                out.append(_change("CMD-ADDED-UNDER-EXISTING-CAPABILITY", f"request {name}",
                                   f"command {name!r} added behind capability {info.capability!r}, which old servers "
                                   f"already announce for {', '.join(users)}", where, command=name,
                                   capability=info.capability))
            else:
                out.append(_change("CMD-ADDED", f"request {name}", f"command {name!r} added behind the new capability "
                                   f"{info.capability!r}", where, command=name, capability=info.capability))
            continue
        before = old.commands[name]
        if before.capability != info.capability:
            if before.capability is None:
                rule, text = "CMD-MADE-OPTIONAL", f"now needs capability {info.capability!r}"
            elif info.capability is None:
                rule, text = "CMD-MADE-MANDATORY", f"no longer needs capability {before.capability!r}"
            else:
                rule, text = "CMD-CAPABILITY-RENAMED", f"capability {before.capability!r} -> {info.capability!r}"
            out.append(_change(rule, f"request {name}", f"command {name!r}: {text}", where, command=name,
                               old_capability=before.capability, new_capability=info.capability))
        if before.session_scoped != info.session_scoped:
            out.append(_change("CMD-SCOPE-CHANGED", f"request {name}", f"command {name!r}: session_scoped "
                               f"{before.session_scoped} -> {info.session_scoped}", where, command=name))
        was, now = _stated(old, name, "durable_retry"), _stated(new, name, "durable_retry")
        if was is not None and now is not None and bool(was) != bool(now):
            # Only when both sides state it: older schema sets left the flag to prose (spec 10), and
            # "not written down yet" is not "false".
            rule = "CMD-DURABLE-RETRY-ADDED" if now else "CMD-DURABLE-RETRY-REMOVED"
            out.append(_change(rule, f"request {name}", f"command {name!r}: durable_retry {was} -> {now}", where,
                               command=name))
        for code in info.errors:
            if code not in before.errors:
                out.append(_change("CMD-ERROR-ADDED", f"error {code}", f"command {name!r} may now answer {code}",
                                   f"{where} x-stui-command.errors", command=name, code=code))
        for code in before.errors:
            if code not in info.errors:
                out.append(_change("CMD-ERROR-REMOVED", f"error {code}", f"command {name!r} no longer answers {code}",
                                   f"{where} x-stui-command.errors", command=name, code=code))
    for name, info in old.commands.items():
        if name not in new.commands:
            rule = "CMD-OPTIONAL-REMOVED" if info.capability else "CMD-REMOVED"
            gate = f" (capability {info.capability!r})" if info.capability else ""
            out.append(_change(rule, f"request {name}", f"command {name!r}{gate} removed", f"commands/{name}.json",
                               command=name))
    declared_old, declared_new = declared_capabilities(old), declared_capabilities(new)
    if declared_old is None or declared_new is None:
        declared_old = declared_new = set()  # one side does not list them (older schema sets): not compared
    for capability in sorted(declared_new - declared_old):
        out.append(_change("CAPABILITY-ADDED", "success hello", f"capability {capability!r} defined",
                           "commands/hello.json x-stui-capabilities", capability=capability))
    for capability in sorted(declared_old - declared_new):
        out.append(_change("CAPABILITY-REMOVED", "success hello", f"capability {capability!r} no longer defined",
                           "commands/hello.json x-stui-capabilities", capability=capability))
    for code in new.error_codes:
        if code not in old.error_codes:
            out.append(_change("ERROR-CODE-ADDED", f"error {code}", f"error code {code} added", "error.json",
                               code=code))
    for code in old.error_codes:
        if code not in new.error_codes:
            out.append(_change("ERROR-CODE-REMOVED", f"error {code}", f"error code {code} removed", "error.json",
                               code=code))
    return out
