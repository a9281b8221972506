//! The `error` member of an error reply (`schemas/error.json`): one variant per registry code, tagged
//! by `code`, each with its own `details` type (spec 12.2).
//!
//! Lenient where the spec asks a client to be (CMP-2): members a type does not know are ignored, in
//! `error` and in `details`. So `SessionNotFound` and `InvalidToken` details that are not empty, which
//! the schema forbids (a server bug, SEC-3), are accepted and read as empty.
//!
//! A code the registry does not hold (a newer server's, spec ERR-5) is read as
//! [`ErrorBody::Unknown`]: the request failed, and nothing more is known. A registry code whose
//! `details` do not match its type is still refused: the catch-all is for codes, never for broken
//! details of a known code.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::checks;
use crate::scalar::{CommandName, ObjectId, ProtocolVersion, Timestamp};

/// The error object: code, human-readable `message` (shown to people, never parsed: spec ENV-8) and
/// the code's `details`.
///
/// Read it with serde (`serde_json::from_value::<ErrorBody>`, or as part of a [`crate::Response`]):
/// the derive below is `remote = "Self"`, so the path `ErrorBody::deserialize` names the derived,
/// registry-only reader, which the `Deserialize` impl further down calls for registry codes only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", tag = "code")]
pub enum ErrorBody {
    InvalidRequest {
        #[serde(deserialize_with = "checks::non_empty")]
        message: String,
        details: InvalidRequestDetails,
    },
    UnknownCommand {
        #[serde(deserialize_with = "checks::non_empty")]
        message: String,
        details: UnknownCommandDetails,
    },
    UnsupportedVersion {
        #[serde(deserialize_with = "checks::non_empty")]
        message: String,
        details: UnsupportedVersionDetails,
    },
    SessionNotFound {
        #[serde(deserialize_with = "checks::non_empty")]
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "checks::present")]
        details: Option<EmptyDetails>,
    },
    InvalidToken {
        #[serde(deserialize_with = "checks::non_empty")]
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "checks::present")]
        details: Option<EmptyDetails>,
    },
    SessionExpired {
        #[serde(deserialize_with = "checks::non_empty")]
        message: String,
        details: SessionExpiredDetails,
    },
    SessionClosed {
        #[serde(deserialize_with = "checks::non_empty")]
        message: String,
        details: SessionClosedDetails,
    },
    RevisionConflict {
        #[serde(deserialize_with = "checks::non_empty")]
        message: String,
        details: RevisionConflictDetails,
    },
    PayloadTooLarge {
        #[serde(deserialize_with = "checks::non_empty")]
        message: String,
        details: PayloadTooLargeDetails,
    },
    LimitExceeded {
        #[serde(deserialize_with = "checks::non_empty")]
        message: String,
        details: LimitExceededDetails,
    },
    EvaluationError {
        #[serde(deserialize_with = "checks::non_empty")]
        message: String,
        details: EvaluationErrorDetails,
    },
    ObjectNotFound {
        #[serde(deserialize_with = "checks::non_empty")]
        message: String,
        details: ObjectNotFoundDetails,
    },
    InternalError {
        #[serde(deserialize_with = "checks::non_empty")]
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "checks::present")]
        details: Option<InternalErrorDetails>,
    },
    /// A code that v1's registry does not hold, as a newer server may send (spec ERR-5, CLT-11):
    /// treat it as a failure of that request and assume nothing about the session.
    #[serde(skip)]
    Unknown(UnknownError),
}

/// The error object of a code this crate does not know. `details`, when present, is kept as the JSON
/// object it was (for logs); nothing in it has a meaning a v1 client can rely on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnknownError {
    #[serde(deserialize_with = "checks::non_empty")]
    pub code: String,
    #[serde(deserialize_with = "checks::non_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "checks::present")]
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Serialize for ErrorBody {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            // Written as read: `code`, `message` and `details` (when there were any).
            ErrorBody::Unknown(unknown) => unknown.serialize(serializer),
            // The derived writer (remote = "Self"): `{"code": …, "message": …, "details": …}`.
            registered => ErrorBody::serialize(registered, serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ErrorBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Dispatch on `code` first: a registry code is read by its own variant, strictly (its details
        // type); any other code is an `Unknown` error. So a known code with broken details is refused,
        // never read as unknown.
        let error = serde_json::Value::deserialize(deserializer)?;
        let registered = match error.get("code") {
            Some(serde_json::Value::String(code)) => ErrorCode::from_name(code).is_some(),
            Some(_) => return Err(D::Error::custom("`error.code` is not a string")),
            None if error.is_object() => return Err(D::Error::missing_field("code")),
            None => return Err(D::Error::custom("`error` is not a JSON object")),
        };
        if registered {
            ErrorBody::deserialize(error).map_err(D::Error::custom)
        } else {
            UnknownError::deserialize(error).map(ErrorBody::Unknown).map_err(D::Error::custom)
        }
    }
}

/// The registry's codes, for matching without the details. A code outside the registry has no
/// `ErrorCode` ([`ErrorBody::code`] is `None`; [`ErrorBody::code_name`] gives its text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    InvalidRequest,
    UnknownCommand,
    UnsupportedVersion,
    SessionNotFound,
    InvalidToken,
    SessionExpired,
    SessionClosed,
    RevisionConflict,
    PayloadTooLarge,
    LimitExceeded,
    EvaluationError,
    ObjectNotFound,
    InternalError,
}

impl ErrorCode {
    /// Every v1 code, in the order of `schemas/error.json`.
    pub const ALL: [ErrorCode; 13] = [
        ErrorCode::InvalidRequest,
        ErrorCode::UnknownCommand,
        ErrorCode::UnsupportedVersion,
        ErrorCode::SessionNotFound,
        ErrorCode::InvalidToken,
        ErrorCode::SessionExpired,
        ErrorCode::SessionClosed,
        ErrorCode::RevisionConflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::LimitExceeded,
        ErrorCode::EvaluationError,
        ErrorCode::ObjectNotFound,
        ErrorCode::InternalError,
    ];

    /// The registry code named `name`, or `None` for a code v1 does not define.
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|code| code.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "InvalidRequest",
            ErrorCode::UnknownCommand => "UnknownCommand",
            ErrorCode::UnsupportedVersion => "UnsupportedVersion",
            ErrorCode::SessionNotFound => "SessionNotFound",
            ErrorCode::InvalidToken => "InvalidToken",
            ErrorCode::SessionExpired => "SessionExpired",
            ErrorCode::SessionClosed => "SessionClosed",
            ErrorCode::RevisionConflict => "RevisionConflict",
            ErrorCode::PayloadTooLarge => "PayloadTooLarge",
            ErrorCode::LimitExceeded => "LimitExceeded",
            ErrorCode::EvaluationError => "EvaluationError",
            ErrorCode::ObjectNotFound => "ObjectNotFound",
            ErrorCode::InternalError => "InternalError",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ErrorBody {
    /// The registry code; `None` for a code v1 does not define ([`ErrorBody::Unknown`]).
    pub fn code(&self) -> Option<ErrorCode> {
        Some(match self {
            ErrorBody::Unknown(_) => return None,
            ErrorBody::InvalidRequest { .. } => ErrorCode::InvalidRequest,
            ErrorBody::UnknownCommand { .. } => ErrorCode::UnknownCommand,
            ErrorBody::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            ErrorBody::SessionNotFound { .. } => ErrorCode::SessionNotFound,
            ErrorBody::InvalidToken { .. } => ErrorCode::InvalidToken,
            ErrorBody::SessionExpired { .. } => ErrorCode::SessionExpired,
            ErrorBody::SessionClosed { .. } => ErrorCode::SessionClosed,
            ErrorBody::RevisionConflict { .. } => ErrorCode::RevisionConflict,
            ErrorBody::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            ErrorBody::LimitExceeded { .. } => ErrorCode::LimitExceeded,
            ErrorBody::EvaluationError { .. } => ErrorCode::EvaluationError,
            ErrorBody::ObjectNotFound { .. } => ErrorCode::ObjectNotFound,
            ErrorBody::InternalError { .. } => ErrorCode::InternalError,
        })
    }

    /// The code as the server wrote it, registry or not: for logs and messages to people.
    pub fn code_name(&self) -> &str {
        match self {
            ErrorBody::Unknown(unknown) => &unknown.code,
            registered => registered.code().map(ErrorCode::as_str).unwrap_or_default(),
        }
    }

    /// The human-readable text: for people and logs, never for program logic (spec ENV-8).
    pub fn message(&self) -> &str {
        match self {
            ErrorBody::InvalidRequest { message, .. }
            | ErrorBody::UnknownCommand { message, .. }
            | ErrorBody::UnsupportedVersion { message, .. }
            | ErrorBody::SessionNotFound { message, .. }
            | ErrorBody::InvalidToken { message, .. }
            | ErrorBody::SessionExpired { message, .. }
            | ErrorBody::SessionClosed { message, .. }
            | ErrorBody::RevisionConflict { message, .. }
            | ErrorBody::PayloadTooLarge { message, .. }
            | ErrorBody::LimitExceeded { message, .. }
            | ErrorBody::EvaluationError { message, .. }
            | ErrorBody::ObjectNotFound { message, .. }
            | ErrorBody::InternalError { message, .. }
            | ErrorBody::Unknown(UnknownError { message, .. }) => message,
        }
    }
}

/// Why a request was refused: a schema failure lists its violations (spec ERR-6); the other reasons
/// name a frame-level or retry check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum InvalidRequestDetails {
    Schema {
        #[serde(deserialize_with = "checks::items::<_, _, 1, 100>")]
        violations: Vec<Violation>,
    },
    Frames,
    Encoding,
    Json,
    NestingDepth,
    NotObject,
    IdReused,
}

/// One schema violation of a refused request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// JSONPath of the offending value, e.g. `$.parameters.token`.
    pub path: String,
    pub message: String,
    /// The schema keyword broken, e.g. `required`.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "checks::present")]
    pub rule: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnknownCommandDetails {
    pub supported_commands: Vec<CommandName>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsupportedVersionDetails {
    #[serde(deserialize_with = "checks::non_empty_list")]
    pub supported_versions: Vec<ProtocolVersion>,
}

/// The details of `SessionNotFound` and `InvalidToken`: these errors reveal nothing (spec SEC-3).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyDetails {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionExpiredDetails {
    pub expired_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClosedDetails {
    pub closed_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionConflictDetails {
    #[serde(deserialize_with = "checks::int::<_, 0>")]
    pub current_revision: u64,
    #[serde(deserialize_with = "checks::int::<_, 0>")]
    pub expected_revision: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadTooLargeDetails {
    #[serde(deserialize_with = "checks::int::<_, 1>")]
    pub max_message_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "checks::opt_int::<_, 0>")]
    pub received_bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitExceededDetails {
    /// The limit's name as in `hello`'s `limits`.
    #[serde(deserialize_with = "checks::non_empty")]
    pub limit: String,
    #[serde(deserialize_with = "checks::int::<_, 0>")]
    pub value: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluationErrorDetails {
    #[serde(deserialize_with = "checks::non_empty")]
    pub reason: String,
    /// 1-based character position in the code.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "checks::opt_int::<_, 1>")]
    pub position: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectNotFoundDetails {
    pub object_id: ObjectId,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InternalErrorDetails {
    /// Names the server's log entry.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "checks::opt_text::<_, 1, 128>")]
    pub incident_id: Option<String>,
}
