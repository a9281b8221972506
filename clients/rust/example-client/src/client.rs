//! One connection to a STUI server over ZeroMQ, DEALER or REQ, with the client side of the retry
//! rules (spec RTY): a request that gets no reply within the timeout is sent again with the same id
//! and the same body, so the server answers a retry from its cache instead of executing it twice.
//!
//! Never hangs: every socket has LINGER 0 (closing never waits for unsent messages) and a send
//! timeout, and every receive waits at most the remaining time of the request's attempt.
//! - DEALER sends the body as one frame; a retry goes out on the same socket. Replies whose `id` is
//!   not the one awaited (late answers to an earlier attempt or request) are dropped.
//! - REQ allows one request in flight and cannot send again before a reply: a retry closes the
//!   socket and opens a new one (the "lazy pirate" pattern).
//! - Every new socket says `hello` before anything else (spec VER-4: a server sees a new socket as a
//!   new connection), the reconnect of a REQ retry included; a `hello` without a reply is sent again
//!   with its id, never under a new one (CLT-8).

use std::time::{Duration, Instant};

use stui_protocol::{Command, HelloParameters, Request, Response};

use crate::ids::new_request_id;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketKind {
    Dealer,
    Req,
}

impl SocketKind {
    pub fn name(self) -> &'static str {
        match self {
            SocketKind::Dealer => "dealer",
            SocketKind::Req => "req",
        }
    }
}

/// Why a request got no usable reply.
#[derive(Debug)]
pub enum CallError {
    /// No reply after every attempt.
    Timeout { attempts: u32, waited: Duration },
    /// A reply to this request that the v1 types cannot read (a broken reply; an unknown error code
    /// is readable, as `ErrorBody::Unknown`): the request failed, and nothing is assumed about the
    /// session (spec ERR-5).
    Undecodable(String),
    /// The socket failed.
    Transport(zmq::Error),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Timeout { attempts, waited } => {
                write!(f, "no reply after {attempts} attempt(s) in {:.1} s", waited.as_secs_f64())
            }
            CallError::Undecodable(why) => write!(f, "unreadable reply: {why}"),
            CallError::Transport(e) => write!(f, "socket error: {e}"),
        }
    }
}

impl From<zmq::Error> for CallError {
    fn from(e: zmq::Error) -> Self {
        CallError::Transport(e)
    }
}

pub struct Connection {
    context: zmq::Context,
    endpoint: String,
    kind: SocketKind,
    socket: zmq::Socket,
    /// How long one attempt waits for its reply.
    pub timeout: Duration,
    /// Attempts per request, the first included.
    pub attempts: u32,
    /// Attempts that timed out and were sent again, over the connection's life.
    pub retries: u32,
    /// Whether a `hello` was answered on the current socket.
    greeted: bool,
    /// The `hello` sent on the current socket and not answered yet: sent again as it is.
    pending_hello: Option<Request>,
}

fn open(context: &zmq::Context, endpoint: &str, kind: SocketKind) -> zmq::Result<zmq::Socket> {
    let socket = context.socket(match kind {
        SocketKind::Dealer => zmq::DEALER,
        SocketKind::Req => zmq::REQ,
    })?;
    socket.set_linger(0)?;
    socket.set_sndtimeo(1000)?;
    socket.connect(endpoint)?;
    Ok(socket)
}

impl Connection {
    pub fn connect(endpoint: &str, kind: SocketKind, timeout: Duration, attempts: u32) -> zmq::Result<Self> {
        let context = zmq::Context::new();
        let socket = open(&context, endpoint, kind)?;
        Ok(Connection {
            context,
            endpoint: endpoint.to_owned(),
            kind,
            socket,
            timeout,
            attempts,
            retries: 0,
            greeted: false,
            pending_hello: None,
        })
    }

    /// A new socket in place of the current one (a reconnect as after a network change).
    pub fn reconnect(&mut self) -> zmq::Result<()> {
        self.socket = open(&self.context, &self.endpoint, self.kind)?;
        self.greeted = false;
        Ok(())
    }

    /// `hello` on a socket that has not said it yet; `false` when it got no reply in time (the
    /// attempt is spent). Any reply counts: what the server answered was read by the caller's own
    /// `hello`, and a REQ socket needs the reply before it can send again.
    fn greet(&mut self) -> Result<bool, CallError> {
        let hello = self
            .pending_hello
            .get_or_insert_with(|| Request::new(new_request_id(), Command::Hello(HelloParameters {})))
            .clone();
        self.socket.send(hello.to_vec(), 0)?;
        if self.await_reply(hello.id.as_str(), Instant::now() + self.timeout)?.is_none() {
            return Ok(false);
        }
        self.greeted = true;
        self.pending_hello = None;
        Ok(true)
    }

    /// Sends `request` and returns the reply to it, sending the same body again (same id) after each
    /// attempt that times out.
    pub fn call(&mut self, request: &Request) -> Result<Response, CallError> {
        let body = request.to_vec();
        let started = Instant::now();
        for attempt in 1..=self.attempts.max(1) {
            if attempt > 1 {
                self.retries += 1;
                if self.kind == SocketKind::Req {
                    self.reconnect()?; // REQ cannot send twice without a reply in between
                }
            }
            let is_hello = matches!(request.command, Command::Hello(_));
            if !self.greeted && !is_hello && !self.greet()? {
                continue; // no reply to hello: this attempt is spent (REQ: the next one reconnects)
            }
            self.socket.send(&body, 0)?;
            if let Some(reply) = self.await_reply(request.id.as_str(), Instant::now() + self.timeout)? {
                self.greeted |= is_hello;
                return Response::from_slice(&reply).map_err(|e| CallError::Undecodable(e.to_string()));
            }
        }
        Err(CallError::Timeout { attempts: self.attempts.max(1), waited: started.elapsed() })
    }

    /// The body of the reply to request `id`, or None at `deadline`.
    fn await_reply(&mut self, id: &str, deadline: Instant) -> Result<Option<Vec<u8>>, CallError> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let wait_ms = (deadline - now).as_millis().clamp(1, i64::MAX as u128) as i64;
            if self.socket.poll(zmq::POLLIN, wait_ms)? == 0 {
                return Ok(None);
            }
            let mut frames = self.socket.recv_multipart(zmq::DONTWAIT)?;
            if frames.len() != 1 {
                // DEALER replies are one frame (spec TRN); REQ has already removed the envelope.
                return Err(CallError::Undecodable(format!("a reply of {} frames", frames.len())));
            }
            let body = frames.pop().unwrap_or_default();
            match reply_id(&body, id) {
                // An error reply with a null id answers a request whose id the server could not read:
                // with one request in flight, that is this one.
                ReplyId::Matches | ReplyId::Null => return Ok(Some(body)),
                // A late reply to an earlier request or attempt (DEALER): not ours, keep waiting.
                ReplyId::Other => continue,
                ReplyId::Unreadable => return Ok(Some(body)), // decoding will say what is wrong
            }
        }
    }
}

enum ReplyId {
    Matches,
    Null,
    Other,
    Unreadable,
}

/// The reply's `id`, read leniently (before the typed decode), to pair the reply with its request.
fn reply_id(body: &[u8], awaited: &str) -> ReplyId {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(reply)) => match reply.get("id") {
            Some(serde_json::Value::String(id)) if id == awaited => ReplyId::Matches,
            Some(serde_json::Value::String(_)) => ReplyId::Other,
            Some(serde_json::Value::Null) => ReplyId::Null,
            _ => ReplyId::Unreadable,
        },
        _ => ReplyId::Unreadable,
    }
}

#[cfg(test)]
mod tests {
    //! The retry rules over real ZeroMQ sockets on loopback, against a scripted ROUTER that drops,
    //! delays or garbles replies as a slow or failing server would.

    use std::sync::mpsc;
    use std::thread;

    use stui_protocol::{ErrorBody, ErrorReply, SessionCredentials, SessionId, Token};

    use super::*;
    use crate::ids::new_request_id;

    /// What the scripted server does with the n-th request it receives (0-based).
    #[derive(Clone, Copy)]
    enum Act {
        Drop,
        Answer,
        AnswerOtherIdFirst,
        UnknownCode,
    }

    fn hello_reply(id: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "id": id, "version": "1.0", "command": "hello", "status": "success", "timestamp": "2026-11-24T10:15:30.123Z",
            "result": {"protocol_versions": ["1.0"], "server": {"name": "scripted", "version": "0"}, "capabilities": [],
                       "limits": {"max_message_bytes": 65536, "max_nesting_depth": 32, "idle_timeout_s": 60,
                                  "absolute_timeout_s": 60, "tombstone_retention_s": 60, "retry_window_s": 60,
                                  "max_sessions_per_client": 1}}}))
        .unwrap()
    }

    /// (routing id, body) of each request the scripted server received.
    type Received = mpsc::Receiver<(Vec<u8>, Vec<u8>)>;

    /// A ROUTER that applies `script` to the requests it gets, then stops; returns its endpoint and a
    /// channel of every (routing id, body) it received.
    fn scripted_server(script: Vec<Act>) -> (String, Received, thread::JoinHandle<()>) {
        let context = zmq::Context::new();
        let router = context.socket(zmq::ROUTER).unwrap();
        router.set_linger(0).unwrap();
        router.set_rcvtimeo(5000).unwrap();
        router.bind("tcp://127.0.0.1:*").unwrap();
        let endpoint = router.get_last_endpoint().unwrap().unwrap();
        let (seen, received) = mpsc::channel();
        let handle = thread::spawn(move || {
            for act in script {
                let mut frames = match router.recv_multipart(0) {
                    Ok(frames) => frames,
                    Err(_) => return, // nothing within 5 s: the test has failed already
                };
                let body = frames.pop().unwrap();
                seen.send((frames[0].clone(), body.clone())).unwrap();
                let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"].as_str().unwrap().to_owned();
                let send = |reply: Vec<u8>| {
                    let mut out = frames.clone();
                    out.push(reply);
                    router.send_multipart(out, 0).unwrap();
                };
                match act {
                    Act::Drop => {}
                    Act::Answer => send(hello_reply(&id)),
                    Act::AnswerOtherIdFirst => {
                        send(hello_reply("an-earlier-request"));
                        send(hello_reply(&id));
                    }
                    Act::UnknownCode => send(
                        serde_json::to_vec(&serde_json::json!({"id": id, "version": "1.0", "command": "hello",
                            "status": "error", "error": {"code": "Teapot", "message": "newer server"},
                            "timestamp": "2026-11-24T10:15:30.123Z"}))
                        .unwrap(),
                    ),
                }
            }
        });
        (endpoint, received, handle)
    }

    fn hello() -> Request {
        Request::new(new_request_id(), Command::Hello(HelloParameters {}))
    }

    #[test]
    fn a_dropped_reply_is_retried_with_the_same_id_on_the_same_dealer_socket() {
        let (endpoint, received, server) = scripted_server(vec![Act::Drop, Act::Answer]);
        let mut connection = Connection::connect(&endpoint, SocketKind::Dealer, Duration::from_millis(300), 3).unwrap();
        let request = hello();
        let reply = connection.call(&request).unwrap();
        assert_eq!(reply.id(), Some(&request.id));
        let (first_peer, first) = received.recv().unwrap();
        let (second_peer, second) = received.recv().unwrap();
        assert_eq!(first, second, "the retry is not the same body");
        assert_eq!(first_peer, second_peer, "a DEALER retry goes out on the same socket");
        assert_eq!(connection.retries, 1);
        server.join().unwrap();
    }

    #[test]
    fn a_req_socket_is_replaced_for_the_retry() {
        let (endpoint, received, server) = scripted_server(vec![Act::Drop, Act::Answer]);
        let mut connection = Connection::connect(&endpoint, SocketKind::Req, Duration::from_millis(300), 3).unwrap();
        let request = hello();
        assert_eq!(connection.call(&request).unwrap().id(), Some(&request.id));
        let (first_peer, first) = received.recv().unwrap();
        let (second_peer, second) = received.recv().unwrap();
        assert_eq!(first, second, "the retry is not the same body");
        assert_ne!(first_peer, second_peer, "a REQ retry needs a new socket");
        server.join().unwrap();
    }

    fn validate() -> Request {
        Request::new(
            new_request_id(),
            Command::SessionValidate(SessionCredentials {
                session_id: SessionId::new("Xb3kQ9vR2mLp7TzW5nYc1A").unwrap(),
                token: Token::new("q8Jf3LrT0vXy2NcW9aBd4KpZ7mQs1HuE6gYt5RiVo0A").unwrap(),
            }),
        )
    }

    fn command_of(body: &[u8]) -> String {
        serde_json::from_slice::<serde_json::Value>(body).unwrap()["command"].as_str().unwrap().to_owned()
    }

    #[test]
    fn every_new_socket_says_hello_first_the_req_retry_included() {
        // hello answered, validate dropped; the retry's new REQ socket greets again, then the retry.
        let (endpoint, received, server) = scripted_server(vec![Act::Answer, Act::Drop, Act::Answer, Act::Answer]);
        let mut connection = Connection::connect(&endpoint, SocketKind::Req, Duration::from_millis(300), 3).unwrap();
        let request = validate();
        assert_eq!(connection.call(&request).unwrap().id(), Some(&request.id));
        let seen: Vec<(Vec<u8>, Vec<u8>)> = received.try_iter().collect();
        let commands: Vec<String> = seen.iter().map(|(_, body)| command_of(body)).collect();
        assert_eq!(commands, ["hello", "session.validate", "hello", "session.validate"]);
        assert_eq!(seen[1].1, seen[3].1, "the retry is not the same body");
        assert_ne!(seen[0].0, seen[2].0, "the retry did not go out on a new socket");
        assert_eq!(seen[2].0, seen[3].0, "the new socket's first request is not hello");
        server.join().unwrap();
    }

    #[test]
    fn an_unanswered_hello_is_sent_again_with_its_id() {
        let (endpoint, received, server) = scripted_server(vec![Act::Drop, Act::Answer, Act::Answer]);
        let mut connection = Connection::connect(&endpoint, SocketKind::Dealer, Duration::from_millis(300), 3).unwrap();
        let request = validate();
        assert_eq!(connection.call(&request).unwrap().id(), Some(&request.id));
        let seen: Vec<Vec<u8>> = received.try_iter().map(|(_, body)| body).collect();
        assert_eq!(seen.iter().map(|b| command_of(b)).collect::<Vec<_>>(), ["hello", "hello", "session.validate"]);
        assert_eq!(seen[0], seen[1], "hello sent again under a new id (CLT-8)");
        server.join().unwrap();
    }

    #[test]
    fn a_reply_to_another_request_is_not_taken_for_this_one() {
        let (endpoint, _received, server) = scripted_server(vec![Act::AnswerOtherIdFirst]);
        let mut connection =
            Connection::connect(&endpoint, SocketKind::Dealer, Duration::from_millis(2000), 1).unwrap();
        let request = hello();
        assert_eq!(connection.call(&request).unwrap().id(), Some(&request.id));
        server.join().unwrap();
    }

    #[test]
    fn no_reply_gives_up_after_every_attempt_in_bounded_time() {
        let (endpoint, received, server) = scripted_server(vec![Act::Drop, Act::Drop, Act::Drop]);
        let mut connection = Connection::connect(&endpoint, SocketKind::Req, Duration::from_millis(200), 3).unwrap();
        let started = Instant::now();
        match connection.call(&hello()) {
            Err(CallError::Timeout { attempts: 3, .. }) => {}
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
        assert_eq!(received.try_iter().count(), 3);
        server.join().unwrap();
    }

    #[test]
    fn an_unknown_error_code_is_a_reply_to_the_request() {
        // ERR-5: a newer server's code is an answer (the request failed), not an unreadable reply.
        let (endpoint, _received, server) = scripted_server(vec![Act::UnknownCode]);
        let mut connection =
            Connection::connect(&endpoint, SocketKind::Dealer, Duration::from_millis(2000), 1).unwrap();
        let request = hello();
        match connection.call(&request) {
            Ok(Response::Error(ErrorReply { id, error: ErrorBody::Unknown(unknown), .. })) => {
                assert_eq!(id.as_ref(), Some(&request.id));
                assert_eq!((unknown.code.as_str(), unknown.message.as_str()), ("Teapot", "newer server"));
            }
            other => panic!("expected an error reply with an unknown code, got {other:?}"),
        }
        server.join().unwrap();
    }
}
