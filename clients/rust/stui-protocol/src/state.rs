//! The session state document (`schemas/state.json`): what `session.resume` returns, and the
//! client-owned parts that `session.snapshot` sends.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::checks;
use crate::scalar::{ClassName, ObjectId, VariableName};

/// A free-form JSON object owned by the client (`inspector`, `preferences`): stored verbatim by the
/// server. The only place a v1 message may carry `null` and non-integer numbers (spec CMP).
pub type ClientDocument = serde_json::Map<String, serde_json::Value>;

/// The whole state of a session, as `session.resume` returns it. The server owns `workspace` and
/// `objects`; the client owns `inspector` and `preferences`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub workspace: Workspace,
    pub objects: BTreeMap<ObjectId, ObjectEntry>,
    pub inspector: ClientDocument,
    pub preferences: ClientDocument,
}

/// The workspace built by `evaluate`: variable bindings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    pub variables: BTreeMap<VariableName, Binding>,
}

/// A workspace variable's value, as class and print string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    #[serde(rename = "class")]
    pub class_name: ClassName,
    pub print_string: String,
}

/// An object registered by `inspect`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectEntry {
    #[serde(rename = "class")]
    pub class_name: ClassName,
    pub print_string: String,
}

/// The client-owned parts sent with `session.snapshot`: a part that is given replaces the stored one,
/// a part left out (`None`) is kept. Never written as `null`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientState {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "checks::present")]
    pub inspector: Option<ClientDocument>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "checks::present")]
    pub preferences: Option<ClientDocument>,
}
