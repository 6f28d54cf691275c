#!/usr/bin/env bash
# Schema-driven fuzzing of the JSON API: starts the debug `provision-server` (demo data, a
# temporary data directory, a random API token, a free port on 127.0.0.1) and runs
# schemathesis against its own OpenAPI document (`/api/v1/openapi.json`). Loading the
# document checks that it is valid OpenAPI 3.1; every operation then gets a bounded number
# of generated requests, valid and invalid, with a fixed seed (repeatable), under a hard
# time limit. Fails when any check fails: a 5xx, a response (status, content type, headers
# or body) its schema does not describe, a schema-violating request accepted, an operation
# that answers without the token, a wrong 405/Allow. Not checked: that every schema-valid
# request is accepted (positive_data_acceptance): some rules cannot be written in JSON
# Schema (a username is at most 252 bytes, not characters; an address has no control
# characters), so such a request gets a 400 with a detail saying why. The API has no
# throttle but the one on wrong tokens, which the server's configuration here lifts. The server is always stopped. Used by
# .ci/run; runs alone too (about 35 s once built).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/swivel-provision/target}"
# Pinned: a version known to load OpenAPI 3.1 and to pass here; bump it deliberately.
version="4.32.5"
venv="${SWIVEL_SCHEMATHESIS_VENV:-$HOME/.cache/swivel-provision/venv-schemathesis}"
examples="${SWIVEL_SCHEMATHESIS_EXAMPLES:-50}"
checks="${SWIVEL_SCHEMATHESIS_CHECKS:-all}"
# Set SWIVEL_SCHEMATHESIS_EXCLUDE= (empty) to run every check.
exclude="${SWIVEL_SCHEMATHESIS_EXCLUDE-positive_data_acceptance}"

if [ "$("$venv/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version $version" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

cargo build --quiet -p provision-server --bin provision-server
server_bin="$CARGO_TARGET_DIR/debug/provision-server"

work="$(mktemp -d)"
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap stop_server EXIT

# A fresh random token (the server reads its first line; at least 32 characters).
python3 -c 'import secrets; print(secrets.token_urlsafe(32))' >"$work/api-token"
chmod 600 "$work/api-token"
token="$(head -n 1 "$work/api-token")"

# Port 0: the system picks a free port; the server prints the address it got.
# Schemathesis sends many requests without a token (checking that each is refused with
# 401): from one address they would pass the wrong-token allowance and get 429 instead.
printf '[throttle]\napi_token_failures_per_ip = 1000000\n' >"$work/config.toml"
"$server_bin" --data-dir "$work/data" --demo --listen 127.0.0.1:0 \
  --config "$work/config.toml" \
  --api-token-file "$work/api-token" >"$work/server.log" 2>&1 &
server_pid=$!
url=""
for _ in $(seq 1 100); do
  url="$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$work/server.log" | head -n 1)"
  [ -n "$url" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.2
done
if [ -z "$url" ]; then
  echo "provision-server did not start:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
echo "provision-server at $url; $examples examples per operation, checks: $checks${exclude:+ except $exclude}"

status=0
# From the scratch directory: schemathesis keeps its example database in ./.schemathesis.
(cd "$work" && timeout --kill-after=10 "${SWIVEL_SCHEMATHESIS_SECONDS:-170}" \
  "$venv/bin/schemathesis" run "$url/api/v1/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks "$checks" \
  ${exclude:+--exclude-checks "$exclude"} \
  --max-examples "$examples" \
  --seed 1 \
  --workers 1 \
  --request-timeout 10 \
  --no-color) \
  || status=$?
if [ "$status" != 0 ]; then
  echo "schemathesis failed (exit $status); the server's log (lines with codes left out):" >&2
  grep -v -i code "$work/server.log" | tail -n 50 >&2 || true
fi
exit "$status"
