"""The STUI protocol v1 conformance suite: cases, verifiers, runner, reports and the `stui-conformance` CLI."""
