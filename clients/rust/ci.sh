#!/usr/bin/env bash
# CI for the Rust client kit (called by .ci/run after the Python tests; runnable on its own).
#
#  1. installs what is missing from Debian (apt, sudo when not root): the Rust toolchain if there is no
#     cargo, and the packaged crates the workspace builds from offline (.cargo/config.toml). It fails -
#     exit 2 - when something is missing and cannot be installed; it never skips a step;
#  2. builds the workspace (the crate, its tests, the example client);
#  3. writes the generated-message corpus with the kit's generators (generate_corpus.py, which fails
#     when the corpus does not cover the schemas) and runs `cargo test` (vectors + corpus + unit tests);
#  4. runs the example client against the reference server, in DEALER and REQ mode (example-check.sh);
#  5. runs the example client under `stui-conformance client-check`, every scenario, DEALER and REQ
#     (client-check-example.sh, through the kit's docs/ci/client-check.sh): any violation fails CI.
#
# Needs the kit installed for $PYTHON (default python3), as .ci/run does. Environment:
#   PYTHON   the interpreter that has stui_protocol_kit (default: python3)
#   CARGO    the cargo to use (default: cargo on PATH, else Debian's after installing it)
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
export CARGO_TERM_COLOR=never

step() { printf '\n== %s\n' "$*"; }
elapsed() { echo "   ($(( $(date +%s) - $1 )) s)"; }
ci_started=$(date +%s)

# -- 1. Debian packages -----------------------------------------------------------------------------
packages=(
    librust-serde-dev 'librust-serde+serde-derive-dev' librust-serde-derive-dev librust-serde-json-dev
    librust-zmq-dev librust-getrandom-dev libzmq3-dev pkg-config
)
if [ -z "${CARGO:-}" ] && ! command -v cargo >/dev/null 2>&1; then
    packages+=(cargo rustc)
fi
missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$package")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    step "installing from Debian: ${missing[*]}"
    started=$(date +%s)
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as_root=(sudo -n)
    else
        echo "ci.sh: missing Debian packages (${missing[*]}) and no root or password-less sudo to install them" >&2
        exit 2
    fi
    apt_log=$(mktemp)
    if ! "${as_root[@]}" apt-get update -qq >"$apt_log" 2>&1 || \
       ! DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >>"$apt_log" 2>&1; then
        cat "$apt_log" >&2
        echo "ci.sh: apt-get could not install: ${missing[*]}" >&2
        exit 2
    fi
    rm -f "$apt_log"
    elapsed "$started"
fi
CARGO=${CARGO:-$(command -v cargo || true)}
if [ -z "$CARGO" ] || ! "$CARGO" --version >/dev/null; then
    echo "ci.sh: no working cargo" >&2
    exit 2
fi
step "toolchain: $("$CARGO" --version), $(rustc --version 2>/dev/null || echo 'rustc ?')"

# -- 2. build ---------------------------------------------------------------------------------------
step "cargo build (offline, Debian's crates)"
started=$(date +%s)
"$CARGO" build --workspace --all-targets --quiet
elapsed "$started"

# -- 3. corpus and tests ----------------------------------------------------------------------------
corpus=target/stui-corpus.jsonl
step "generating the corpus from the schemas ($corpus)"
started=$(date +%s)
"$PYTHON" generate_corpus.py --out "$corpus"
elapsed "$started"

step "cargo test"
started=$(date +%s)
STUI_CORPUS="$PWD/$corpus" "$CARGO" test --workspace -- --nocapture
elapsed "$started"

# -- 4. the example client against the reference server ---------------------------------------------
step "example client against the reference server"
started=$(date +%s)
PYTHON="$PYTHON" CARGO="$CARGO" ./example-check.sh
elapsed "$started"

# -- 5. the example client under client-check, every scenario -------------------------------------
step "example client under stui-conformance client-check (every scenario, DEALER and REQ)"
started=$(date +%s)
PYTHON="$PYTHON" CARGO="$CARGO" ./client-check-example.sh
elapsed "$started"

step "rust client kit: ok"
elapsed "$ci_started"
