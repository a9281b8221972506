#!/usr/bin/env bash
# Runs the example client against the kit's reference server (ci.sh calls it after the build):
#  1. DEALER: create, evaluate, snapshot, retry with the same id, reconnect + resume, conflict, validate;
#     the session is left open (--no-close) and its file must be mode 0600;
#  2. the server is restarted on the same data directory (SIGTERM, then a new process);
#  3. REQ: resumes the saved session from the file (restored from storage: source Durable), the same
#     steps again, then close;
#  4. no server at the endpoint: the client gives up after its attempts with exit 1, in bounded time;
#  5. no endpoint: exit 2.
# The token (read from the session file) must appear in no output of the client or the server.
# Every process started here is stopped on every exit path.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
CARGO=${CARGO:-cargo}
"$CARGO" build --quiet -p stui-example-client
client=$PWD/target/debug/stui-example-client

work=$(mktemp -d)
server_pid=
stop_server() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=
}
trap 'stop_server; rm -rf "$work"' EXIT
fail() { echo "example-check: FAILED: $*" >&2; exit 1; }

# Starts the reference server on a free port; sets $endpoint from its "listening on ..." line.
start_server() {
    local log=$work/server.$1.log
    "$PYTHON" -m stui_protocol_kit.reference_server.cli --bind tcp://127.0.0.1:0 --data-dir "$work/data" \
        --log-level info 2>"$log" &
    server_pid=$!
    endpoint=
    for _ in $(seq 200); do
        endpoint=$(sed -n 's/.*listening on \(tcp:\/\/[0-9.:]*\).*/\1/p' "$log" | head -n 1)
        [ -n "$endpoint" ] && return 0
        kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; fail "the reference server exited"; }
        sleep 0.05
    done
    cat "$log" >&2
    fail "the reference server did not say where it listens within 10 s"
}

session=$work/session.json
run_client() { # name, then client arguments; output to $work/client.NAME.log, shown
    local name=$1; shift
    local status=0
    timeout 60 "$client" "$@" >"$work/client.$name.log" 2>&1 || status=$?
    cat "$work/client.$name.log"
    return "$status"
}

start_server 1
run_client dealer --endpoint "$endpoint" --socket dealer --session-file "$session" --no-close \
    || fail "the DEALER run did not complete"
grep -q ' ok: .* 0 failed and survived$' "$work/client.dealer.log" \
    || fail "a request of the DEALER run failed against the reference server"
mode=$(stat -c %a "$session")
[ "$mode" = 600 ] || fail "the session file has mode $mode, not 600"
token=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["token"])' "$session")
[ "${#token}" -ge 43 ] || fail "no token in the session file"

echo "-- restarting the reference server on the same data directory"
stop_server
start_server 2
STUI_ENDPOINT=$endpoint run_client req --socket req --session-file "$session" \
    || fail "the REQ run did not complete"
grep -q 'resumed saved session .* (source Durable)' "$work/client.req.log" \
    || fail "the REQ run did not resume the saved session from storage after the restart"
grep -q ' ok: .* 0 failed and survived$' "$work/client.req.log" \
    || fail "a request of the REQ run failed against the reference server"
[ ! -e "$session" ] || fail "the session file is still there after close"
stop_server

echo "-- no server at the endpoint: bounded retries, then exit 1"
port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
started=$(date +%s%N)
status=0
run_client unreachable --endpoint "tcp://127.0.0.1:$port" --session-file "$work/none.json" \
    --timeout-ms 300 --attempts 3 || status=$?
took_ms=$(( ($(date +%s%N) - started) / 1000000 ))
[ "$status" = 1 ] || fail "exit status $status with no server, not 1"
grep -q 'no reply after 3 attempt(s)' "$work/client.unreachable.log" || fail "no timeout reported"
[ "$took_ms" -lt 5000 ] || fail "giving up took $took_ms ms (3 attempts of 300 ms)"
echo "   gave up after 3 attempts in $took_ms ms"

echo "-- usage error: exit 2"
status=0
env -u STUI_ENDPOINT "$client" --session-file "$work/none.json" >/dev/null 2>&1 || status=$?
[ "$status" = 2 ] || fail "exit status $status without an endpoint, not 2"

if grep -rqF -- "$token" "$work"/*.log; then
    fail "the token appears in the output: $(grep -lF -- "$token" "$work"/*.log | xargs -n1 basename | tr '\n' ' ')"
fi
echo "   the token appears in no client or server output"
echo "example-check: ok"
