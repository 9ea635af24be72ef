// Package loadtest drives a running sigillo (one or more replicas) the way
// its heaviest clients do, and reports what it saw: signatures per second,
// latency percentiles over time, errors by kind, the server's memory, and
// (when asked) the raw signing rate of the same PKCS#11 token, so the
// service's overhead reads as one ratio.
//
// It is a client: it speaks only the public HTTP APIs (the operator API to
// provision its own users and credentials, the CSC API to sign), so what it
// measures is what an integration would get. Provisioning is never counted.
// Every run is bounded by a duration or a signature count, and a sample of
// the returned signatures is verified against the credential's certificate
// (a wrong signature counts as an error: a fast wrong answer is no answer).
//
// Invariants: the request loops stop by deadline or count; in-flight
// requests finish (and are counted) after the deadline rather than being
// cancelled, so a bounded run reports no spurious errors.
package loadtest
