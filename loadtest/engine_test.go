package loadtest

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestRunSignHash(t *testing.T) {
	tests := []struct {
		name      string
		key       string
		batch     int
		multisign int
		wantOps   int
	}{
		{name: "P-256 single hash", key: "ecdsa-p256", batch: 1, multisign: 50, wantOps: 200},
		{name: "P-256 batch of 7, last batch partial", key: "ecdsa-p256", batch: 7, multisign: 50, wantOps: 29},
		{name: "RSA-2048 batch of 20", key: "rsa-2048", batch: 20, multisign: 1000, wantOps: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, srv := newFakeSigillo(t)
			var progress strings.Builder
			res, err := Run(context.Background(), Config{
				Servers: []string{srv.URL}, AdminToken: fake.adminToken, Scenario: ScenarioSignHash,
				Workers: 3, Count: 200, Batch: tt.batch, KeyAlgo: tt.key, VerifyRate: 1, Multisign: tt.multisign,
				Progress: &progress, ProgressEvery: 10 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 {
				t.Fatalf("errors: %+v", res.ErrorsByKind)
			}
			if res.Signatures != 200 || res.Verified != 200 || fake.signed != 200 {
				t.Errorf("signatures %d, verified %d, server signed %d; want 200 each", res.Signatures, res.Verified, fake.signed)
			}
			// Set-up authorizes once per worker (not counted); a SAD of
			// multisign signatures then lasts until it runs out.
			if reauth := res.Authorizations > 0; reauth != (tt.multisign*3 < 200) {
				t.Errorf("%d re-authorizations with multisign %d", res.Authorizations, tt.multisign)
			}
			if res.Operations != tt.wantOps {
				t.Errorf("operations %d, want %d", res.Operations, tt.wantOps)
			}
			inHist := 0
			for _, b := range res.Histogram {
				inHist += b.Count
			}
			if inHist != res.Operations {
				t.Errorf("histogram holds %d operations, want %d", inHist, res.Operations)
			}
			perSecond := 0
			for _, s := range res.Timeline {
				perSecond += s.Signatures
			}
			if perSecond != 200 {
				t.Errorf("timeline sums to %d signatures, want 200", perSecond)
			}
			if len(res.RSS) != 1 || res.RSS[0].Start != 42e6 || res.RSS[0].End != 42e6 {
				t.Errorf("RSS %+v, want 42e6 at start and end", res.RSS)
			}
			if res.CPU == nil || math.Abs(res.CPU.ServerSeconds-0.2) > 1e-9 || res.CPU.PerSigMicros < 1000 {
				t.Errorf("CPU %+v: want 0.2 s of server CPU (1 ms per signature) plus the client's", res.CPU)
			}
			if res.Rate <= 0 || res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
				t.Errorf("implausible rate/latency: %v %+v", res.Rate, res.Latency)
			}
			if !strings.Contains(progress.String(), "provisioning: 3/3") || !strings.Contains(progress.String(), "sig/s") {
				t.Errorf("progress output lacks provisioning or rate lines:\n%s", progress.String())
			}
		})
	}
}

func TestRunCountsBadSignaturesAsErrors(t *testing.T) {
	for _, sc := range []string{ScenarioSignHash, ScenarioSignDoc} {
		t.Run(sc, func(t *testing.T) {
			fake, srv := newFakeSigillo(t)
			fake.corrupt = true
			res, err := Run(context.Background(), Config{
				Servers: []string{srv.URL}, AdminToken: fake.adminToken, Scenario: sc,
				Workers: 2, Count: 10, KeyAlgo: "ecdsa-p256", VerifyRate: 1, PDFSize: 2048, RSSEvery: -1,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 10 || res.Signatures != 0 {
				t.Fatalf("errors %d, signatures %d; want 10 and 0", res.Errors, res.Signatures)
			}
			if len(res.ErrorsByKind) != 1 || res.ErrorsByKind[0].Kind != "verify" || res.ErrorsByKind[0].Count != 10 {
				t.Errorf("errors by kind %+v, want 10 verify", res.ErrorsByKind)
			}
		})
	}
}

func TestRunSignDocVerifiesDocuments(t *testing.T) {
	fake, srv := newFakeSigillo(t)
	res, err := Run(context.Background(), Config{
		Servers: []string{srv.URL}, AdminToken: fake.adminToken, Scenario: ScenarioSignDoc,
		Workers: 2, Count: 6, Batch: 2, KeyAlgo: "rsa-2048", VerifyRate: 1, PDFSize: 4096, RSSEvery: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Signatures != 6 || res.Verified != 6 {
		t.Fatalf("errors %+v, signatures %d, verified %d; want 0, 6, 6", res.ErrorsByKind, res.Signatures, res.Verified)
	}
}

func TestRunAuthorizeSignUsesEachTOTPOncePerStep(t *testing.T) {
	fake, srv := newFakeSigillo(t)
	res, err := Run(context.Background(), Config{
		Servers: []string{srv.URL}, AdminToken: fake.adminToken, Scenario: ScenarioAuthorizeSign,
		Workers: 3, Count: 12, Batch: 2, Users: 6, KeyAlgo: "ecdsa-p256", VerifyRate: 1, RSSEvery: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Six users, six sessions: the fake refuses a replayed TOTP step, so
	// any reuse within a step would show as invalid_otp.
	if res.Errors != 0 || res.Signatures != 12 || res.Operations != 6 || res.Verified != 12 {
		t.Fatalf("errors %+v, signatures %d, operations %d, verified %d", res.ErrorsByKind, res.Signatures, res.Operations, res.Verified)
	}
}

func TestRunDurationBound(t *testing.T) {
	fake, srv := newFakeSigillo(t)
	res, err := Run(context.Background(), Config{
		Servers: []string{srv.URL, srv.URL}, AdminToken: fake.adminToken, Workers: 2,
		Duration: 300 * time.Millisecond, KeyAlgo: "ecdsa-p256", RSSEvery: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Signatures == 0 || res.Signatures != fake.signed {
		t.Fatalf("errors %d, signatures %d (server signed %d)", res.Errors, res.Signatures, fake.signed)
	}
	if len(res.RSS) != 2 {
		t.Errorf("want RSS for both servers, got %+v", res.RSS)
	}
}

func TestRunRefusesBadSetup(t *testing.T) {
	fake, srv := newFakeSigillo(t)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"wrong operator token", Config{Servers: []string{srv.URL}, AdminToken: "nope", Count: 1, KeyAlgo: "ecdsa-p256"}, "invalid_token"},
		{"no token", Config{Servers: []string{srv.URL}, Count: 1}, "no operator token"},
		{"unknown scenario", Config{Servers: []string{srv.URL}, AdminToken: fake.adminToken, Scenario: "x"}, "unknown scenario"},
		{"not a URL", Config{Servers: []string{"127.0.0.1:1"}, AdminToken: fake.adminToken}, "not an http(s) URL"},
		{"batch above multisign", Config{Servers: []string{srv.URL}, AdminToken: fake.adminToken, Batch: 20, Multisign: 10}, "exceeds multisign"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestUserPool(t *testing.T) {
	fake, srv := newFakeSigillo(t)
	accts, err := provision(context.Background(), newClient(newHTTPClient(1), srv.URL), fake.adminToken, "pool", 2,
		credSpec{KeyAlgo: "ecdsa-p256", OTP: "totp", SCAL: 2, Multisign: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := newUserPool(accts)
	now := time.Now
	a, _, err := p.take(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := p.take(context.Background(), now)
	if err != nil || a == b {
		t.Fatalf("second take: %v, same user %v", err, a == b)
	}
	_, step, _ := a.totpCode(now())
	p.put(a, step)
	p.put(b, step)
	// Both used this step: a take must wait for the next step.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := p.take(ctx, func() time.Time { return time.Unix(step*30+1, 0) }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("take with every user used this step: %v, want to wait", err)
	}
	// At the next step they are fresh again.
	c, _, err := p.take(context.Background(), func() time.Time { return time.Unix((step+1)*30+1, 0) })
	if err != nil || c != a {
		t.Fatalf("take at next step: %v, first-used user first: %v", err, c == a)
	}
}

func TestBudget(t *testing.T) {
	tests := []struct {
		total int64
		asks  []int
		want  []int
	}{
		{total: 0, asks: []int{5, 5}, want: []int{5, 5}},
		{total: 10, asks: []int{4, 4, 4, 4}, want: []int{4, 4, 2, 0}},
		{total: 3, asks: []int{1, 1, 1, 1}, want: []int{1, 1, 1, 0}},
	}
	for _, tt := range tests {
		b := &budget{total: tt.total}
		for i, n := range tt.asks {
			if got := b.claim(n); got != tt.want[i] {
				t.Errorf("total %d: claim %d #%d = %d, want %d", tt.total, n, i, got, tt.want[i])
			}
		}
	}
}

func TestGeneratedSecretsMeetPolicy(t *testing.T) {
	for range 300 {
		if p := newPassword(); !policyOK(p) {
			t.Fatalf("password %q breaks the policy", p)
		}
		pin := newPIN()
		if len(pin) != 8 || strings.Trim(pin, "0123456789") != "" {
			t.Fatalf("PIN %q is not 8 digits", pin)
		}
	}
}
