"""Hand-written conformance cases, one module per spec section, named after its group (see
`conformance/case.py` for IDs and GROUPS for the order).

Wire values written literally on purpose: cases spell the commands, error codes, reasons and limit names
they send and expect as the spec's text states them (`"SessionClosed"`, `"session.snapshot"`), rather than
importing them from `stui_protocol_kit.protocol.facts`. A case is an independent reading of the spec: if
the schemas - the facts' home - drifted from the spec's text, a case written from the text fails, where
one built from the schemas would follow the drift. Everything else in the suite (context, verifiers,
runner, model) takes facts from `protocol.facts`.

Modules whose name starts with `_` hold helpers and are not loaded as case modules.
"""
