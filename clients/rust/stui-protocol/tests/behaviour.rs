//! What the vectors do not show by themselves: what the types write when built in Rust, the serde
//! leniencies they close, the members they ignore, and that a token never shows in `Debug` output.

use serde_json::{json, Value};
use stui_protocol::*;

const SID: &str = "Xb3kQ9vR2mLp7TzW5nYc1A";
const TOKEN: &str = "q8Jf3LrT0vXy2NcW9aBd4KpZ7mQs1HuE6gYt5RiVo0A";
const TS: &str = "2026-11-24T10:15:30.123Z";

fn credentials() -> (SessionId, Token) {
    (SessionId::new(SID).unwrap(), Token::new(TOKEN).unwrap())
}

fn reply(value: Value) -> Result<Response, String> {
    serde_json::from_value(value).map_err(|e| e.to_string())
}

fn request(value: Value) -> Result<Request, String> {
    serde_json::from_value(value).map_err(|e| e.to_string())
}

#[test]
fn a_request_built_in_rust_writes_no_null_and_no_extra_member() {
    let (session_id, token) = credentials();
    let snapshot = Request::new(
        RequestId::new("r-1").unwrap(),
        Command::SessionSnapshot(SnapshotParameters { session_id, token, state: None, expected_revision: None }),
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&snapshot.to_vec()).unwrap(),
        json!({"id": "r-1", "version": "1.0", "command": "session.snapshot",
               "parameters": {"session_id": SID, "token": TOKEN}})
    );
    let hello = Request::new(RequestId::new("r-2").unwrap(), Command::Hello(HelloParameters {}));
    assert_eq!(
        String::from_utf8(hello.to_vec()).unwrap(),
        r#"{"id":"r-2","version":"1.0","command":"hello","parameters":{}}"#
    );
}

#[test]
fn inspect_writes_exactly_one_target() {
    let (session_id, token) = credentials();
    let by_id = Command::Inspect(InspectParameters {
        session_id,
        token,
        target: InspectTarget::Object(ObjectId::new("obj-1").unwrap()),
    });
    let written = serde_json::to_value(Request::new(RequestId::new("r").unwrap(), by_id)).unwrap();
    assert_eq!(written["parameters"], json!({"session_id": SID, "token": TOKEN, "object_id": "obj-1"}));
}

#[test]
fn an_error_reply_writes_its_null_id_and_command() {
    let error = Response::Error(ErrorReply {
        id: None,
        version: V1,
        command: None,
        error: ErrorBody::InvalidRequest { message: "not JSON".into(), details: InvalidRequestDetails::Json },
        timestamp: Timestamp::new(TS).unwrap(),
    });
    assert_eq!(
        serde_json::to_value(&error).unwrap(),
        json!({"id": null, "version": "1.0", "command": null, "status": "error",
               "error": {"code": "InvalidRequest", "message": "not JSON", "details": {"reason": "json"}},
               "timestamp": TS})
    );
}

#[test]
fn serde_leniencies_are_closed() {
    // A derived struct reads a JSON array as its fields in order; a unit enum reads {"variant": null}.
    let hello = json!({"id": "r", "version": "1.0", "command": "hello", "parameters": []});
    assert!(request(hello).unwrap_err().contains("$.parameters"));
    let state = json!({"id": "r", "version": "1.0", "command": "session.snapshot",
                       "parameters": {"session_id": SID, "token": TOKEN, "state": []}});
    assert!(request(state).is_err());
    let resume = json!({"id": "r", "version": "1.0", "command": "session.resume", "status": "success",
        "result": {"session_id": SID, "revision": 1, "expires_at": TS, "source": {"live": null},
                   "state": {"workspace": {"variables": {}}, "objects": {}, "inspector": {}, "preferences": {}}},
        "timestamp": TS});
    assert!(reply(resume).unwrap_err().contains("$.result.source"));
    let details = json!({"id": "r", "version": "1.0", "command": "session.validate", "status": "error",
        "error": {"code": "InvalidToken", "message": "invalid token", "details": []}, "timestamp": TS});
    assert!(reply(details).is_err());
    let violation = json!({"id": "r", "version": "1.0", "command": "hello", "status": "error",
        "error": {"code": "InvalidRequest", "message": "bad", "details": {"reason": "schema",
                  "violations": [["$.id", "too long"]]}}, "timestamp": TS});
    assert!(reply(violation).is_err());
}

#[test]
fn unknown_members_of_a_reply_are_ignored_at_every_level() {
    let hello = json!({"id": "r", "version": "1.0", "command": "hello", "status": "success", "new": 1,
        "result": {"protocol_versions": ["1.0", "1.1"], "server": {"name": "s", "version": "1", "build": "x"},
                   "capabilities": ["evaluate", "teleport"], "extra": [1],
                   "limits": {"max_message_bytes": 65536, "max_nesting_depth": 32, "idle_timeout_s": 1,
                              "absolute_timeout_s": 1, "tombstone_retention_s": 1, "retry_window_s": 1,
                              "max_sessions_per_client": 1, "max_frobs": 3}},
        "timestamp": TS});
    let result = match reply(hello).unwrap() {
        Response::Success(SuccessReply { result: CommandResult::Hello(result), .. }) => result,
        other => panic!("not a hello success: {other:?}"),
    };
    assert!(result.supports(capability::EVALUATE));
    assert!(!result.supports(capability::INSPECT));
    assert_eq!(result.capabilities, ["evaluate", "teleport"]); // unknown capability names are kept, and ignored
    let expired = json!({"id": "r", "version": "1.0", "command": "session.resume", "status": "error",
        "error": {"code": "SessionExpired", "message": "expired", "hint": "x",
                  "details": {"expired_at": TS, "reason": "idle"}}, "timestamp": TS});
    let details = match reply(expired).unwrap() {
        Response::Error(ErrorReply { error: ErrorBody::SessionExpired { details, .. }, .. }) => details,
        other => panic!("not SessionExpired: {other:?}"),
    };
    assert_eq!(details.expired_at.as_str(), TS);
}

#[test]
fn requests_refuse_what_the_server_refuses() {
    let base = json!({"id": "r", "version": "1.0", "command": "session.snapshot",
                      "parameters": {"session_id": SID, "token": TOKEN, "expected_revision": 3,
                                     "state": {"preferences": {"scale": 1.5, "font": null}}}});
    assert!(request(base.clone()).is_ok());
    for (pointer, bad) in [
        ("/parameters/expected_revision", json!(3.0)),
        ("/parameters/expected_revision", json!(-1)),
        ("/parameters/expected_revision", json!(9007199254740992u64)),
        ("/parameters/state/preferences", Value::Null),
        ("/parameters/token", json!("short")),
        ("/id", json!("")),
        ("/version", json!("1.1")),
    ] {
        let mut message = base.clone();
        *message.pointer_mut(pointer).unwrap() = bad.clone();
        assert!(request(message).is_err(), "{pointer} = {bad} was accepted");
    }
}

#[test]
fn a_token_never_shows_in_debug_output() {
    let (session_id, token) = credentials();
    let request =
        Request::new(RequestId::new("r").unwrap(), Command::SessionValidate(SessionCredentials { session_id, token }));
    let shown = format!("{request:?} {request:#?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    let created = json!({"id": "r", "version": "1.0", "command": "session.create", "status": "success",
        "result": {"session_id": SID, "token": TOKEN, "revision": 0, "created_at": TS, "expires_at": TS},
        "timestamp": TS});
    let shown = format!("{:?}", reply(created).unwrap());
    assert!(!shown.contains(TOKEN), "{shown}");
}

fn error_reply(error: Value) -> Value {
    json!({"id": "r-9", "version": "1.0", "command": "session.validate", "status": "error", "error": error,
           "timestamp": TS})
}

#[test]
fn an_unknown_error_code_is_read_as_a_failure_of_the_request() {
    // ERR-5 and CLT-11: a newer server's code is a failure of that request, not an unreadable reply.
    let overloaded = error_reply(json!({"code": "Overloaded", "message": "try again later",
                                        "details": {"retry_after_ms": 250, "hint": null}, "trace": "t-1"}));
    let read = reply(overloaded.clone()).unwrap();
    let (error, id) = match &read {
        Response::Error(ErrorReply { error, id, .. }) => (error, id),
        other => panic!("not an error reply: {other:?}"),
    };
    assert_eq!(id.as_ref().map(RequestId::as_str), Some("r-9"));
    assert_eq!(error.code(), None);
    assert_eq!(error.code_name(), "Overloaded");
    assert_eq!(error.message(), "try again later");
    let unknown = match error {
        ErrorBody::Unknown(unknown) => unknown,
        other => panic!("not read as unknown: {other:?}"),
    };
    // Its details are kept as they were, for logs; unknown members of `error` itself are ignored.
    assert_eq!(Value::Object(unknown.details.clone().unwrap()), json!({"retry_after_ms": 250, "hint": null}));
    let mut expected = overloaded;
    expected["error"].as_object_mut().unwrap().remove("trace");
    assert_eq!(serde_json::to_value(&read).unwrap(), expected);

    // Without details it writes none back.
    let bare = error_reply(json!({"code": "Timeout", "message": "timed out"}));
    assert_eq!(serde_json::to_value(reply(bare.clone()).unwrap()).unwrap(), bare);
}

#[test]
fn the_catch_all_never_hides_a_broken_registry_error() {
    // A registry code is read by its own type: broken details stay an error, not an "unknown" code.
    let broken = [
        json!({"code": "RevisionConflict", "message": "m", "details": {"current_revision": "4", "expected_revision": 3}}),
        json!({"code": "RevisionConflict", "message": "m"}),
        json!({"code": "SessionExpired", "message": "m", "details": {}}),
        json!({"code": "InvalidRequest", "message": "", "details": {"reason": "json"}}),
    ];
    for error in broken {
        assert!(reply(error_reply(error.clone())).is_err(), "accepted {error}");
    }
    // An unknown code still needs the envelope's `code` and `message` (ENV-8), and no null.
    let malformed = [
        json!({"code": 7, "message": "m"}),
        json!({"message": "m"}),
        json!({"code": "", "message": "m"}),
        json!({"code": "Overloaded"}),
        json!({"code": "Overloaded", "message": ""}),
        json!({"code": "Overloaded", "message": "m", "details": null}),
        json!({"code": "Overloaded", "message": "m", "details": [1]}),
        json!("Overloaded"),
    ];
    for error in malformed {
        assert!(reply(error_reply(error.clone())).is_err(), "accepted {error}");
    }
    // Registry codes are told apart by exact name: a near miss is a code v1 does not know.
    let near = reply(error_reply(json!({"code": "revisionConflict", "message": "m"}))).unwrap();
    assert!(
        matches!(&near, Response::Error(ErrorReply { error: ErrorBody::Unknown(u), .. }) if u.code == "revisionConflict")
    );
    for code in ErrorCode::ALL {
        assert_eq!(ErrorCode::from_name(code.as_str()), Some(code));
    }
}
