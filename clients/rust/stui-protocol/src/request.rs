//! Requests (`schemas/request.json` and each command's `$defs/Parameters`): the envelope
//! `{"id", "version", "command", "parameters"}` with [`Command`] tagged by `command` and carrying its
//! parameters.
//!
//! Strict both ways, like the server (spec CMP-1, CMP-4): serialising writes only the members the
//! schemas define and never `null`; deserialising refuses unknown members, `null` for an optional
//! member, and anything else the schemas refuse that a type can see.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::checks;
use crate::scalar::{ClientId, Code, ObjectId, RequestId, SessionId, Token, V1};
use crate::shape;
use crate::state::ClientState;

/// One request message.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub id: RequestId,
    pub version: V1,
    pub command: Command,
}

impl Request {
    pub fn new(id: RequestId, command: Command) -> Self {
        Request { id, version: V1, command }
    }

    /// The compact JSON body to send.
    pub fn to_vec(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a request always serialises")
    }
}

/// A command with its parameters; serialised as the envelope's `command` and `parameters` members.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", content = "parameters")]
pub enum Command {
    #[serde(rename = "hello")]
    Hello(HelloParameters),
    #[serde(rename = "session.create")]
    SessionCreate(CreateParameters),
    #[serde(rename = "session.resume")]
    SessionResume(SessionCredentials),
    #[serde(rename = "session.validate")]
    SessionValidate(SessionCredentials),
    #[serde(rename = "session.snapshot")]
    SessionSnapshot(SnapshotParameters),
    #[serde(rename = "session.close")]
    SessionClose(SessionCredentials),
    #[serde(rename = "evaluate")]
    Evaluate(EvaluateParameters),
    #[serde(rename = "inspect")]
    Inspect(InspectParameters),
}

impl Command {
    /// The command name as written in `command`.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Hello(_) => "hello",
            Command::SessionCreate(_) => "session.create",
            Command::SessionResume(_) => "session.resume",
            Command::SessionValidate(_) => "session.validate",
            Command::SessionSnapshot(_) => "session.snapshot",
            Command::SessionClose(_) => "session.close",
            Command::Evaluate(_) => "evaluate",
            Command::Inspect(_) => "inspect",
        }
    }
}

/// `hello` takes an empty object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelloParameters {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateParameters {
    pub client_id: ClientId,
}

/// The parameters of `session.resume`, `session.validate` and `session.close`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionCredentials {
    pub session_id: SessionId,
    pub token: Token,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotParameters {
    pub session_id: SessionId,
    pub token: Token,
    /// The client-owned parts to store; `None` keeps both.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "checks::present")]
    pub state: Option<ClientState>,
    /// Snapshot only if the session is at this revision, else `RevisionConflict` (spec SNP-4).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "checks::opt_int::<_, 0>")]
    pub expected_revision: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluateParameters {
    pub session_id: SessionId,
    pub token: Token,
    pub code: Code,
}

/// `inspect` takes exactly one of `expression` and `object_id` (spec INS-5): a type, not two options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InspectParameters {
    pub session_id: SessionId,
    pub token: Token,
    pub target: InspectTarget,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InspectTarget {
    /// Evaluate this and register the value (`expression`).
    Expression(Code),
    /// An object registered earlier (`object_id`).
    Object(ObjectId),
}

/// The members of `inspect`'s parameters as they are on the wire.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct InspectWire<'a> {
    session_id: std::borrow::Cow<'a, SessionId>,
    token: std::borrow::Cow<'a, Token>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "checks::present")]
    expression: Option<std::borrow::Cow<'a, Code>>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "checks::present")]
    object_id: Option<std::borrow::Cow<'a, ObjectId>>,
}

impl Serialize for InspectParameters {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use std::borrow::Cow::Borrowed;
        let (expression, object_id) = match &self.target {
            InspectTarget::Expression(code) => (Some(Borrowed(code)), None),
            InspectTarget::Object(id) => (None, Some(Borrowed(id))),
        };
        InspectWire { session_id: Borrowed(&self.session_id), token: Borrowed(&self.token), expression, object_id }
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for InspectParameters {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = InspectWire::deserialize(deserializer)?;
        let target = match (wire.expression, wire.object_id) {
            (Some(code), None) => InspectTarget::Expression(code.into_owned()),
            (None, Some(id)) => InspectTarget::Object(id.into_owned()),
            _ => return Err(D::Error::custom("inspect takes exactly one of `expression` and `object_id`")),
        };
        Ok(InspectParameters { session_id: wire.session_id.into_owned(), token: wire.token.into_owned(), target })
    }
}

impl Serialize for Request {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            id: &'a RequestId,
            version: V1,
            #[serde(flatten)]
            command: &'a Command,
        }
        Wire { id: &self.id, version: self.version, command: &self.command }.serialize(serializer)
    }
}

/// The envelope before `command` has chosen the type of `parameters`. `deny_unknown_fields` is why
/// the envelope is not a `#[serde(flatten)]` of [`Command`]: serde cannot combine the two.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    id: RequestId,
    version: V1,
    command: String,
    parameters: serde_json::Value,
}

impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let raw = RawRequest::deserialize(&value).map_err(D::Error::custom)?;
        let mut tagged = serde_json::Map::new();
        tagged.insert("command".into(), serde_json::Value::String(raw.command));
        tagged.insert("parameters".into(), raw.parameters);
        let command = Command::deserialize(serde_json::Value::Object(tagged)).map_err(D::Error::custom)?;
        let request = Request { id: raw.id, version: raw.version, command };
        let written = serde_json::to_value(&request).map_err(D::Error::custom)?;
        shape::same_shape(&value, &written).map_err(D::Error::custom)?;
        Ok(request)
    }
}
