//! What the round-trip tests share: where the vectors and the README are, decoding and re-encoding a
//! message through the types, and a JSON diff that tells dropped members from changed values.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::path::{Path, PathBuf};

use serde_json::Value;
use stui_protocol::{Request, Response};

/// The repository root: clients/rust/stui-protocol/../../..
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// `spec/examples`, or `$STUI_SPEC_EXAMPLES`.
pub fn examples_dir() -> PathBuf {
    std::env::var_os("STUI_SPEC_EXAMPLES").map(PathBuf::from).unwrap_or_else(|| repo_root().join("spec/examples"))
}

/// clients/rust/README.md: the lists the tests hold the types to.
pub fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Request,
    Response,
}

/// Reads `text` as a typed message and writes it back; the JSON value written.
pub fn round_trip(kind: Kind, text: &str) -> Result<Value, String> {
    let written = match kind {
        Kind::Request => {
            let typed: Request = serde_json::from_str(text).map_err(|e| e.to_string())?;
            serde_json::to_string(&typed).map_err(|e| e.to_string())?
        }
        Kind::Response => {
            let typed: Response = serde_json::from_str(text).map_err(|e| e.to_string())?;
            serde_json::to_string(&typed).map_err(|e| e.to_string())?
        }
    };
    serde_json::from_str(&written).map_err(|e| format!("written text is not JSON: {e}"))
}

/// How `output` differs from `original`: members of `original` missing from `output` (`removed`),
/// and anything else (`other`: added members, changed values).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub removed: Vec<String>,
    pub other: Vec<String>,
}

pub fn diff(original: &Value, output: &Value) -> Diff {
    let mut out = Diff::default();
    walk(original, output, "$", &mut out);
    out.removed.sort();
    out.other.sort();
    out
}

fn walk(original: &Value, output: &Value, path: &str, out: &mut Diff) {
    match (original, output) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let here = format!("{path}.{key}");
                match b.get(key) {
                    Some(other) => walk(value, other, &here, out),
                    None => out.removed.push(here),
                }
            }
            for key in b.keys().filter(|k| !a.contains_key(*k)) {
                out.other.push(format!("{path}.{key}: added"));
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                walk(x, y, &format!("{path}[{i}]"), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.other.push(format!("{path}: {a} became {b}")),
    }
}

/// The lines between `<!-- NAME: begin -->` and `<!-- NAME: end -->` in the README that hold
/// back-quoted items, each as its list of items (the first is the vector file).
pub fn readme_list(name: &str) -> Vec<Vec<String>> {
    let text = readme();
    let begin = format!("<!-- {name}: begin -->");
    let end = format!("<!-- {name}: end -->");
    let start = text.find(&begin).unwrap_or_else(|| panic!("README.md has no `{begin}`"));
    let stop = text[start..].find(&end).unwrap_or_else(|| panic!("README.md has no `{end}`")) + start;
    text[start + begin.len()..stop]
        .lines()
        .map(|line| line.split('`').skip(1).step_by(2).map(str::to_owned).collect::<Vec<_>>())
        .filter(|items| !items.is_empty())
        .collect()
}
