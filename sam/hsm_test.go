package sam_test

import (
	"testing"

	"github.com/sigillo/sigillo/sam/samtest"
	softhsmtest "github.com/sigillo/sigillo/softhsm-test"
)

// hsmEnv is a samtest.Env whose keys live in a fresh SoftHSM2 token
// (skipped loudly, or failed in CI, when SoftHSM2 is missing).
func hsmEnv(t testing.TB, opts ...samtest.Option) *samtest.Env {
	t.Helper()
	return samtest.New(t, append([]samtest.Option{samtest.WithKeys(softhsmtest.New(t).Manager)}, opts...)...)
}
