package loadtest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sigillo/sigillo/server/servertest"
)

// cscMounted reports whether the server answers the CSC info method.
func cscMounted(t *testing.T, base string) bool {
	resp, err := http.Post(base+"/csc/v2/info", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatalf("POST info: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestEndToEndSignHashOnRealServer runs a small signhash load against a
// real in-process sigillo (servertest: loopback, SQLite, SoftHSM2), verifying every
// signature, with the raw HSM rate measured on the same token.
func TestEndToEndSignHashOnRealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end load test skipped in -short mode")
	}
	srv := servertest.Start(t, servertest.Options{})
	base, adminToken := srv.URL, srv.AdminToken
	if !cscMounted(t, base) {
		t.Skip("!!! SKIPPING: the server does not mount the CSC API yet (POST /csc/v2/info is not 200); " +
			"this test runs once server.mount wires csc and admin !!!")
	}
	for _, key := range []string{"ecdsa-p256", "rsa-2048"} {
		t.Run(key, func(t *testing.T) {
			res, err := Run(context.Background(), Config{
				Servers: []string{base}, AdminToken: adminToken, Scenario: ScenarioSignHash,
				Workers: 2, Count: 200, Batch: 10, KeyAlgo: key, VerifyRate: 1, Multisign: 100,
				MeasureRaw: func(ctx context.Context, workers int, algo string) (*HSMResult, error) {
					return MeasureHSM(ctx, srv.App.HSM, algo, workers, 300*time.Millisecond)
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 {
				t.Fatalf("errors: %+v", res.ErrorsByKind)
			}
			if res.Signatures != 200 || res.Verified != 200 {
				t.Errorf("signatures %d, verified %d; want 200 and 200", res.Signatures, res.Verified)
			}
			if res.RawHSM == nil || res.RawHSM.Rate <= 0 || res.RawHSMAfter == nil || res.Ratio <= 0 {
				t.Errorf("raw HSM %+v / %+v, ratio %v", res.RawHSM, res.RawHSMAfter, res.Ratio)
			}
			if len(res.RSS) != 1 || res.RSS[0].Error != "" || res.RSS[0].Start <= 0 {
				t.Errorf("server RSS not read from /metrics: %+v", res.RSS)
			}
		})
	}
}

// TestEndToEndOtherScenariosOnRealServer runs tiny authorize-sign (SCAL 2,
// PIN + TOTP) and signdoc (PAdES B-B and B-T) loads against a real
// in-process sigillo, verifying every signature and document.
func TestEndToEndOtherScenariosOnRealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end load test skipped in -short mode")
	}
	srv := servertest.Start(t, servertest.Options{})
	if !cscMounted(t, srv.URL) {
		t.Skip("!!! SKIPPING: the server does not mount the CSC API yet !!!")
	}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"authorize-sign", Config{Scenario: ScenarioAuthorizeSign, Workers: 2, Count: 8, Batch: 2, Users: 4}},
		{"signdoc B-B", Config{Scenario: ScenarioSignDoc, Workers: 2, Count: 6, PDFSize: 8 << 10}},
		{"signdoc B-T", Config{Scenario: ScenarioSignDoc, Workers: 2, Count: 4, PDFSize: 8 << 10, Level: "B-T"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Servers, cfg.AdminToken, cfg.KeyAlgo, cfg.VerifyRate, cfg.RSSEvery = []string{srv.URL}, srv.AdminToken, "ecdsa-p256", 1, -1
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 {
				t.Fatalf("errors: %+v", res.ErrorsByKind)
			}
			if res.Signatures != cfg.Count || res.Verified != cfg.Count {
				t.Errorf("signatures %d, verified %d; want %d", res.Signatures, res.Verified, cfg.Count)
			}
		})
	}
}
