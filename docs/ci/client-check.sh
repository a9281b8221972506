#!/usr/bin/env bash
# Runs a STUI client against `stui-conformance client-check`, one scenario per run, for a client team's CI.
#
# usage: client-check.sh [--scenario NAME]... [--reply-delay S] [--duration S] [--reports DIR] [--strict]
#                        -- CLIENT ARGS...
#
# For each scenario (default: every one client-check knows, `stui-conformance client-check --list`) it starts
# client-check on a free loopback port, waits for its ready file (never a sleep), runs the client with the
# endpoint in STUI_ENDPOINT (and `{endpoint}` in its arguments replaced by it), and waits for client-check,
# which ends when the client closes its session (or after --duration). Each run writes DIR/NAME.json (its
# JSON report, conformance/formats/client-check-report.schema.json), DIR/NAME.xml (JUnit) and DIR/NAME.log.
# The client's own exit status is printed but not judged: a client may exit 1 after UnsupportedVersion.
#
# Exit status: 0 every scenario passed (client-check exit 0), 1 some scenario failed or was not exercised
# (each listed with client-check's exit status: 1 FAIL, 3 INCOMPLETE), 2 usage error.
# Set STUI_CONFORMANCE to the command that runs the kit (default: stui-conformance, or
# `python3 -m stui_protocol_kit.conformance.cli` when that is not on PATH). Every process started here is
# stopped on every exit path.
set -euo pipefail

scenarios=()
reply_delay=3
duration=60
reports=client-check-reports
strict=()
while [ $# -gt 0 ]; do
    case "$1" in
        --scenario) scenarios+=("$2"); shift 2 ;;
        --reply-delay) reply_delay=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --reports) reports=$2; shift 2 ;;
        --strict) strict=(--strict); shift ;;  # SHOULD rules broken (NON-STRICT) fail the scenario too
        --) shift; break ;;
        *) echo "client-check.sh: unknown option $1 (the client command follows --)" >&2; exit 2 ;;
    esac
done
[ $# -gt 0 ] || { echo "client-check.sh: no client command after --" >&2; exit 2; }

if [ -n "${STUI_CONFORMANCE:-}" ]; then
    read -r -a kit <<<"$STUI_CONFORMANCE"
elif command -v stui-conformance >/dev/null; then
    kit=(stui-conformance)
else
    kit=(python3 -m stui_protocol_kit.conformance.cli)
fi
if [ ${#scenarios[@]} -eq 0 ]; then
    mapfile -t scenarios < <("${kit[@]}" client-check --list --no-color | sed -n 's/^scenario\.\([a-z-]*\).*/\1/p')
fi
mkdir -p "$reports"
work=$(mktemp -d)
kit_pid=
cleanup() {
    if [ -n "$kit_pid" ] && kill -0 "$kit_pid" 2>/dev/null; then
        kill -TERM "$kit_pid" 2>/dev/null || true
        wait "$kit_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

failed=()
for scenario in "${scenarios[@]}"; do
    ready=$work/ready.$scenario
    "${kit[@]}" client-check --bind tcp://127.0.0.1:0 --ready-file "$ready" --scenario "$scenario" \
        --reply-delay "$reply_delay" --duration "$duration" --json "$reports/$scenario.json" \
        --junit-xml "$reports/$scenario.xml" --no-color ${strict[@]+"${strict[@]}"} >"$reports/$scenario.log" 2>&1 &
    kit_pid=$!
    for _ in $(seq 600); do
        [ -s "$ready" ] && break
        kill -0 "$kit_pid" 2>/dev/null || break
        sleep 0.05
    done
    if [ ! -s "$ready" ]; then
        cat "$reports/$scenario.log" >&2
        echo "client-check.sh: client-check did not start for $scenario" >&2
        exit 2
    fi
    endpoint=$(cat "$ready")
    args=()
    for arg in "$@"; do args+=("${arg//\{endpoint\}/$endpoint}"); done
    client_status=0
    STUI_ENDPOINT=$endpoint timeout $((duration + 30)) "${args[@]}" >"$reports/$scenario.client.log" 2>&1 \
        || client_status=$?
    kit_status=0
    wait "$kit_pid" || kit_status=$?
    kit_pid=
    summary=$(grep -E '^(PASS|FAIL|INCOMPLETE|ERROR):' "$reports/$scenario.log" | tail -n 1 || true)
    echo "$scenario: client-check exit $kit_status, client exit $client_status: $summary"
    [ "$kit_status" = 0 ] || failed+=("$scenario (exit $kit_status)")
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "client-check.sh: ${#failed[@]} of ${#scenarios[@]} scenario(s) did not pass: ${failed[*]}" >&2
    exit 1
fi
echo "client-check.sh: all ${#scenarios[@]} scenario(s) passed"
