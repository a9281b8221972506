"""Hand-written conformance cases, one module per spec section (see `conformance/case.py` for IDs).

Modules whose name starts with `_` hold helpers and are not loaded as case modules.
"""
