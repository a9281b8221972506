//! The test vectors of `spec/examples` against the types:
//! * every valid request and reply reads and writes back to an equal JSON value, except for the
//!   members v1 does not define, which a client ignores (CMP-2) and which README.md lists exactly;
//! * every invalid request and reply is refused, except the ones README.md lists as beyond a type.
//!
//! Both lists are read from README.md, so the README cannot go stale: a vector that starts or stops
//! being caught, or a member that starts or stops being dropped, fails here until the README says so.

mod common;

use std::collections::BTreeMap;
use std::fs;

use common::{diff, examples_dir, readme_list, round_trip, Kind};
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
struct Vector {
    kind: String,
    verdict: String,
    message: Box<RawValue>,
}

/// (`requests/valid/hello.json`, kind, exact message text) for every vector of one verdict.
fn vectors(verdict: &str) -> Vec<(String, Kind, String)> {
    let mut out = Vec::new();
    for (dir, kind) in [("requests", Kind::Request), ("responses", Kind::Response)] {
        let rel_dir = format!("{dir}/{verdict}");
        let path = examples_dir().join(&rel_dir);
        let mut names: Vec<String> = fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".json"))
            .collect();
        names.sort();
        assert!(!names.is_empty(), "no vectors in {}", path.display());
        for name in names {
            let text = fs::read_to_string(path.join(&name)).unwrap();
            let vector: Vector = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel_dir}/{name}: {e}"));
            assert_eq!(vector.verdict, verdict, "{rel_dir}/{name}");
            assert_eq!(vector.kind, if kind == Kind::Request { "request" } else { "response" }, "{rel_dir}/{name}");
            out.push((format!("{rel_dir}/{name}"), kind, vector.message.get().to_owned()));
        }
    }
    out
}

#[test]
fn every_valid_vector_round_trips() {
    let mut dropped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut failures = Vec::new();
    let all = vectors("valid");
    for (name, kind, text) in &all {
        let original: serde_json::Value = serde_json::from_str(text).unwrap();
        match round_trip(*kind, text) {
            Err(e) => failures.push(format!("{name}: refused: {e}")),
            Ok(written) => {
                let d = diff(&original, &written);
                if !d.other.is_empty() {
                    failures.push(format!("{name}: written back differently: {:?}", d.other));
                }
                if !d.removed.is_empty() {
                    dropped.insert(name.clone(), d.removed);
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let listed: BTreeMap<String, Vec<String>> = readme_list("unknown-members-dropped")
        .into_iter()
        .map(|items| {
            let mut paths = items[1..].to_vec();
            paths.sort();
            (items[0].clone(), paths)
        })
        .collect();
    assert_eq!(dropped, listed, "the members dropped on the way through the types differ from README.md's list");
    println!("{} valid vectors round-tripped ({} with unknown members dropped)", all.len(), dropped.len());
}

#[test]
fn every_invalid_vector_a_type_can_catch_is_refused() {
    let all = vectors("invalid");
    let accepted: Vec<String> =
        all.iter().filter(|(_, kind, text)| round_trip(*kind, text).is_ok()).map(|(name, _, _)| name.clone()).collect();
    let mut listed: Vec<String> = readme_list("vectors-not-caught").into_iter().map(|items| items[0].clone()).collect();
    listed.sort();
    assert_eq!(accepted, listed, "the invalid vectors the types accept differ from README.md's list");
    println!(
        "{} of {} invalid vectors refused; {} beyond a type (README.md)",
        all.len() - accepted.len(),
        all.len(),
        accepted.len()
    );
}

/// Every `x-` key anywhere in `value`.
fn x_keywords(value: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, member) in map {
                if key.starts_with("x-") {
                    out.insert(key.clone());
                }
                x_keywords(member, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| x_keywords(item, out)),
        _ => {}
    }
}

#[test]
fn the_readme_registers_every_x_keyword_of_the_schemas_for_ajv() {
    // ajv's strict mode refuses a schema with a keyword it does not know: the README's setup for
    // JavaScript consumers must register every annotation keyword the bundles use.
    // Bundles and source schemas both: a consumer may compile either.
    let root = common::repo_root().join("schemas");
    let mut used = std::collections::BTreeSet::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().map_or(false, |e| e == "json") {
                let schema: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
                x_keywords(&schema, &mut used);
            }
        }
    }
    assert!(!used.is_empty(), "no x- keyword under {}", root.display());
    let readme = common::readme();
    let registered: std::collections::BTreeSet<String> = readme
        .split("ajv.addKeyword(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect();
    assert_eq!(registered, used, "README.md's ajv.addKeyword lines differ from the x- keywords of schemas/");
}
