"""The rule table of `stui-conformance diff`: every kind of schema change it knows, and its verdict.

A rule says what changed, in which direction of the protocol (requests are written by clients and read
by servers; success results, error replies and the state document the other way), whom the change
breaks, how severe it is, which version bump the spec asks for, and why, citing the spec.

The two questions behind every verdict, for a change that makes NEW accept less (narrowing) or more
(widening) than OLD:

- requests: narrowing breaks old clients (a new server rejects what they send); widening breaks old
  servers (they reject what a new client sends, CMP-1: servers reject unknown members);
- replies: widening breaks old clients (a new server sends what they reject), except where the spec
  makes clients ignore it (CMP-2: unknown members in results, details, limits and the state document);
  narrowing breaks old servers (a new client rejects what they send).

This module is data plus the Markdown rendering of the table for docs/schema-diff.md (a test keeps the
document equal to `markdown_table()`). It must never decide anything about a concrete schema.
"""

from __future__ import annotations

from dataclasses import dataclass

OLD_CLIENTS = "old clients"
OLD_SERVERS = "old servers"

# Severities, mildest first. `breaking` fails the diff by default; `ignore` exists only in overrides.
SEVERITIES = ("none", "info", "warning", "breaking")


@dataclass(frozen=True)
class Rule:
    id: str
    direction: str  # "request", "response" or "any" (registry-level and version rules)
    change: str  # what changed, in a few words
    breaks: frozenset[str]  # OLD_CLIENTS / OLD_SERVERS; empty when no conforming peer breaks
    severity: str  # one of SEVERITIES
    bump: str  # the version bump the spec asks for: "major", "minor" or "none"
    why: str  # the reason, citing the spec
    witness: str = "needed"  # "needed" (a witness is searched), "decides" (witnesses choose the rule), "none"
    label: str = ""  # the verdict's wording where it is not about peers (the version check)

    @property
    def verdict(self) -> str:
        if self.label:
            return self.label
        if self.breaks:
            return "breaking for " + " and ".join(sorted(self.breaks))
        if self.witness == "decides" and self.severity == "warning":
            return "no witness found"
        return "no change" if self.severity == "none" else "compatible"


_C = frozenset({OLD_CLIENTS})
_S = frozenset({OLD_SERVERS})
_CS = frozenset({OLD_CLIENTS, OLD_SERVERS})
_NONE: frozenset[str] = frozenset()

CMP1 = "spec 13.1 CMP-1: a server rejects request members the schemas do not define"
CMP2 = ("spec 13.1 CMP-2: clients ignore members they do not know in replies, results, details, limits and the "
        "state document")
MINOR = ("spec 3.1 and README 'Versioning': minor versions only add optional result members, commands, capabilities, "
         "limits and error codes for new commands")
MAJOR = "spec README 'Versioning': anything but those additions needs a new major version"
ENV2 = "spec 2.1 ENV-2: a server answers parameters that break the command's schema with InvalidRequest"
ENV3 = "spec 2.2 ENV-3/ENV-4: a reply matches its command's result schema or its code's error schema"


def _pair(name: str, change: str, *, req: frozenset[str], res: frozenset[str], req_why: str, res_why: str,
          severity: str | None = None, witness: str = "needed") -> list[Rule]:
    """The request and the response rule of one kind of change (`severity` overrides both)."""

    def make(prefix: str, breaks: frozenset[str], why: str) -> Rule:
        level = severity or ("breaking" if breaks else "info")
        bump = "major" if breaks else ("none" if level == "warning" else "minor")
        return Rule(f"{prefix}-{name}", "request" if prefix == "REQ" else "response", change, breaks, level, bump,
                    why, witness)

    return [make("REQ", req, req_why), make("RES", res, res_why)]


_NARROW_REQ = f"old clients send what a new server now rejects ({ENV2})"
_WIDE_REQ = "a new client may send what an old server rejects (spec 2.1 ENV-2; spec 3.1: needs a new major version)"
_WIDE_RES = f"a new server may send what an old client's schemas reject ({ENV3}; CMP-2 covers unknown members only)"
_NARROW_RES = (f"an old server's reply is rejected by a new client ({ENV3}); spec 3.1: a new client must read an "
               "old server")

RULES_LIST: list[Rule] = [
    # -- members of request objects (closed: additionalProperties false, CMP-1) -------------------
    Rule("REQ-MEMBER-REQUIRED-ADDED", "request", "new required member", _CS, "breaking", "major",
         f"old clients never send it ({ENV2}); new clients always send it and old servers reject it ({CMP1})"),
    Rule("REQ-MEMBER-OPTIONAL-ADDED", "request", "new optional member", _S, "breaking", "major",
         f"a new client that sends it is rejected by an old server ({CMP1}); spec 3.1 lists no optional "
         "request members among minor additions: gate it behind a new command and capability, or a major version"),
    Rule("REQ-MEMBER-REQUIRED-REMOVED", "request", "required member removed", _CS, "breaking", "major",
         f"old clients still send it and a new server rejects it ({CMP1}); new clients omit it and old servers "
         "require it (ENV-2)"),
    Rule("REQ-MEMBER-OPTIONAL-REMOVED", "request", "optional member removed", _C, "breaking", "major",
         f"old clients that still send it are rejected by a new server ({CMP1})"),
    Rule("REQ-MEMBER-MADE-REQUIRED", "request", "member made required", _C, "breaking", "major",
         f"old clients that omit it are rejected by a new server ({ENV2})"),
    Rule("REQ-MEMBER-MADE-OPTIONAL", "request", "member made optional", _S, "breaking", "major",
         "a new client that omits it is rejected by an old server, which still requires it (ENV-2)"),
    Rule("REQ-MEMBER-CONSTRAINED", "request", "member of an open object given a schema", _C, "breaking", "major",
         "inside the client's free-form documents (the only open request objects, CMP-1) old clients may have "
         "written any value there; a new server rejects the ones the new schema excludes (ENV-2)"),
    Rule("REQ-MEMBER-UNCONSTRAINED", "request", "member of an open object loses its schema", _S, "breaking", "major",
         "new clients may write values there that an old server still rejects (ENV-2)"),
    # -- members of reply objects (open: clients ignore unknown members, CMP-2) ---------------------
    Rule("RES-MEMBER-REQUIRED-ADDED", "response", "new required member", _S, "breaking", "major",
         f"old servers never send it, so a new client rejects their replies ({ENV3}); old clients ignore it ({CMP2}). "
         "This includes a new limit every hello must carry"),
    Rule("RES-MEMBER-OPTIONAL-ADDED", "response", "new optional member", _NONE, "info", "minor",
         f"old clients ignore it ({CMP2}); old servers do not send members their schemas do not define "
         f"(spec 2.2 ENV-9); {MINOR}. This includes a new optional hello limit (spec 3.1 'new limits')"),
    Rule("RES-MEMBER-REQUIRED-REMOVED", "response", "required member removed", _C, "breaking", "major",
         f"a new server may leave it out, and an old client requires it ({ENV3}). This includes a limit removed "
         "from hello (spec 11 LIM-1)"),
    Rule("RES-MEMBER-OPTIONAL-REMOVED", "response", "optional member removed", _NONE, "warning", "major",
         "old clients already cope with its absence and new clients ignore it if an old server sends it "
         f"({CMP2}); but its name is now unconstrained: never reuse it with another meaning. {MAJOR}"),
    Rule("RES-MEMBER-FORBIDDEN", "response", "member forbidden in a closed reply object", _S, "breaking", "major",
         f"an old server that sends it is rejected by a new client ({ENV3})"),
    Rule("RES-MEMBER-MADE-REQUIRED", "response", "member made required", _S, "breaking", "major",
         f"an old server may leave it out and a new client now requires it ({ENV3})"),
    Rule("RES-MEMBER-MADE-OPTIONAL", "response", "member made optional", _C, "breaking", "major",
         f"a new server may leave it out and an old client requires it ({ENV3})"),
    # -- open / closed objects -------------------------------------------------------------------------
    *_pair("OBJECT-CLOSED", "object closed (additionalProperties or unevaluatedProperties false)",
           req=_C, res=_S,
           req_why=f"old clients may send members a new server now rejects ({CMP1} applies to new servers only "
                   "where the new schema says so)",
           res_why=f"an old server's reply with a member the new schema does not define is rejected by a new client; "
                   f"the reply schemas must stay open ({CMP2})"),
    *_pair("OBJECT-OPENED", "object opened (additionalProperties or unevaluatedProperties no longer false)",
           req=_S, res=_NONE,
           req_why=f"a new client may send members an old server rejects ({CMP1})",
           res_why=f"old clients ignore members they do not know ({CMP2}); {MINOR}"),
    # -- types, values, constraints --------------------------------------------------------------------
    *_pair("TYPE-NARROWED", "fewer JSON types allowed", req=_C, res=_S, req_why=_NARROW_REQ, res_why=_NARROW_RES),
    *_pair("TYPE-WIDENED", "more JSON types allowed", req=_S, res=_C, req_why=_WIDE_REQ, res_why=_WIDE_RES),
    *_pair("TYPE-CHANGED", "JSON type changed", req=_CS, res=_CS,
           req_why="both of the above", res_why="both of the above"),
    *_pair("ENUM-VALUE-ADDED", "enum value added", req=_S, res=_C, req_why=_WIDE_REQ,
           res_why=f"{_WIDE_RES}: an unknown value is not an unknown member"),
    *_pair("ENUM-VALUE-REMOVED", "enum value removed", req=_C, res=_S, req_why=_NARROW_REQ, res_why=_NARROW_RES),
    *_pair("CONST-CHANGED", "constant changed", req=_CS, res=_CS,
           req_why="old clients send the old value a new server rejects, new clients the new one old servers reject",
           res_why="new servers send a value old clients reject; old servers one new clients reject"),
    *_pair("VALUES-RESTRICTED", "enum or const introduced", req=_C, res=_S, req_why=_NARROW_REQ, res_why=_NARROW_RES),
    *_pair("VALUES-UNRESTRICTED", "enum or const dropped", req=_S, res=_C, req_why=_WIDE_REQ, res_why=_WIDE_RES),
    *_pair("CONSTRAINT-TIGHTENED",
           "bound tightened or added (minimum, maximum, exclusive*, multipleOf, minLength, maxLength, minItems, "
           "maxItems, uniqueItems, minProperties, maxProperties)",
           req=_C, res=_S, req_why=_NARROW_REQ, res_why=_NARROW_RES),
    *_pair("CONSTRAINT-LOOSENED", "bound loosened or removed (same keywords)", req=_S, res=_C,
           req_why=_WIDE_REQ, res_why=_WIDE_RES),
    *_pair("CONSTRAINT-CHANGED", "multipleOf changed to a value neither divides", req=_CS, res=_CS,
           req_why="both of the above", res_why="both of the above"),
    Rule("RES-MEMBER-COUNT-LOOSENED", "response", "minProperties or maxProperties loosened or removed", _NONE,
         "info", "minor",
         f"the extra members a new server may send are optional or unknown, which old clients handle ({CMP2})"),
    # -- patterns: the witnesses decide --------------------------------------------------------------
    *_pair("PATTERN-TIGHTENED", "pattern accepts less (a string the old pattern accepts and the new rejects "
           "was found, none the other way)", req=_C, res=_S, req_why=_NARROW_REQ, res_why=_NARROW_RES,
           witness="decides"),
    *_pair("PATTERN-LOOSENED", "pattern accepts more (witness only the other way)", req=_S, res=_C,
           req_why=_WIDE_REQ, res_why=_WIDE_RES, witness="decides"),
    *_pair("PATTERN-CHANGED", "pattern changed (witnesses both ways)", req=_CS, res=_CS,
           req_why="both of the above", res_why="both of the above", witness="decides"),
    *_pair("PATTERN-NO-WITNESS", "pattern rewritten; no string tells the two apart (no witness found)",
           req=_NONE, res=_NONE, severity="warning",
           req_why="the search found no string one pattern accepts and the other rejects; they may be equivalent, "
                   "which a search cannot prove: review it",
           res_why="as for requests", witness="decides"),
    # -- oneOf / anyOf variants ---------------------------------------------------------------------------
    *_pair("VARIANT-ADDED", "oneOf/anyOf variant added", req=_S, res=_C, req_why=_WIDE_REQ, res_why=_WIDE_RES),
    *_pair("VARIANT-REMOVED", "oneOf/anyOf variant removed", req=_C, res=_S, req_why=_NARROW_REQ,
           res_why=_NARROW_RES),
    # -- anything else: the witnesses decide ------------------------------------------------------------
    *_pair("SCHEMA-NARROWED", "other keyword changed; the new schema accepts less (witness found)", req=_C, res=_S,
           req_why=_NARROW_REQ, res_why=_NARROW_RES, witness="decides"),
    *_pair("SCHEMA-WIDENED", "other keyword changed; the new schema accepts more (witness found)", req=_S, res=_C,
           req_why=_WIDE_REQ, res_why=_WIDE_RES, witness="decides"),
    *_pair("SCHEMA-CHANGED", "other keyword changed; witnesses both ways", req=_CS, res=_CS,
           req_why="both of the above", res_why="both of the above", witness="decides"),
    *_pair("SCHEMA-NO-WITNESS", "other keyword changed; no witness found either way", req=_NONE, res=_NONE,
           severity="warning",
           req_why="no message was found that one side accepts and the other rejects; review it by hand",
           res_why="as for requests", witness="decides"),
    # -- no effect on the wire ------------------------------------------------------------------------------
    Rule("ANNOTATION-CHANGED", "any", "title, description, $comment, examples, default, x-* annotations", _NONE,
         "none", "none", "annotations do not change what a schema accepts (spec 14.2 lists them as annotations)",
         "none"),
    Rule("PATTERN-RESPELLED", "any", "pattern written differently, identical after normalisation", _NONE, "none",
         "none", "the parsed regular expressions are the same (character classes sorted, groups unwrapped)", "none"),
    # -- commands, capabilities and error codes (x-stui-command, error.json) ---------------------------
    Rule("CMD-ADDED", "any", "new command behind a new capability", _NONE, "info", "minor",
         "old servers do not announce the capability and old clients ignore capability names they do not know "
         f"(spec 3.3 VER-6, VER-7); {MINOR}", "none"),
    Rule("CMD-ADDED-MANDATORY", "any", "new command without a capability", _S, "breaking", "major",
         "every server must serve every mandatory command (spec 3.3 VER-5); an old server answers UnknownCommand"),
    Rule("CMD-ADDED-UNDER-EXISTING-CAPABILITY", "any", "new command behind a capability old servers already announce",
         _S, "breaking", "major",
         "an old server announcing the capability does not serve the new command (spec 3.3 VER-5, VER-6): "
         "a new capability name is needed"),
    Rule("CMD-REMOVED", "any", "mandatory command removed", _C, "breaking", "major",
         "old clients still send it and a new server answers UnknownCommand (spec 3.3 VER-5, VER-6)"),
    Rule("CMD-OPTIONAL-REMOVED", "any", "optional (capability-gated) command removed", _NONE, "warning", "major",
         "clients already cope with servers that do not announce the capability (spec 3.3 VER-6, VER-7); "
         f"{MAJOR}", "none"),
    Rule("CMD-MADE-OPTIONAL", "any", "mandatory command put behind a capability", _C, "breaking", "major",
         "old clients expect every server to serve it (spec 3.3 VER-5); a new server may not", "none"),
    Rule("CMD-MADE-MANDATORY", "any", "capability of an optional command dropped", _S, "breaking", "major",
         "new clients send it to every server; an old server that does not announce it answers UnknownCommand "
         "(spec 3.3 VER-6)", "none"),
    Rule("CMD-CAPABILITY-RENAMED", "any", "command moved to another capability", _CS, "breaking", "major",
         "clients look for the capability name they know (spec 3.3 VER-7): old clients miss the command on new "
         "servers, new clients on old servers", "none"),
    Rule("CMD-SCOPE-CHANGED", "any", "x-stui-command.session_scoped changed", _CS, "breaking", "major",
         "the session checks of step P6 (spec 12.1) apply or no longer apply to the command", "none"),
    Rule("CMD-DURABLE-RETRY-ADDED", "any", "x-stui-command.durable_retry set", _S, "breaking", "major",
         "a new client expects this command's replies to survive a restart on a server announcing retry.durable "
         "(spec 10 RTY-6); an old server announcing it keeps them only for the commands it knew", "none"),
    Rule("CMD-DURABLE-RETRY-REMOVED", "any", "x-stui-command.durable_retry cleared", _C, "breaking", "major",
         "an old client expects this command's replies to survive a restart on a server announcing retry.durable "
         "(spec 10 RTY-6); a new server no longer keeps them", "none"),
    Rule("CAPABILITY-ADDED", "any", "capability name added to hello.json x-stui-capabilities", _NONE, "info", "minor",
         f"clients ignore capability names they do not know (spec 3.3 VER-7, CMP-2); {MINOR}", "none"),
    Rule("CAPABILITY-REMOVED", "any", "capability name removed from x-stui-capabilities", _NONE, "warning", "major",
         "a capability is optional: clients already cope with servers that do not announce it (spec 3.3 VER-5, "
         f"VER-7); {MAJOR}", "none"),
    Rule("CMD-ERROR-ADDED", "any", "command may answer an error code it did not", _C, "breaking", "major",
         "an old client reads the reply against the command's error list (spec 12.1 ERR-2) and may match on it "
         "exhaustively; spec 12.2 adds codes only for new commands. ERR-5 (treat an unknown code as a failure) "
         "limits the damage but is a SHOULD"),
    Rule("CMD-ERROR-REMOVED", "any", "command no longer answers an error code", _NONE, "warning", "major",
         "old clients lose nothing; a new client meeting the code from an old server treats it as a failed "
         f"request (spec 12.1 ERR-5). {MAJOR}", "none"),
    Rule("ERROR-CODE-ADDED", "any", "error code added to the registry", _NONE, "info", "minor",
         f"spec 12.2: new codes come with a new minor version, for new commands or capabilities; {MINOR}. "
         "A code added to an existing command is CMD-ERROR-ADDED", "none"),
    Rule("ERROR-CODE-REMOVED", "any", "error code removed from the registry", _NONE, "warning", "major",
         f"old servers may still send it; a new client treats an unknown code as a failure (spec 12.1 ERR-5). {MAJOR}",
         "none"),
    # -- the version check --------------------------------------------------------------------------------
    Rule("VERSION-MAJOR-REQUIRED", "any", "breaking change without a new major protocol version and spec edition",
         _NONE, "breaking", "major",
         "spec 3.1: a change that makes a 1.x client or server misread a message needs a new major version; "
         "spec README 'Versioning': the edition's MAJOR.MINOR is the protocol version", "none",
         "version not bumped"),
    Rule("VERSION-BUMP-ADVISED", "any", "addition or removal without the version bump the spec names",
         _NONE, "warning", "none",
         f"{MINOR}; {MAJOR}; spec README: the edition follows the protocol version", "none", "version bump advised"),
]

RULES: dict[str, Rule] = {rule.id: rule for rule in RULES_LIST}
assert len(RULES) == len(RULES_LIST), "duplicate rule ID"


def rule(rule_id: str) -> Rule:
    return RULES[rule_id]


def markdown_table() -> str:
    """The rule table as docs/schema-diff.md holds it (between its rule-table markers)."""
    lines = ["| Rule | Direction | What changed | Verdict | Severity | Bump | Why |",
             "|------|-----------|--------------|---------|----------|------|-----|"]
    for r in RULES_LIST:
        verdict = r.verdict
        if r.witness == "decides" and r.breaks:
            verdict += " (witness found)"
        cells = [f"`{r.id}`", r.direction, r.change, verdict, r.severity, r.bump, r.why]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
