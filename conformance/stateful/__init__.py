"""The stateful part of the suite: the protocol model, step sequences and their executor, the rule-based
machine, and the differential oracle (the reference server as a second opinion)."""
