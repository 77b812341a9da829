#!/usr/bin/env bash
# Fuzzes a live scheduler against its own OpenAPI document with schemathesis:
# no 5xx, no crash, every response matches the document.
# Env: SCHEMATHESIS_MAX_EXAMPLES (default 30), SCHEMATHESIS_SEED (default random; printed at the end),
# SCHEMATHESIS_DATABASE_URL (default a fresh SQLite file under target/).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/schemathesis-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'schemathesis==4.32.5'
fi

cargo build --quiet -p scheduler --bin scheduler

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
db=target/schemathesis.db
log=target/schemathesis-scheduler.log
rm -f "$db" "$db-shm" "$db-wal"

env -u JOBS_CONFIG \
  JOBS_DATABASE__URL="${SCHEMATHESIS_DATABASE_URL:-sqlite://$db?mode=rwc}" \
  JOBS_LOG__FILE= \
  JOBS_SERVER__HOST=127.0.0.1 \
  JOBS_SERVER__PORT="$port" \
  target/debug/scheduler >"$log" 2>&1 &
scheduler=$!
trap 'kill "$scheduler" 2>/dev/null || true; wait "$scheduler" 2>/dev/null || true' EXIT

healthy=false
for _ in $(seq 1 150); do
  if python3 -c "import urllib.request; urllib.request.urlopen('$base/health', timeout=1)" 2>/dev/null; then
    healthy=true
    break
  fi
  kill -0 "$scheduler" 2>/dev/null || break
  sleep 0.2
done
if [ "$healthy" != true ]; then
  echo "schemathesis: the scheduler did not answer $base/health; its log:" >&2
  cat "$log" >&2
  exit 1
fi

seed=()
if [ -n "${SCHEMATHESIS_SEED:-}" ]; then
  seed=(--seed "$SCHEMATHESIS_SEED")
fi
report=target/schemathesis.log
status=0
# From target/, where schemathesis keeps its cache of past failures (replayed first on the next run).
(cd target && exec timeout 600 schemathesis-venv/bin/schemathesis run "$base/api/v1/openapi.json" \
  --checks not_a_server_error,response_schema_conformance \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-30}" \
  --request-timeout 30 \
  --generation-database none \
  --generation-allow-x00 true \
  --no-color \
  "${seed[@]}") 2>&1 | tee "$report" || status=${PIPESTATUS[0]}

if ! kill -0 "$scheduler" 2>/dev/null; then
  echo "schemathesis: the scheduler crashed during the run; its log:" >&2
  tail -n 50 "$log" >&2
  status=1
fi
# One plain closing line from schemathesis' "Test cases" summary ("N generated, N passed" or "N generated, F found U
# unique failures").
cases=$(grep -A1 '^Test cases:' "$report" | tail -n 1 || true)
generated=$(grep -oE '[0-9]+ generated' <<<"$cases" | grep -oE '[0-9]+' || echo 0)
failed=0
if [ "$status" -ne 0 ]; then
  echo "schemathesis: failed (exit $status); the scheduler's log is $log" >&2
  failed=$(grep -oE '[0-9]+ unique failure' <<<"$cases" | grep -oE '^[0-9]+' || echo 1)
fi
passed=$((generated > failed ? generated - failed : 0))
echo "schemathesis: $passed passed, $failed failed"
exit "$status"
