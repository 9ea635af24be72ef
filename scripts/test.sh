#!/usr/bin/env bash
# Runs sigillo's whole test suite against real parts: SoftHSM2, SQLite,
# PostgreSQL (a private server started here unless SIGILLO_TEST_POSTGRES_URL
# is set), openssl, poppler, qpdf and chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
pgdir=""
if [ -z "${SIGILLO_TEST_POSTGRES_URL:-}" ]; then
  pgdir=$(mktemp -d /tmp/sigillo-test-pg.XXXXXX)
  SIGILLO_TEST_POSTGRES_URL=$(scripts/postgres-start.sh "$pgdir")
  export SIGILLO_TEST_POSTGRES_URL
  trap 'scripts/postgres-start.sh --stop "$pgdir"; rm -rf "$pgdir"' EXIT
fi
echo "test: PostgreSQL at $SIGILLO_TEST_POSTGRES_URL" >&2
go vet ./...
go test -count=1 -timeout 20m "$@" ./...
