#!/bin/sh
# Run the Python suite on SQLite, then the database-facing suite again on the real PostgreSQL when it is
# reachable (always on CI, where a missing PostgreSQL is a failure, not a skip).
set -eu
BIN=.venv/bin
$BIN/pytest -n 2 -p no:cacheprovider "$@"
if $BIN/python -c "import socket; socket.create_connection(('127.0.0.1', 5432), 1)" 2>/dev/null; then
  echo "== again on PostgreSQL =="
  $BIN/pytest -n 2 -p no:cacheprovider --db postgresql -m "not e2e" "$@"
elif [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL is not reachable on 127.0.0.1:5432 and CI needs it" >&2
  exit 1
else
  echo "PostgreSQL is not running on 127.0.0.1:5432: skipped the PostgreSQL pass (CI runs it)"
fi
