// Package e2e holds sigillo's process-level resilience tests: they build
// the real `sigillo` binary once, start several `sigillo serve` processes
// sharing one PostgreSQL and one HSM token, and then break things the way
// production breaks them — kill -9, SIGTERM under load, the database
// stopped, the network HSM's server killed, floods — and check over HTTP
// and in the database that no signature escaped its SAD, its audit record
// or its rate limit, and that the service recovers by itself.
//
// The tests need SoftHSM2, p11-kit (p11-kit server + p11-kit-client.so)
// and the PostgreSQL server binaries (initdb, pg_ctl). Each test that
// stops PostgreSQL starts its own private instance with
// scripts/postgres-start.sh, so it never disturbs other tests; a missing
// dependency fails under CI=true and skips loudly otherwise. `go test
// -short` skips the slowest cases. Everything but this file is test code.
package e2e
