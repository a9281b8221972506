//! The `error` member of an error reply (`schemas/error.json`): one variant per registry code, tagged
//! by `code`, each with its own `details` type (spec 12.2).
//!
//! Lenient where the spec asks a client to be (CMP-2): members a type does not know are ignored, in
//! `error` and in `details`. So `SessionNotFound` and `InvalidToken` details that are not empty, which
//! the schema forbids (a server bug, SEC-3), are accepted and read as empty.

use serde::{Deserialize, Serialize};

use crate::checks;
use crate::scalar::{CommandName, ObjectId, ProtocolVersion, Timestamp};

/// The error object: code, human-readable `message` (shown to people, never parsed: spec ENV-8) and
/// the code's `details`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code")]
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
}

/// The registry's codes, for matching without the details.
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
    pub fn code(&self) -> ErrorCode {
        match self {
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
            | ErrorBody::InternalError { message, .. } => message,
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
