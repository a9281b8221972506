#!/usr/bin/env bash
# The example client under `stui-conformance client-check`, every scenario, DEALER and REQ (ci.sh step 5).
#
# It runs the kit's own script for client teams, docs/ci/client-check.sh, once per socket type, over every
# scenario that `client-check --list` names (so a scenario added to the kit is run here without an edit).
# Fails (exit 1) when any scenario does not pass (a MUST rule broken: FAIL; a scenario the client never
# triggered: INCOMPLETE; with --strict, a SHOULD rule broken too, such as VER-4's hello first on every
# connection), and also when the example client itself did not exit 0 - it must carry its
# session through every provoked failure - except after UnsupportedVersion, where stopping (exit 1) is
# what a 1.0-only client should do (spec 16.2).
#
# Each run of the client gets a session file of its own: a file left by the previous scenario would name
# a session that the next client-check (a new store) never knew.
#
# unsupported-version runs apart, with a short --duration: the client stops after hello without a session
# to close, so client-check only ends at --duration.
#
# Environment: PYTHON (the interpreter that has the kit), CARGO. Reports go to target/client-check/.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
CARGO=${CARGO:-cargo}
"$CARGO" build --quiet -p stui-example-client
client=$PWD/target/debug/stui-example-client
kit_script=$PWD/../../docs/ci/client-check.sh
export STUI_CONFORMANCE="$PYTHON -m stui_protocol_kit.conformance.cli"
reports=$PWD/target/client-check
rm -rf "$reports"
mkdir -p "$reports"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A fresh session file per client run; the client's other arguments are passed on.
cat >"$work/client.sh" <<EOF
#!/usr/bin/env bash
dir=\$(mktemp -d "$work/session.XXXXXX")
exec "$client" --session-file "\$dir/session.json" "\$@"
EOF
chmod +x "$work/client.sh"

mapfile -t scenarios < <($STUI_CONFORMANCE client-check --list --no-color | sed -n 's/^scenario\.\([a-z-]*\).*/\1/p')
[ "${#scenarios[@]}" -gt 0 ] || { echo "client-check-example: client-check --list names no scenario" >&2; exit 1; }
carried=()
for scenario in "${scenarios[@]}"; do
    [ "$scenario" = unsupported-version ] || carried+=(--scenario "$scenario")
done

failed=0
for socket in dealer req; do
    out=$reports/$socket.txt
    status=0
    bash "$kit_script" "${carried[@]}" --strict --duration 30 --reports "$reports/$socket" -- "$work/client.sh" --socket "$socket" \
        >"$out" 2>&1 || status=$?
    bash "$kit_script" --scenario unsupported-version --strict --duration 4 --reports "$reports/$socket" \
        -- "$work/client.sh" --socket "$socket" >>"$out" 2>&1 || status=$?
    sed "s/^/   [$socket] /" "$out" | cut -c1-160
    [ "$status" = 0 ] || failed=1
    # Every scenario reported, each passed by client-check, and the client carried on (exit 0) in all
    # but unsupported-version.
    for scenario in "${scenarios[@]}"; do
        line=$(grep -E "^$scenario: client-check exit" "$out" || true)
        case "$line" in
            "$scenario: client-check exit 0, client exit 0:"*) ;;
            "unsupported-version: client-check exit 0, client exit 1:"*) ;;
            *) echo "client-check-example: [$socket] $scenario: ${line:-no result}" >&2; failed=1 ;;
        esac
    done
done
if [ "$failed" != 0 ]; then
    echo "client-check-example: FAILED (reports in $reports)" >&2
    exit 1
fi
echo "client-check-example: all ${#scenarios[@]} scenarios passed with DEALER and with REQ"
