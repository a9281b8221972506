//! The messages generated from the schemas by `clients/rust/generate_corpus.py` (about 13,000,
//! JSON Lines) against the types:
//! * every valid request and reply reads and writes back to the value the generator expects (the
//!   message without the members v1 does not define, which a client ignores);
//! * every invalid request (the kit's mutations of valid ones) is refused;
//! * every boundary value (a constrained member of a valid message set just inside or just outside
//!   its constraint) gets the verdict the kit's validator gives it: accepted exactly when valid; the
//!   one exception is an error reply whose `error.code` the registry does not hold, which the schemas
//!   refuse (a v1 server must not send it) and a client must accept as a failure of the request
//!   (ERR-5, CLT-11): it must be read as `ErrorBody::Unknown` and written back unchanged;
//! * the corpus names exactly the commands and error codes the types know, so a command or code added
//!   to or removed from the schemas fails here as well as in the round trip.
//!
//! The corpus path is `$STUI_CORPUS`, by default `clients/rust/target/stui-corpus.jsonl`. A missing
//! corpus fails the test: run `python3 clients/rust/generate_corpus.py` first (clients/rust/ci.sh does).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::{diff, round_trip, Kind};
use serde::Deserialize;
use serde_json::Value;
use stui_protocol::{ErrorBody, ErrorCode, ErrorReply, Response, COMMANDS};

#[derive(Deserialize)]
struct Line {
    kind: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    expect: Option<Value>,
    #[serde(default)]
    direction: String,
    #[serde(default)]
    valid: Option<bool>,
    #[serde(default)]
    commands: Vec<String>,
    #[serde(default)]
    error_codes: Vec<String>,
}

/// The code of an error reply whose `error.code` is a non-empty string outside v1's registry.
fn unknown_code(body: &Value) -> Option<String> {
    match body.pointer("/error/code") {
        Some(Value::String(code)) if !code.is_empty() && ErrorCode::from_name(code).is_none() => Some(code.clone()),
        _ => None,
    }
}

fn corpus_path() -> PathBuf {
    std::env::var_os("STUI_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/stui-corpus.jsonl"))
}

#[test]
fn generated_messages_round_trip_and_invalid_ones_are_refused() {
    let path = corpus_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\nGenerate it first: python3 clients/rust/generate_corpus.py --out {} (clients/rust/ci.sh does)",
            path.display(),
            path.display()
        )
    });
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut labels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut meta = None;
    for (n, raw) in text.lines().enumerate() {
        let line: Line = serde_json::from_str(raw).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
        if line.kind == "meta" {
            meta = Some(line);
            continue;
        }
        *counts.entry(line.kind.clone()).or_default() += 1;
        labels.entry(line.kind.clone()).or_default().insert(line.label.clone());
        match line.kind.as_str() {
            "request" | "response" => {
                let kind = if line.kind == "request" { Kind::Request } else { Kind::Response };
                let expect = line.expect.unwrap_or_else(|| panic!("line {}: no expect", n + 1));
                match round_trip(kind, &line.body) {
                    Err(e) => failures.push(format!("line {} ({}): refused: {e}\n  {}", n + 1, line.label, line.body)),
                    Ok(written) if written != expect => failures.push(format!(
                        "line {} ({}): written back differently: {:?}\n  {}",
                        n + 1,
                        line.label,
                        diff(&expect, &written),
                        line.body
                    )),
                    Ok(_) => {}
                }
            }
            "invalid-request" => {
                if round_trip(Kind::Request, &line.body).is_ok() {
                    failures.push(format!("line {} ({}): accepted\n  {}", n + 1, line.label, line.body));
                }
            }
            "boundary" => {
                let kind = if line.direction == "request" { Kind::Request } else { Kind::Response };
                let valid = line.valid.unwrap_or_else(|| panic!("line {}: no verdict", n + 1));
                let original: Value = serde_json::from_str(&line.body).unwrap();
                if let (Some(code), Kind::Response, false) = (unknown_code(&original), kind, valid) {
                    // Refused by the schemas, read by a client as a failed request (ERR-5).
                    *counts.entry("boundary: unknown error code read as Unknown".into()).or_default() += 1;
                    let read: Result<Response, _> = serde_json::from_str(&line.body);
                    match (&read, round_trip(kind, &line.body)) {
                        (Ok(Response::Error(ErrorReply { error: ErrorBody::Unknown(u), .. })), Ok(written))
                            if u.code == code && written == original => {}
                        _ => failures.push(format!(
                            "line {} ({}): an unknown error code not read as ErrorBody::Unknown and written back \
                             unchanged: {read:?}\n  {}",
                            n + 1,
                            line.label,
                            line.body
                        )),
                    }
                    continue;
                }
                match (round_trip(kind, &line.body), valid) {
                    (Ok(_), true) | (Err(_), false) => {}
                    (Ok(_), false) => failures.push(format!(
                        "line {} ({}): accepted, the schemas refuse it\n  {}",
                        n + 1,
                        line.label,
                        line.body
                    )),
                    (Err(e), true) => failures.push(format!(
                        "line {} ({}): refused ({e}), the schemas accept it\n  {}",
                        n + 1,
                        line.label,
                        line.body
                    )),
                }
            }
            other => panic!("line {}: unknown kind {other:?}", n + 1),
        }
    }
    let shown: Vec<&String> = failures.iter().take(20).collect();
    assert!(failures.is_empty(), "{} of the generated messages fail:\n{:#?}", failures.len(), shown);

    // The corpus and the types know the same commands and codes.
    let meta = meta.expect("the corpus has no meta line");
    let rust_commands: BTreeSet<String> = COMMANDS.iter().map(|c| c.to_string()).collect();
    let rust_codes: BTreeSet<String> = ErrorCode::ALL.iter().map(|c| c.as_str().to_owned()).collect();
    assert_eq!(meta.commands.iter().cloned().collect::<BTreeSet<_>>(), rust_commands, "commands");
    assert_eq!(meta.error_codes.iter().cloned().collect::<BTreeSet<_>>(), rust_codes, "error codes");
    assert_eq!(labels["request"], rust_commands, "valid requests do not cover every command");
    let replies: BTreeSet<String> = rust_commands.union(&rust_codes).cloned().collect();
    assert_eq!(labels["response"], replies, "replies do not cover every command and error code");
    assert!(counts.get("invalid-request").copied().unwrap_or(0) > 0, "no invalid requests");
    assert!(counts.get("boundary").copied().unwrap_or(0) > 0, "no boundary values");
    println!("{counts:?} generated messages: valid ones round-tripped, invalid ones refused");
}
