//! `stui-example-client`: a STUI v1 client over ZeroMQ built on the `stui-protocol` crate; see
//! scenario.rs for what it does and client.rs for how it talks (DEALER or REQ, timeouts, retries with
//! the same request id).
//!
//! Exit status: 0 when the whole session went as the spec says, 1 when it did not (a reply missing
//! after every retry, an unexpected or unreadable reply, a session file others may read), 2 for a
//! usage error. Built so that a harness (`stui-conformance client-check`) can drive it: the endpoint
//! comes from `--endpoint` or `STUI_ENDPOINT`, and nothing is read from a terminal.

mod client;
mod ids;
mod scenario;
mod session_file;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use client::SocketKind;
use scenario::Config;
use stui_protocol::ClientId;

const USAGE: &str = "\
usage: stui-example-client --endpoint tcp://HOST:PORT [--socket dealer|req] [--session-file PATH]
                           [--client-id ID] [--timeout-ms N] [--attempts N] [--no-close]

Runs one STUI v1 session against a server: hello; resume the saved session or create one; evaluate;
snapshot with expected_revision; the same request again on a new socket (answered from the retry
cache); reconnect and resume from the session file; a revision conflict with another client, resolved;
validate; close (unless --no-close, which leaves the session for the next run to resume).

  --endpoint       server endpoint (or STUI_ENDPOINT)
  --socket         dealer (default) or req (or STUI_SOCKET)
  --session-file   where the session is kept, mode 0600 (default stui-session.json; or STUI_SESSION_FILE)
  --client-id      the client_id sent with session.create (default stui-example-client)
  --timeout-ms     how long one attempt waits for its reply (default 2000)
  --attempts       attempts per request, retries with the same id included (default 3)
  --no-close       leave the session open and its file in place

Exit status: 0 the session went as the spec says; 1 it did not; 2 usage error.";

fn parse(args: &[String]) -> Result<Config, String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut endpoint = env("STUI_ENDPOINT");
    let mut socket = env("STUI_SOCKET").unwrap_or_else(|| "dealer".into());
    let mut session_file = PathBuf::from(env("STUI_SESSION_FILE").unwrap_or_else(|| "stui-session.json".into()));
    let mut client_id = "stui-example-client".to_owned();
    let mut timeout_ms: u64 = 2000;
    let mut attempts: u32 = 3;
    let mut close = true;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let mut value = |name: &str| rest.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--endpoint" => endpoint = Some(value("--endpoint")?),
            "--socket" => socket = value("--socket")?,
            "--session-file" => session_file = PathBuf::from(value("--session-file")?),
            "--client-id" => client_id = value("--client-id")?,
            "--timeout-ms" => {
                timeout_ms = value("--timeout-ms")?.parse().map_err(|_| "--timeout-ms takes a whole number")?
            }
            "--attempts" => attempts = value("--attempts")?.parse().map_err(|_| "--attempts takes a whole number")?,
            "--no-close" => close = false,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let endpoint = endpoint.ok_or("no endpoint: give --endpoint or set STUI_ENDPOINT")?;
    let socket = match socket.as_str() {
        "dealer" => SocketKind::Dealer,
        "req" => SocketKind::Req,
        other => return Err(format!("--socket is dealer or req, not {other:?}")),
    };
    if timeout_ms == 0 || attempts == 0 {
        return Err("--timeout-ms and --attempts are at least 1".into());
    }
    let client_id = ClientId::new(client_id).map_err(|e| format!("--client-id: {e}"))?;
    Ok(Config {
        endpoint,
        socket,
        session_file,
        client_id,
        timeout: Duration::from_millis(timeout_ms),
        attempts,
        close,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let config = match parse(&args) {
        Ok(config) => config,
        Err(why) => {
            eprintln!("stui-example-client: {why}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match scenario::run(&config) {
        Ok(summary) => {
            println!("[{}] ok: {summary}", config.socket.name());
            ExitCode::SUCCESS
        }
        Err(scenario::Failure(why)) => {
            eprintln!("[{}] FAILED: {why}", config.socket.name());
            ExitCode::from(1)
        }
    }
}
