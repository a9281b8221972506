//! The example client's session, step by step, as a STUI TUI would go through it: hello; resume the
//! saved session or create one; evaluate; snapshot with `expected_revision`; a lost reply retried with
//! the same id on a new socket; reconnect and resume from the saved file; a revision conflict with
//! another client, resolved by resuming and snapshotting again; validate; close.
//!
//! What it survives (spec 16.2, CLT-9, CLT-11): a request that fails - an error reply, a code v1 does
//! not know, no reply after every attempt - is a failure of that request only. The client says so,
//! counts it, keeps its session and goes on with the next step. Only `SessionExpired`,
//! `SessionClosed`, `SessionNotFound` and `InvalidToken` end a session for it (CLT-7): it drops the
//! session and its file, creates a new one and goes on with that. A `RevisionConflict` on any snapshot
//! is resolved by resuming and snapshotting again with the current revision (CLT-10).
//!
//! A [`Failure`] (exit 1) is kept for what leaves nothing to go on with (no reply to `hello`, no session
//! can be created, a socket error, an unprotected session file) and for a server that breaks the
//! spec where the client can tell (a retry executed twice, a revision that does not follow, a resumed
//! state other than the one saved). The session file is saved after every change of revision. Output
//! names a session by its first 8 characters and never shows the token.

use std::time::Duration;

use serde_json::json;
use stui_protocol::{
    capability, ClientDocument, ClientId, ClientState, Code, Command, CommandResult, CreateParameters, ErrorBody,
    ErrorReply, EvaluateParameters, HelloParameters, HelloResult, Request, Response, ResumeResult, SessionCredentials,
    SessionId, SnapshotParameters, SnapshotResult,
};

use crate::client::{CallError, Connection, SocketKind};
use crate::ids::new_request_id;
use crate::session_file::{self, LoadError, SavedSession};

pub struct Config {
    pub endpoint: String,
    pub socket: SocketKind,
    pub session_file: std::path::PathBuf,
    pub client_id: ClientId,
    pub timeout: Duration,
    pub attempts: u32,
    pub close: bool,
}

/// Why the session could not be carried through: exit status 1.
#[derive(Debug)]
pub struct Failure(pub String);

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

fn describe_error(error: &ErrorBody) -> String {
    match error {
        ErrorBody::Unknown(_) => format!("{} (a code v1 does not define): {}", error.code_name(), error.message()),
        _ => format!("{}: {}", error.code_name(), error.message()),
    }
}

/// The errors after which a session is gone for this client (spec CLT-7): it must not be used again.
fn ends_session(error: &ErrorBody) -> bool {
    matches!(
        error,
        ErrorBody::SessionExpired { .. }
            | ErrorBody::SessionClosed { .. }
            | ErrorBody::SessionNotFound { .. }
            | ErrorBody::InvalidToken { .. }
    )
}

/// How a request on the session ended.
enum Answer {
    Done(CommandResult),
    /// An error reply that leaves the session usable: this request failed, the session is kept (CLT-9).
    Failed,
    /// The session ended for this client; a new one is in its place.
    Replaced,
    /// No usable reply after every attempt (a timeout, or a reply the types cannot read): this request
    /// failed, the session is kept (CLT-9).
    NoReply,
}

/// A snapshot that went through: the request that succeeded, its reply, and the conflict resolved on
/// the way (the revision another client had saved), if any.
struct Saved {
    request: Request,
    reply: Response,
    result: SnapshotResult,
    conflict: Option<u64>,
}

struct Run<'a> {
    config: &'a Config,
    connection: Connection,
    /// The session in use: `None` only until the first is resumed or created.
    session: Option<SavedSession>,
    requests: u32,
    /// Retries after a timeout on connections no longer in use.
    retries: u32,
    /// Requests that failed and were survived, in a line each.
    failed: Vec<String>,
}

impl<'a> Run<'a> {
    fn say(&self, text: impl AsRef<str>) {
        println!("[{}] {}", self.config.socket.name(), text.as_ref());
    }

    fn connect(config: &Config) -> Result<Connection, Failure> {
        Ok(Connection::connect(&config.endpoint, config.socket, config.timeout, config.attempts)?)
    }

    /// A new connection in place of the current one, as a restarted client would open.
    fn reconnect(&mut self) -> Result<(), Failure> {
        let old = std::mem::replace(&mut self.connection, Self::connect(self.config)?);
        self.retries += old.retries;
        Ok(())
    }

    /// One request; `Err` only for a socket error. No reply after every attempt and an unreadable
    /// reply are `Ok(None)`, counted as a failed request.
    fn call(&mut self, request: &Request) -> Result<Option<Response>, Failure> {
        self.requests += 1;
        match self.connection.call(request) {
            Ok(reply) => Ok(Some(reply)),
            Err(CallError::Transport(e)) => Err(e.into()),
            Err(e) => {
                self.failure(format!("{}: {e}", request.command.name()));
                Ok(None)
            }
        }
    }

    fn failure(&mut self, text: String) {
        self.say(format!("request failed: {text}; carrying on"));
        self.failed.push(text);
    }

    fn session(&self) -> &SavedSession {
        self.session.as_ref().expect("a session is open once open_session returned")
    }

    fn session_mut(&mut self) -> &mut SavedSession {
        self.session.as_mut().expect("a session is open once open_session returned")
    }

    fn save(&self) -> Result<(), Failure> {
        session_file::save(&self.config.session_file, self.session())
            .map_err(|e| Failure(format!("saving {}: {e}", self.config.session_file.display())))
    }

    fn credentials(&self) -> SessionCredentials {
        let session = self.session();
        SessionCredentials { session_id: session.session_id.clone(), token: session.token.clone() }
    }

    /// Drops the current session for good (it ended for this client, CLT-7) and creates a new one.
    fn replace_session(&mut self) -> Result<(), Failure> {
        session_file::remove(&self.config.session_file)
            .map_err(|e| Failure(format!("removing {}: {e}", self.config.session_file.display())))?;
        self.session = None;
        self.create()
    }

    /// A new session. A refused create (LimitExceeded, or any other error) is tried once more with a
    /// new request after a pause, as a user would press "retry"; no session after that is a Failure.
    fn create(&mut self) -> Result<(), Failure> {
        for attempt in 1..=2 {
            let create = Command::SessionCreate(CreateParameters { client_id: self.config.client_id.clone() });
            let why = match self.call(&Request::new(new_request_id(), create))? {
                Some(Response::Success(success)) => match success.result {
                    CommandResult::SessionCreate(created) => {
                        let session = SavedSession {
                            endpoint: self.config.endpoint.clone(),
                            session_id: created.session_id,
                            token: created.token,
                            revision: created.revision,
                        };
                        self.session = Some(session);
                        self.save()?;
                        self.say(format!(
                            "created session {} (revision {}, expires {}); saved to {} (mode 0600)",
                            short(&self.session().session_id),
                            created.revision,
                            created.expires_at,
                            self.config.session_file.display()
                        ));
                        return Ok(());
                    }
                    other => return fail(format!("session.create answered with a {} result", other.command())),
                },
                Some(Response::Error(ErrorReply { error: ErrorBody::LimitExceeded { details, .. }, .. })) => format!(
                    "session.create: the server holds too many sessions for client id {:?} ({} = {})",
                    self.config.client_id.as_str(),
                    details.limit,
                    details.value
                ),
                Some(Response::Error(reply)) => format!("session.create: {}", describe_error(&reply.error)),
                // No reply: the create may have been executed, and sending it again under a new id could
                // create a second session (CLT-8). Nothing to go on with.
                None => return fail("session.create: no reply"),
            };
            if attempt == 2 {
                return fail(format!("{why} (twice): no session to go on with"));
            }
            self.failure(format!("{why}; trying again"));
            std::thread::sleep(Duration::from_millis(200));
        }
        unreachable!("the loop returns")
    }

    /// Sends `command` (built from the current session's credentials) and sorts out the answer: a
    /// session that ended is replaced by a new one (CLT-7), any other failure leaves it as it is (CLT-9).
    fn on_session(&mut self, command: impl Fn(SessionCredentials) -> Command) -> Result<Answer, Failure> {
        let request = Request::new(new_request_id(), command(self.credentials()));
        let name = request.command.name();
        let reply = match self.call(&request)? {
            Some(reply) => reply,
            None => return Ok(Answer::NoReply),
        };
        match reply {
            Response::Success(success) if success.result.command() == name => Ok(Answer::Done(success.result)),
            Response::Success(success) => fail(format!("{name} answered with a {} result", success.result.command())),
            Response::Error(reply) if ends_session(&reply.error) => {
                self.failure(format!(
                    "{name}: {}: session {} is gone, a new one is created",
                    describe_error(&reply.error),
                    short(&self.session().session_id)
                ));
                self.replace_session()?;
                Ok(Answer::Replaced)
            }
            Response::Error(reply) => {
                self.failure(format!("{name}: {}", describe_error(&reply.error)));
                Ok(Answer::Failed)
            }
        }
    }

    fn resume(&mut self) -> Result<Option<ResumeResult>, Failure> {
        match self.on_session(Command::SessionResume)? {
            Answer::Done(CommandResult::SessionResume(resumed)) => {
                let endpoint = self.config.endpoint.clone();
                let session = self.session_mut();
                session.revision = resumed.revision;
                session.endpoint = endpoint;
                self.save()?;
                Ok(Some(resumed))
            }
            Answer::Done(_) => unreachable!("on_session checks the result's command"),
            Answer::Failed | Answer::Replaced | Answer::NoReply => Ok(None),
        }
    }

    fn snapshot_command(credentials: SessionCredentials, state: &ClientState, expected_revision: u64) -> Command {
        Command::SessionSnapshot(SnapshotParameters {
            session_id: credentials.session_id,
            token: credentials.token,
            state: Some(state.clone()),
            expected_revision: Some(expected_revision),
        })
    }

    /// Saves `state` as the next revision. On `RevisionConflict` (another client saved first) it
    /// resumes to read what is there and saves again with the current revision - never again with the
    /// stale one (CLT-10). `None`: the snapshot failed and was survived.
    fn snapshot(&mut self, state: &ClientState) -> Result<Option<Saved>, Failure> {
        let mut conflict = None;
        for _ in 0..2 {
            let expected = self.session().revision;
            let request = Request::new(new_request_id(), Self::snapshot_command(self.credentials(), state, expected));
            let reply = match self.call(&request)? {
                Some(reply) => reply,
                None => return Ok(None),
            };
            match &reply {
                Response::Success(success) => match &success.result {
                    CommandResult::SessionSnapshot(result) => {
                        if result.revision != expected + 1 {
                            return fail(format!(
                                "a snapshot at revision {expected} gave revision {}",
                                result.revision
                            ));
                        }
                        self.session_mut().revision = result.revision;
                        self.save()?;
                        let result = result.clone();
                        return Ok(Some(Saved { request, reply, result, conflict }));
                    }
                    other => return fail(format!("session.snapshot answered with a {} result", other.command())),
                },
                Response::Error(ErrorReply { error: ErrorBody::RevisionConflict { details, .. }, .. })
                    if conflict.is_none() =>
                {
                    self.say(format!(
                        "snapshot (expected_revision {}): RevisionConflict, current revision {} (another client \
                         saved first); resuming to read it",
                        details.expected_revision, details.current_revision
                    ));
                    conflict = Some(details.current_revision);
                    let latest = match self.resume()? {
                        Some(latest) => latest,
                        None => {
                            self.failed.push("session.snapshot: RevisionConflict, not resolved".into());
                            return Ok(None);
                        }
                    };
                    self.say(format!(
                        "resumed revision {} (theme {}); saving again with expected_revision {}",
                        latest.revision,
                        latest.state.preferences.get("theme").cloned().unwrap_or_default(),
                        latest.revision
                    ));
                }
                Response::Error(reply) if ends_session(&reply.error) => {
                    // As for any request on the session (on_session); this state is not saved.
                    self.failure(format!(
                        "session.snapshot: {}: session {} is gone, a new one is created",
                        describe_error(&reply.error),
                        short(&self.session().session_id)
                    ));
                    self.replace_session()?;
                    return Ok(None);
                }
                Response::Error(reply) => {
                    self.failure(format!("session.snapshot: {}", describe_error(&reply.error)));
                    return Ok(None);
                }
            }
        }
        self.failure("session.snapshot: a second RevisionConflict after resuming".into());
        Ok(None)
    }
}

fn document(value: serde_json::Value) -> ClientDocument {
    match value {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("documents are written as objects here"),
    }
}

impl<'a> Run<'a> {
    fn hello(&mut self) -> Result<HelloResult, Failure> {
        let request = Request::new(new_request_id(), Command::Hello(HelloParameters {}));
        self.requests += 1;
        let hello = match self.connection.call(&request) {
            Ok(Response::Success(success)) => match success.result {
                CommandResult::Hello(hello) => hello,
                other => return fail(format!("hello answered with a {} result", other.command())),
            },
            // UnsupportedVersion included: this client speaks 1.0 only, so it stops (spec VER, CLT-3).
            Ok(Response::Error(reply)) => return fail(format!("hello: {}", describe_error(&reply.error))),
            // No server to talk to: nothing to go on with.
            Err(e) => return fail(format!("hello: {e}")),
        };
        if !hello.protocol_versions.iter().any(|v| v.as_str() == "1.0") {
            return fail("the server does not speak protocol 1.0");
        }
        self.say(format!(
            "hello: {} {}, capabilities [{}], idle timeout {} s",
            hello.server.name,
            hello.server.version,
            hello.capabilities.join(", "),
            hello.limits.idle_timeout_s
        ));
        Ok(hello)
    }

    /// The saved session, resumed; or a new one when there is none or it is gone. A resume that fails
    /// otherwise keeps the saved session (CLT-9).
    fn open_session(&mut self) -> Result<(), Failure> {
        match session_file::load(&self.config.session_file) {
            Ok(saved) => self.session = Some(saved),
            Err(LoadError::Missing) => return self.create(),
            Err(other) => return fail(other.to_string()),
        }
        let id = self.session().session_id.clone();
        if let Some(resumed) = self.resume()? {
            self.say(format!(
                "resumed saved session {} at revision {} (source {:?}{})",
                short(&id),
                resumed.revision,
                resumed.source,
                resumed
                    .fallback
                    .map(|f| format!(", fell back from revision {} to {}", f.from_revision, f.to_revision))
                    .unwrap_or_default()
            ));
        }
        Ok(())
    }
}

/// Runs the whole session; `Ok` is a summary line.
pub fn run(config: &Config) -> Result<String, Failure> {
    let mut run =
        Run { config, connection: Run::connect(config)?, session: None, requests: 0, retries: 0, failed: Vec::new() };
    let hello = run.hello()?;
    run.open_session()?;

    // evaluate (an optional command: only when announced).
    let mut evaluated_in = None;
    if hello.supports(capability::EVALUATE) {
        let code = Code::new("x := 3 + 4. x * 2").expect("valid code");
        let evaluate = |c: SessionCredentials| {
            Command::Evaluate(EvaluateParameters { session_id: c.session_id, token: c.token, code: code.clone() })
        };
        if let Answer::Done(CommandResult::Evaluate(value)) = run.on_session(evaluate)? {
            if value.print_string != "14" || value.class_name.as_str() != "SmallInteger" {
                return fail(format!(
                    "evaluate gave {} ({}), not 14 (SmallInteger)",
                    value.print_string, value.class_name
                ));
            }
            run.say("evaluated `x := 3 + 4. x * 2`: 14 (SmallInteger)");
            evaluated_in = Some(run.session().session_id.clone());
        }
    } else {
        run.say("the server does not announce `evaluate`: step left out");
    }

    // snapshot with expected_revision: the client's preferences become a durable revision.
    let preferences = document(json!({"theme": "dark", "font_scale": 1.25, "recent": ["x"], "pinned": null}));
    let state = ClientState { inspector: Some(document(json!({"open": []}))), preferences: Some(preferences.clone()) };
    let mut ours_saved_in = None;
    if let Some(saved) = run.snapshot(&state)? {
        run.say(format!(
            "snapshot (expected_revision {}): revision {} saved at {}",
            saved.result.revision - 1,
            saved.result.revision,
            saved.result.saved_at
        ));
        ours_saved_in = Some((run.session().session_id.clone(), saved.result.revision));

        // A lost reply: the same request (same id, same body) again, on a new socket. The server
        // answers from its retry cache - the original reply, timestamp included - and does not
        // snapshot twice.
        run.connection.reconnect()?;
        if let Some(again) = run.call(&saved.request)? {
            if again != saved.reply {
                return fail(format!(
                    "request {} sent again was executed again (a reply other than the first)",
                    saved.request.id
                ));
            }
            run.say(format!(
                "request {} sent again on a new socket: the original reply (revision {}, same timestamp)",
                saved.request.id, saved.result.revision
            ));
        }
    }

    // Reconnect as a restarted client would: a new connection, the session read back from the file.
    run.reconnect()?;
    run.session = Some(session_file::load(&config.session_file).map_err(|e| Failure(e.to_string()))?);
    let id = run.session().session_id.clone();
    if let Some(resumed) = run.resume()? {
        // What was saved in this session must come back as it was (PER): checked when it was saved here.
        if let Some((_, revision)) = ours_saved_in.as_ref().filter(|(session, _)| *session == id) {
            if resumed.revision != *revision || resumed.state.preferences != preferences {
                return fail(format!(
                    "resumed revision {} with preferences {}; expected revision {revision} with {}",
                    resumed.revision,
                    serde_json::Value::Object(resumed.state.preferences.clone()),
                    serde_json::Value::Object(preferences.clone())
                ));
            }
        }
        if evaluated_in.as_ref() == Some(&id) {
            match resumed.state.workspace.variables.iter().find(|(name, _)| name.as_str() == "x") {
                Some((_, binding)) if binding.print_string == "7" => {}
                other => return fail(format!("the resumed workspace binds x to {other:?}, not 7")),
            }
        }
        run.say(format!(
            "reconnected on a new socket and resumed {} from {}: revision {}, source {:?}, preferences and \
                 workspace intact",
            short(&id),
            config.session_file.display(),
            resumed.revision,
            resumed.source
        ));
    }

    // A revision conflict: another client (a second window) snapshots first; ours, at the revision we
    // knew, gets RevisionConflict and is resolved (Run::snapshot).
    let mut other = Run::connect(config)?;
    let theirs = ClientState { inspector: None, preferences: Some(document(json!({"theme": "light"}))) };
    run.requests += 1;
    let their_request =
        Request::new(new_request_id(), Run::snapshot_command(run.credentials(), &theirs, run.session().revision));
    let their_revision = match other.call(&their_request) {
        Ok(Response::Success(success)) => match success.result {
            CommandResult::SessionSnapshot(result) => Some(result.revision),
            other => return fail(format!("the other client's snapshot answered with a {} result", other.command())),
        },
        Ok(Response::Error(reply)) => {
            run.failure(format!("the other client's snapshot: {}", describe_error(&reply.error)));
            None
        }
        Err(CallError::Transport(e)) => return Err(e.into()),
        Err(e) => {
            run.failure(format!("the other client's snapshot: {e}"));
            None
        }
    };
    drop(other);
    let ours = ClientState { inspector: Some(document(json!({"open": ["x"]}))), preferences: None };
    if let Some(saved) = run.snapshot(&ours)? {
        if let Some(theirs) = their_revision {
            // The server must have seen the other client's revision: our snapshot at the revision
            // before it conflicts, naming it.
            match saved.conflict {
                Some(current) if current == theirs => {}
                Some(current) => {
                    return fail(format!("RevisionConflict names revision {current}; the other client saved {theirs}"))
                }
                None => return fail("a snapshot behind another client's was not answered RevisionConflict"),
            }
        }
        run.say(format!(
            "saved with expected_revision {}: revision {}",
            saved.result.revision - 1,
            saved.result.revision
        ));
    }

    // validate: usable, at the revision we saved.
    if let Answer::Done(CommandResult::SessionValidate(valid)) = run.on_session(Command::SessionValidate)? {
        if valid.revision != run.session().revision {
            return fail(format!("validate reports revision {}, expected {}", valid.revision, run.session().revision));
        }
        run.say(format!(
            "validate: revision {}, {} attached client(s), expires {}",
            valid.revision, valid.attached_clients, valid.expires_at
        ));
    }

    if config.close {
        // After a successful close the session is never used again (CLT-7): not even to see it closed.
        if let Answer::Done(_) = run.on_session(Command::SessionClose)? {
            session_file::remove(&config.session_file)
                .map_err(|e| Failure(format!("removing {}: {e}", config.session_file.display())))?;
            run.say(format!("closed {} and removed the session file", short(&run.session().session_id)));
        }
    } else {
        run.say(format!(
            "left {} open at revision {} (--no-close)",
            short(&run.session().session_id),
            run.session().revision
        ));
    }
    Ok(format!(
        "{} requests, {} sent again after a timeout, {} failed and survived{}",
        run.requests,
        run.retries + run.connection.retries,
        run.failed.len(),
        if run.failed.is_empty() { String::new() } else { format!(" ({})", run.failed.join("; ")) }
    ))
}
