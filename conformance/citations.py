"""Requirement IDs cited by the automatic checks (context and verifiers), defined once.

Cases cite their own requirements inline; these are the ones every reply is held to, whichever case
sent the request. This module must never hold anything but IDs.
"""

REPLY_IS_JSON_OBJECT = "TRN-2"  # one body frame, one UTF-8 JSON object
SUCCESS_SCHEMA = "ENV-3"  # success matches Success + the command's Result, echoes id and command
ERROR_SCHEMA = "ENV-4"  # error matches Error + the code's variant
ERROR_ECHO_ID = "ENV-5"
ERROR_ECHO_COMMAND = "ENV-6"
ERROR_ALLOWED_FOR_COMMAND = "ERR-2"  # a command returns only the codes its schema lists
CREATE_OK = "CRE-1"
TIMESTAMP_FORMAT = "ENV-10"
NO_STRAY_NULL = "CMP-3"
INTEGERS_AS_INTEGERS = "CMP-5"
