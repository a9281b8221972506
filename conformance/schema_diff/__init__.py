"""Direction-aware comparison of two versions of the protocol's schemas (`stui-conformance diff`).

The parts, each in its own module:

- `sources`   where OLD and NEW come from: a directory, or a git ref read with `git archive` (no work tree
              is touched); the protocol version and spec edition of each side.
- `kinds`     the message kinds of one side (request and success per command, error reply per code, the
              state document), each a bundled schema from `SchemaRegistry`, fully inlined so that a `$ref`
              moved between files with the same meaning compares equal.
- `rules`     the rule table: rule ID, what changed, direction, verdict, severity, the spec's reason.
- `compare`   the walk over two inlined schemas that emits changes (what changed, where, which rule).
- `registry_changes` what the schemas say beyond one message: commands, capabilities, error codes.
- `patterns`  regular-expression normalisation and string witnesses.
- `instances` small valid instances of a schema (deterministic), the raw material of witnesses.
- `witness`   whole messages one side accepts and the other rejects, checked with jsonschema and
              jsonschema-rs against both sides before they are shown.
- `report`    the classified result: grouping, overrides, the version check, the exit status.
- `overrides` the per-rule severity override file.
- `render`    text, JSON, JUnit XML and Markdown output.

Nothing here talks to a server; `sources` is the only module that reads files or runs git.
"""
