//! Typed messages of the STUI session protocol v1, for serde.
//!
//! * [`Request`]: the envelope `{"id", "version", "command", "parameters"}`, with [`Command`] tagged by
//!   `command` and carrying that command's parameters.
//! * [`Response`]: a [`SuccessReply`] or an [`ErrorReply`], told apart by `status`; a success's
//!   [`CommandResult`] is typed by the echoed `command`, an error's [`ErrorBody`] by its `code`, each
//!   code with its own details type.
//!
//! The field lists live in the kit's JSON Schemas (`schemas/`); these types restate them by hand, and
//! `clients/rust/ci.sh` proves on every change that they agree: every test vector of `spec/examples`
//! and thousands of messages generated from the schemas round-trip, and every invalid vector that a
//! type can catch is rejected (the few it cannot are listed in `clients/rust/README.md`).
//!
//! Conventions, from spec 13 (compatibility):
//! * optional members are `Option<T>`, left out when `None` and never written as `null`; reading
//!   `null` for one is an error. The only nulls are an error reply's `id` and `command`, which are
//!   always written, whatever a client puts into its `inspector` and `preferences` documents, and
//!   whatever the `details` of an error code v1 does not define hold (kept as read).
//! * every integer is a `u64` from its schema minimum to 2^53-1; `1800.0` or `3e0` is refused.
//! * requests are strict (unknown members refused, as a server does); replies are lenient (unknown
//!   members ignored, as a client must be, CMP-2).
//! * an error code outside v1's registry is read as [`ErrorBody::Unknown`], a failure of that request
//!   (ERR-5); a registry code is read by its own variant, strictly.
//! * identifiers are checked string types ([`SessionId`], [`Token`], [`Timestamp`], ...); a [`Token`]
//!   never shows itself in `Debug` output.
//!
//! This crate never does I/O: it reads and writes message bodies; the transport is the caller's.

mod checks;
mod error;
mod request;
mod response;
mod scalar;
mod shape;
mod state;

pub use checks::MAX_SAFE_INTEGER;
pub use error::{
    EmptyDetails, ErrorBody, ErrorCode, EvaluationErrorDetails, InternalErrorDetails, InvalidRequestDetails,
    LimitExceededDetails, ObjectNotFoundDetails, PayloadTooLargeDetails, RevisionConflictDetails, SessionClosedDetails,
    SessionExpiredDetails, UnknownCommandDetails, UnknownError, UnsupportedVersionDetails, Violation,
};
pub use request::{
    Command, CreateParameters, EvaluateParameters, HelloParameters, InspectParameters, InspectTarget, Request,
    SessionCredentials, SnapshotParameters,
};
pub use response::{
    CloseResult, CommandResult, CreateResult, ErrorReply, EvaluateResult, Fallback, FallbackReason, HelloResult,
    InspectResult, Limits, Response, ResumeResult, ServerInfo, SnapshotResult, Source, SuccessReply, ValidateResult,
};
pub use scalar::{
    ClassName, ClientId, Code, CommandName, InvalidValue, ObjectId, ProtocolVersion, RequestId, SessionId, Timestamp,
    Token, VariableName, V1,
};
pub use state::{Binding, ClientDocument, ClientState, ObjectEntry, State, Workspace};

/// Every v1 command name, in the order of [`Command`].
pub const COMMANDS: [&str; 8] = [
    "hello",
    "session.create",
    "session.resume",
    "session.validate",
    "session.snapshot",
    "session.close",
    "evaluate",
    "inspect",
];

/// Capability names a v1 server may announce in `hello` (spec VER). A client ignores names it does not
/// know.
pub mod capability {
    /// The `evaluate` command is served.
    pub const EVALUATE: &str = "evaluate";
    /// The `inspect` command is served.
    pub const INSPECT: &str = "inspect";
    /// Replies to `session.snapshot` and `session.close` survive a server restart in the retry cache.
    pub const RETRY_DURABLE: &str = "retry.durable";
}
