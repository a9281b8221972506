//! The example client's session, step by step, as a STUI TUI would go through it: hello; resume the
//! saved session or create one; evaluate; snapshot with `expected_revision`; a lost reply retried with
//! the same id on a new socket; reconnect and resume from the saved file; a revision conflict with
//! another client, resolved by resuming and snapshotting again; validate; close.
//!
//! Each step checks the reply it gets; anything else is a [`Failure`] (exit 1). The session file is
//! saved after every change of revision. Output names a session by its first 8 characters and never
//! shows the token.

use serde_json::json;
use stui_protocol::{
    capability, ClientDocument, ClientId, ClientState, Code, Command, CommandResult, CreateParameters, ErrorBody,
    ErrorReply, EvaluateParameters, HelloParameters, Request, Response, ResumeResult, SessionCredentials, SessionId,
    SnapshotParameters, SnapshotResult,
};

use crate::client::{CallError, Connection, SocketKind};
use crate::ids::new_request_id;
use crate::session_file::{self, LoadError, SavedSession};

pub struct Config {
    pub endpoint: String,
    pub socket: SocketKind,
    pub session_file: std::path::PathBuf,
    pub client_id: ClientId,
    pub timeout: std::time::Duration,
    pub attempts: u32,
    pub close: bool,
}

/// Why the session could not be carried through: exit status 1.
#[derive(Debug)]
pub struct Failure(pub String);

impl From<CallError> for Failure {
    fn from(e: CallError) -> Self {
        Failure(e.to_string())
    }
}

impl From<zmq::Error> for Failure {
    fn from(e: zmq::Error) -> Self {
        Failure(format!("socket error: {e}"))
    }
}

fn fail<T>(text: impl Into<String>) -> Result<T, Failure> {
    Err(Failure(text.into()))
}

fn short(id: &SessionId) -> String {
    format!("{}…", &id.as_str()[..8])
}

/// What a reply was, in a line: `RevisionConflict: expected revision 3, current is 4`.
fn describe(reply: &Response) -> String {
    match reply {
        Response::Success(success) => format!("a {} success", success.result.command()),
        Response::Error(ErrorReply { error, .. }) => format!("{}: {}", error.code_name(), error.message()),
    }
}

struct Run<'a> {
    config: &'a Config,
    connection: Connection,
    requests: u32,
}

impl<'a> Run<'a> {
    fn say(&self, text: impl AsRef<str>) {
        println!("[{}] {}", self.config.socket.name(), text.as_ref());
    }

    fn connect(config: &Config) -> Result<Connection, Failure> {
        Ok(Connection::connect(&config.endpoint, config.socket, config.timeout, config.attempts)?)
    }

    fn call(&mut self, request: &Request) -> Result<Response, Failure> {
        self.requests += 1;
        Ok(self.connection.call(request)?)
    }

    /// The result of a command that must succeed.
    fn success(&mut self, command: Command) -> Result<CommandResult, Failure> {
        let name = command.name();
        match self.call(&Request::new(new_request_id(), command))? {
            Response::Success(success) => Ok(success.result),
            other => fail(format!("{name}: {}", describe(&other))),
        }
    }

    fn save(&self, session: &SavedSession) -> Result<(), Failure> {
        session_file::save(&self.config.session_file, session)
            .map_err(|e| Failure(format!("saving {}: {e}", self.config.session_file.display())))
    }

    fn credentials(session: &SavedSession) -> SessionCredentials {
        SessionCredentials { session_id: session.session_id.clone(), token: session.token.clone() }
    }

    fn create(&mut self) -> Result<SavedSession, Failure> {
        let create = Command::SessionCreate(CreateParameters { client_id: self.config.client_id.clone() });
        match self.call(&Request::new(new_request_id(), create))? {
            Response::Success(success) => match success.result {
                CommandResult::SessionCreate(created) => {
                    let session = SavedSession {
                        endpoint: self.config.endpoint.clone(),
                        session_id: created.session_id,
                        token: created.token,
                        revision: created.revision,
                    };
                    self.save(&session)?;
                    self.say(format!(
                        "created session {} (revision {}, expires {}); saved to {} (mode 0600)",
                        short(&session.session_id),
                        session.revision,
                        created.expires_at,
                        self.config.session_file.display()
                    ));
                    Ok(session)
                }
                other => fail(format!("session.create answered with a {} result", other.command())),
            },
            Response::Error(ErrorReply { error: ErrorBody::LimitExceeded { details, .. }, .. }) => fail(format!(
                "the server holds too many sessions for client id {:?} ({} = {}): close one first",
                self.config.client_id.as_str(),
                details.limit,
                details.value
            )),
            other => fail(format!("session.create: {}", describe(&other))),
        }
    }

    fn resume(&mut self, session: &SavedSession) -> Result<Result<ResumeResult, ErrorBody>, Failure> {
        match self.call(&Request::new(new_request_id(), Command::SessionResume(Self::credentials(session))))? {
            Response::Success(success) => match success.result {
                CommandResult::SessionResume(resumed) => Ok(Ok(resumed)),
                other => fail(format!("session.resume answered with a {} result", other.command())),
            },
            Response::Error(reply) => Ok(Err(reply.error)),
        }
    }

    /// The saved session, resumed; or a new one when there is none or it is gone.
    fn open_session(&mut self) -> Result<SavedSession, Failure> {
        let mut saved = match session_file::load(&self.config.session_file) {
            Ok(saved) => saved,
            Err(LoadError::Missing) => return self.create(),
            Err(other) => return fail(other.to_string()),
        };
        match self.resume(&saved)? {
            Ok(resumed) => {
                saved.revision = resumed.revision;
                saved.endpoint = self.config.endpoint.clone();
                self.save(&saved)?;
                self.say(format!(
                    "resumed saved session {} at revision {} (source {:?}{})",
                    short(&saved.session_id),
                    resumed.revision,
                    resumed.source,
                    resumed
                        .fallback
                        .map(|f| format!(", fell back from revision {} to {}", f.from_revision, f.to_revision))
                        .unwrap_or_default()
                ));
                Ok(saved)
            }
            // The saved session can never be used again: start afresh, as a TUI would.
            Err(
                error @ (ErrorBody::SessionNotFound { .. }
                | ErrorBody::SessionExpired { .. }
                | ErrorBody::SessionClosed { .. }
                | ErrorBody::InvalidToken { .. }),
            ) => {
                self.say(format!(
                    "saved session {} is gone ({}); creating a new one",
                    short(&saved.session_id),
                    error.code_name()
                ));
                session_file::remove(&self.config.session_file)
                    .map_err(|e| Failure(format!("removing {}: {e}", self.config.session_file.display())))?;
                self.create()
            }
            Err(other) => fail(format!("session.resume: {}: {}", other.code_name(), other.message())),
        }
    }

    fn snapshot_request(session: &SavedSession, state: ClientState, expected_revision: u64) -> Request {
        Request::new(
            new_request_id(),
            Command::SessionSnapshot(SnapshotParameters {
                session_id: session.session_id.clone(),
                token: session.token.clone(),
                state: Some(state),
                expected_revision: Some(expected_revision),
            }),
        )
    }
}

fn document(value: serde_json::Value) -> ClientDocument {
    match value {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("documents are written as objects here"),
    }
}

fn snapshotted(reply: &Response) -> Option<&SnapshotResult> {
    match reply {
        Response::Success(success) => match &success.result {
            CommandResult::SessionSnapshot(result) => Some(result),
            _ => None,
        },
        Response::Error(_) => None,
    }
}

/// Runs the whole session; `Ok` is a summary line.
pub fn run(config: &Config) -> Result<String, Failure> {
    let mut run = Run { config, connection: Run::connect(config)?, requests: 0 };

    // hello: what the server speaks and serves.
    let hello = match run.success(Command::Hello(HelloParameters {}))? {
        CommandResult::Hello(hello) => hello,
        other => return fail(format!("hello answered with a {} result", other.command())),
    };
    if !hello.protocol_versions.iter().any(|v| v.as_str() == "1.0") {
        return fail("the server does not speak protocol 1.0");
    }
    run.say(format!(
        "hello: {} {}, capabilities [{}], idle timeout {} s",
        hello.server.name,
        hello.server.version,
        hello.capabilities.join(", "),
        hello.limits.idle_timeout_s
    ));

    let mut session = run.open_session()?;

    // evaluate (an optional command: only when announced).
    let evaluates = hello.supports(capability::EVALUATE);
    if evaluates {
        let code = Code::new("x := 3 + 4. x * 2").expect("valid code");
        let evaluate = Command::Evaluate(EvaluateParameters {
            session_id: session.session_id.clone(),
            token: session.token.clone(),
            code,
        });
        match run.success(evaluate)? {
            CommandResult::Evaluate(value)
                if value.print_string == "14" && value.class_name.as_str() == "SmallInteger" =>
            {
                run.say("evaluated `x := 3 + 4. x * 2`: 14 (SmallInteger)")
            }
            CommandResult::Evaluate(value) => {
                return fail(format!(
                    "evaluate gave {} ({}), not 14 (SmallInteger)",
                    value.print_string, value.class_name
                ))
            }
            other => return fail(format!("evaluate answered with a {} result", other.command())),
        }
    } else {
        run.say("the server does not announce `evaluate`: step left out");
    }

    // snapshot with expected_revision: the client's preferences become a durable revision.
    let preferences = document(json!({"theme": "dark", "font_scale": 1.25, "recent": ["x"], "pinned": null}));
    let state = ClientState { inspector: Some(document(json!({"open": []}))), preferences: Some(preferences.clone()) };
    let snapshot = Run::snapshot_request(&session, state, session.revision);
    let first = run.call(&snapshot)?;
    let saved = match snapshotted(&first) {
        Some(result) => result.clone(),
        None => return fail(format!("session.snapshot: {}", describe(&first))),
    };
    if saved.revision != session.revision + 1 {
        return fail(format!("snapshot at revision {} gave revision {}", session.revision, saved.revision));
    }
    session.revision = saved.revision;
    run.save(&session)?;
    run.say(format!(
        "snapshot (expected_revision {}): revision {} saved at {}",
        saved.revision - 1,
        saved.revision,
        saved.saved_at
    ));

    // A lost reply: the same request (same id, same body) again, on a new socket. The server answers
    // from its retry cache - the original reply, timestamp included - and does not snapshot twice.
    run.connection.reconnect()?;
    let again = run.call(&snapshot)?;
    if again != first {
        return fail(format!(
            "request {} sent again was executed again: {} (first reply: {})",
            snapshot.id,
            describe(&again),
            describe(&first)
        ));
    }
    run.say(format!(
        "request {} sent again on a new socket: the original reply (revision {}, same timestamp)",
        snapshot.id, saved.revision
    ));

    // Reconnect as a restarted client would: a new connection, the session read back from the file.
    run.connection = Run::connect(config)?;
    let reread = session_file::load(&config.session_file).map_err(|e| Failure(e.to_string()))?;
    let resumed = match run.resume(&reread)? {
        Ok(resumed) => resumed,
        Err(error) => {
            return fail(format!("session.resume after reconnecting: {}: {}", error.code_name(), error.message()))
        }
    };
    if resumed.revision != session.revision || resumed.state.preferences != preferences {
        return fail(format!(
            "resumed revision {} with preferences {}; expected revision {} with {}",
            resumed.revision,
            serde_json::Value::Object(resumed.state.preferences.clone()),
            session.revision,
            serde_json::Value::Object(preferences.clone())
        ));
    }
    if evaluates {
        match resumed.state.workspace.variables.iter().find(|(name, _)| name.as_str() == "x") {
            Some((_, binding)) if binding.print_string == "7" => {}
            other => return fail(format!("the resumed workspace binds x to {other:?}, not 7")),
        }
    }
    run.say(format!(
        "reconnected on a new socket and resumed {} from {}: revision {}, source {:?}, preferences and workspace intact",
        short(&session.session_id),
        config.session_file.display(),
        resumed.revision,
        resumed.source
    ));

    // A revision conflict: another client (a second window) snapshots first.
    let mut other = Run::connect(config)?;
    let theirs = ClientState { inspector: None, preferences: Some(document(json!({"theme": "light"}))) };
    run.requests += 1;
    let their_reply = other.call(&Run::snapshot_request(&session, theirs, session.revision))?;
    let their_revision = match snapshotted(&their_reply) {
        Some(result) => result.revision,
        None => return fail(format!("the other client's snapshot: {}", describe(&their_reply))),
    };
    drop(other);
    let ours = ClientState { inspector: Some(document(json!({"open": ["x"]}))), preferences: None };
    let conflicting = Run::snapshot_request(&session, ours.clone(), session.revision);
    let current = match run.call(&conflicting)? {
        Response::Error(ErrorReply { error: ErrorBody::RevisionConflict { details, .. }, .. }) => {
            run.say(format!(
                "snapshot (expected_revision {}): RevisionConflict, current revision {} (another client saved first)",
                details.expected_revision, details.current_revision
            ));
            details.current_revision
        }
        other => {
            return fail(format!("a snapshot behind another client's: {}, not RevisionConflict", describe(&other)))
        }
    };
    if current != their_revision {
        return fail(format!("RevisionConflict names revision {current}; the other client saved {their_revision}"));
    }
    // Resolve: read what the other client saved, then save ours on top of it.
    let latest = match run.resume(&session)? {
        Ok(resumed) => resumed,
        Err(error) => {
            return fail(format!("session.resume after a conflict: {}: {}", error.code_name(), error.message()))
        }
    };
    let resolved = run.call(&Run::snapshot_request(&session, ours, latest.revision))?;
    match snapshotted(&resolved) {
        Some(result) => {
            session.revision = result.revision;
            run.save(&session)?;
            run.say(format!(
                "resumed revision {} (theme {}), saved again with expected_revision {}: revision {}",
                latest.revision,
                latest.state.preferences.get("theme").cloned().unwrap_or_default(),
                latest.revision,
                result.revision
            ));
        }
        None => return fail(format!("the snapshot after resolving a conflict: {}", describe(&resolved))),
    }

    // validate: usable, at the revision we saved.
    match run.success(Command::SessionValidate(Run::credentials(&session)))? {
        CommandResult::SessionValidate(valid) if valid.revision == session.revision => run.say(format!(
            "validate: revision {}, {} attached client(s), expires {}",
            valid.revision, valid.attached_clients, valid.expires_at
        )),
        CommandResult::SessionValidate(valid) => {
            return fail(format!("validate reports revision {}, expected {}", valid.revision, session.revision))
        }
        other => return fail(format!("session.validate answered with a {} result", other.command())),
    }

    if config.close {
        match run.success(Command::SessionClose(Run::credentials(&session)))? {
            CommandResult::SessionClose(_) => {}
            other => return fail(format!("session.close answered with a {} result", other.command())),
        }
        session_file::remove(&config.session_file)
            .map_err(|e| Failure(format!("removing {}: {e}", config.session_file.display())))?;
        match run.call(&Request::new(new_request_id(), Command::SessionValidate(Run::credentials(&session))))? {
            Response::Error(ErrorReply { error: ErrorBody::SessionClosed { details, .. }, .. }) => run.say(format!(
                "closed {} and removed the session file; it now answers SessionClosed (closed at {})",
                short(&session.session_id),
                details.closed_at
            )),
            other => return fail(format!("a closed session answered {}", describe(&other))),
        }
    } else {
        run.say(format!("left {} open at revision {} (--no-close)", short(&session.session_id), session.revision));
    }
    Ok(format!("{} requests, {} sent again after a timeout", run.requests, run.connection.retries))
}
