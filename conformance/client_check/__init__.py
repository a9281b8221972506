"""`stui-conformance client-check`: the kit plays the server and checks a client (spec/16-clients.md).

- `catalog.py`   the checks and scenarios as conformance `Case`s (IDs, titles, requirements), so reports,
                 the requirement matrix and traceability treat them like the server cases;
- `scenarios.py` what the kit provokes and how the client's answer is judged (sans-I/O);
- `kit_server.py` the server: a ROUTER socket and the reference server's engine (the one module of
                 conformance/ that imports the reference server), carrying out the scenarios' plans;
- `report.py`    the client-check report (RunReport's outcomes and verdicts, its own JSON document).

The request rules themselves live in `stui_protocol_kit.protocol.client_rules`, shared with the proxy.
"""
