//! Replies (`schemas/response.json` and each command's `$defs/Result`): [`Response`] is a success or
//! an error, told apart by `status`; a success's result is typed by the echoed `command`.
//!
//! Lenient where a client should be (spec CMP-2): members the types do not know are ignored, at every
//! level. Strict where the schemas are explicit: a success never carries `error` and an error never
//! carries `result` (ENV-3, ENV-4), optional members are never `null` (CMP-3), integers are integers
//! (CMP-5), and an error reply's `id` and `command` are present, `null` when the server could not read
//! them (ENV-5, ENV-6).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::checks;
use crate::error::ErrorBody;
use crate::scalar::{ClassName, CommandName, ObjectId, ProtocolVersion, RequestId, SessionId, Timestamp, Token, V1};
use crate::shape;
use crate::state::State;

/// One reply message.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Response {
    Success(SuccessReply),
    Error(ErrorReply),
}

impl Response {
    /// Reads one reply body.
    pub fn from_slice(body: &[u8]) -> serde_json::Result<Self> {
        serde_json::from_slice(body)
    }

    /// The request id the reply answers; `None` only for an error reply to a request whose id the
    /// server could not read (which a correct client never sends).
    pub fn id(&self) -> Option<&RequestId> {
        match self {
            Response::Success(reply) => Some(&reply.id),
            Response::Error(reply) => reply.id.as_ref(),
        }
    }

    pub fn timestamp(&self) -> &Timestamp {
        match self {
            Response::Success(reply) => &reply.timestamp,
            Response::Error(reply) => &reply.timestamp,
        }
    }
}

impl<'de> Deserialize<'de> for Response {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Look at `status` first, then read the whole message as that kind (spec 14.4): one enum cannot
        // be tagged by `status` and, inside, by `command`.
        let message = serde_json::Value::deserialize(deserializer)?;
        let status = match message.get("status") {
            Some(serde_json::Value::String(status)) => status.as_str(),
            Some(_) => return Err(D::Error::custom("`status` is not a string")),
            None if message.is_object() => return Err(D::Error::missing_field("status")),
            None => return Err(D::Error::custom("a reply is a JSON object")),
        };
        let response = match status {
            "success" if message.get("error").is_some() => {
                return Err(D::Error::custom("a success reply carries `error` (ENV-3)"));
            }
            "error" if message.get("result").is_some() => {
                return Err(D::Error::custom("an error reply carries `result` (ENV-4)"));
            }
            "success" => SuccessReply::deserialize(&message).map(Response::Success),
            "error" => ErrorReply::deserialize(&message).map(Response::Error),
            other => return Err(D::Error::unknown_variant(other, &["success", "error"])),
        }
        .map_err(D::Error::custom)?;
        let written = serde_json::to_value(&response).map_err(D::Error::custom)?;
        shape::same_shape(&message, &written).map_err(D::Error::custom)?;
        Ok(response)
    }
}

/// A success reply (without its `status`, which [`Response`] writes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuccessReply {
    pub id: RequestId,
    pub version: V1,
    /// The echoed `command` and its `result`.
    #[serde(flatten)]
    pub result: CommandResult,
    pub timestamp: Timestamp,
}

/// An error reply (without its `status`, which [`Response`] writes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// The request's id; `None` (written `null`) when the server could not read a valid one.
    #[serde(deserialize_with = "checks::nullable")]
    pub id: Option<RequestId>,
    pub version: V1,
    /// The request's command; `None` (written `null`) when the server could not read a valid name.
    #[serde(deserialize_with = "checks::nullable")]
    pub command: Option<CommandName>,
    pub error: ErrorBody,
    pub timestamp: Timestamp,
}

/// A success's `result`, typed by the echoed `command`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", content = "result")]
pub enum CommandResult {
    #[serde(rename = "hello")]
    Hello(HelloResult),
    #[serde(rename = "session.create")]
    SessionCreate(CreateResult),
    #[serde(rename = "session.resume")]
    SessionResume(ResumeResult),
    #[serde(rename = "session.validate")]
    SessionValidate(ValidateResult),
    #[serde(rename = "session.snapshot")]
    SessionSnapshot(SnapshotResult),
    #[serde(rename = "session.close")]
    SessionClose(CloseResult),
    #[serde(rename = "evaluate")]
    Evaluate(EvaluateResult),
    #[serde(rename = "inspect")]
    Inspect(InspectResult),
}

impl CommandResult {
    /// The command name the result answers.
    pub fn command(&self) -> &'static str {
        match self {
            CommandResult::Hello(_) => "hello",
            CommandResult::SessionCreate(_) => "session.create",
            CommandResult::SessionResume(_) => "session.resume",
            CommandResult::SessionValidate(_) => "session.validate",
            CommandResult::SessionSnapshot(_) => "session.snapshot",
            CommandResult::SessionClose(_) => "session.close",
            CommandResult::Evaluate(_) => "evaluate",
            CommandResult::Inspect(_) => "inspect",
        }
    }
}

/// `hello`: what the server speaks and its limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloResult {
    #[serde(deserialize_with = "checks::unique_items::<_, _, 1>")]
    pub protocol_versions: Vec<ProtocolVersion>,
    pub server: ServerInfo,
    /// Optional features served (see [`crate::capability`]); a client ignores names it does not know.
    #[serde(deserialize_with = "checks::capabilities")]
    pub capabilities: Vec<String>,
    pub limits: Limits,
}

impl HelloResult {
    pub fn supports(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    #[serde(deserialize_with = "checks::text::<_, 1, 128>")]
    pub name: String,
    #[serde(deserialize_with = "checks::text::<_, 1, 64>")]
    pub version: String,
}

/// The limits a server announces (spec LIM-1). Durations in whole seconds, sizes in bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    #[serde(deserialize_with = "checks::int::<_, 65536>")]
    pub max_message_bytes: u64,
    #[serde(deserialize_with = "checks::int::<_, 32>")]
    pub max_nesting_depth: u64,
    #[serde(deserialize_with = "checks::int::<_, 1>")]
    pub idle_timeout_s: u64,
    #[serde(deserialize_with = "checks::int::<_, 1>")]
    pub absolute_timeout_s: u64,
    #[serde(deserialize_with = "checks::int::<_, 1>")]
    pub tombstone_retention_s: u64,
    #[serde(deserialize_with = "checks::int::<_, 1>")]
    pub retry_window_s: u64,
    #[serde(deserialize_with = "checks::int::<_, 1>")]
    pub max_sessions_per_client: u64,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "checks::opt_int::<_, 2>")]
    pub max_revisions_kept: Option<u64>,
    /// Active sessions the server holds in all clients together (LIM-6); create beyond it is LimitExceeded.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "checks::opt_int::<_, 16>")]
    pub max_sessions: Option<u64>,
    /// Bytes the retry cache may hold (RTY-12): past it, cached evaluate/inspect replies may be dropped
    /// before `retry_window_s`.
    #[serde(default, skip_serializing_if = "Option::is_none",
            deserialize_with = "checks::opt_int::<_, 1048576>")]
    pub retry_cache_bytes: Option<u64>,
}

/// `session.create`: the new session. The token is returned once; keep it secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateResult {
    pub session_id: SessionId,
    pub token: Token,
    /// Always 0.
    #[serde(deserialize_with = "checks::zero")]
    pub revision: u64,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// `session.resume`: the session's state, live or restored from storage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResumeResult {
    pub session_id: SessionId,
    #[serde(deserialize_with = "checks::int::<_, 0>")]
    pub revision: u64,
    pub state: State,
    pub expires_at: Timestamp,
    pub source: Source,
    /// Present when newer revisions were unreadable and an older one was restored (spec PER-10).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "checks::present")]
    pub fallback: Option<Fallback>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The server still held the session.
    Live,
    /// Restored from storage.
    Durable,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fallback {
    #[serde(deserialize_with = "checks::int::<_, 0>")]
    pub from_revision: u64,
    #[serde(deserialize_with = "checks::int::<_, 0>")]
    pub to_revision: u64,
    pub reason: FallbackReason,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FallbackReason {
    /// The newer revision failed its checksum.
    Checksum,
    /// Anything else.
    Unreadable,
}

/// `session.validate`: the session is usable (an unusable one is an error reply).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidateResult {
    pub session_id: SessionId,
    /// Always true.
    #[serde(deserialize_with = "checks::always_true")]
    pub valid: bool,
    #[serde(deserialize_with = "checks::int::<_, 0>")]
    pub revision: u64,
    pub expires_at: Timestamp,
    pub last_active_at: Timestamp,
    /// Client connections using the session, the requesting one included (spec CON-7).
    #[serde(deserialize_with = "checks::int::<_, 1>")]
    pub attached_clients: u64,
}

/// `session.snapshot`: the new revision, durable at `saved_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotResult {
    pub session_id: SessionId,
    #[serde(deserialize_with = "checks::int::<_, 0>")]
    pub revision: u64,
    pub saved_at: Timestamp,
}

/// `session.close`: closed for good.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseResult {
    pub session_id: SessionId,
    /// Always true.
    #[serde(deserialize_with = "checks::always_true")]
    pub closed: bool,
}

/// `evaluate`: the value of the last statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluateResult {
    pub print_string: String,
    #[serde(rename = "class")]
    pub class_name: ClassName,
}

/// `inspect`: the registered object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectResult {
    pub object_id: ObjectId,
    #[serde(rename = "class")]
    pub class_name: ClassName,
    pub print_string: String,
}
