"""The `stui-conformance` verbs, one module each.

A verb module exposes `register(subparsers) -> None`, which adds its sub-parser and binds the handler
with `parser.set_defaults(handler=run)`; `run(args: argparse.Namespace) -> int` returns the exit status.
`conformance/cli.py` lists the verb modules; adding a verb is a new module plus one line there. A verb
module must never call `sys.exit` or parse `sys.argv` itself: `cli.main` owns both.
"""
