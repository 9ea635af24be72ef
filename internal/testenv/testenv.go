// Package testenv holds the one rule every sigillo test follows when an
// external dependency (a tool, a database, a browser) is missing: fail in
// CI, where its absence is a broken pipeline, and skip loudly by hand.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing fails the test in CI and skips it loudly otherwise.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("missing test dependency (CI=true): "+format, args...)
	}
	t.Logf("SKIPPING: missing test dependency: "+format, args...)
	t.Skipf("SKIPPED (not in CI): "+format, args...)
}

// Tool returns the path of an executable, or applies Missing.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s not on PATH (apt-get install; see .ci/run)", name)
	}
	return p
}
