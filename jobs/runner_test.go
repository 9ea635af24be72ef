package jobs_test

import (
	"context"
	"crypto"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/jobs"
	"github.com/sigillo/sigillo/jobs/callbackhttp"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
)

// fakeNotifier fails the first failures calls, then succeeds.
type fakeNotifier struct {
	mu       sync.Mutex
	calls    []string
	failures int
	done     chan struct{}
}

func (f *fakeNotifier) Notify(_ context.Context, uri string, body []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, uri+" "+string(body))
	if len(f.calls) <= f.failures {
		return errors.New("callback endpoint down")
	}
	close(f.done)
	return nil
}

func (f *fakeNotifier) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// runnerEnv is a sam service (SQLite, in-memory keys) and a runner on it.
type runnerEnv struct {
	e      *samtest.Env
	r      *jobs.Runner
	p      *sam.Principal
	credID string
	sad    string
}

func newRunnerEnv(t *testing.T, cfg jobs.Config, n *fakeNotifier) *runnerEnv {
	t.Helper()
	e := samtest.New(t)
	u := e.User(t, "integ")
	cc := e.Credential(t, u, sam.NewCredential{Domain: "acme.example", Alias: "A1", Multisign: 1000})
	p := e.Login(t, u)
	sad, err := e.Service.Authorize(context.Background(), p, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1000, PIN: samtest.PIN})
	if err != nil {
		t.Fatal(err)
	}
	d := jobs.Deps{Store: e.Store, Signer: e.Service, Now: e.Clock.Now}
	if n != nil {
		d.Notify = n
	}
	cfg.Poll = 20 * time.Millisecond
	r, err := jobs.New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	return &runnerEnv{e: e, r: r, p: p, credID: cc.CredentialID, sad: sad.Value}
}

func (re *runnerEnv) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		re.r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func (re *runnerEnv) wait(t *testing.T, id string) *jobs.Status {
	t.Helper()
	end := time.Now().Add(30 * time.Second)
	for time.Now().Before(end) {
		st, err := re.r.Poll(context.Background(), re.p, id)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Pending {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("job %s still pending", id)
	return nil
}

func TestSubmitRefusesBadAsyncParameters(t *testing.T) {
	re := newRunnerEnv(t, jobs.Config{MaxValidity: time.Hour}, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		async jobs.Async
		want  string
	}{
		{"negative_validity", jobs.Async{ValidityPeriod: -time.Second}, "Invalid parameter validity_period"},
		{"validity_above_max", jobs.Async{ValidityPeriod: 2 * time.Hour}, "Out of bounds parameter validity_period"},
		{"callback_without_notifier", jobs.Async{ResponseURI: "https://client.example/done"}, "notifications are not enabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := re.r.SubmitHashes(ctx, re.p, jobs.HashJob{CredentialID: re.credID, SAD: re.sad, Hashes: hashes("x", 2), Opts: crypto.SHA256, Async: tc.async})
			if e, ok := errs.As(err); !ok || e.Kind != errs.Invalid || !strings.Contains(e.Msg, tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	withN := newRunnerEnv(t, jobs.Config{}, &fakeNotifier{done: make(chan struct{})})
	for _, uri := range []string{"ftp://x/y", "/relative", "https://user:pw@client.example/"} {
		_, err := withN.r.SubmitHashes(ctx, withN.p, jobs.HashJob{CredentialID: withN.credID, SAD: withN.sad, Hashes: hashes("x", 2),
			Opts: crypto.SHA256, Async: jobs.Async{ResponseURI: uri}})
		if !errors.Is(err, jobs.ErrResponseURI) {
			t.Fatalf("response_uri %q: %v", uri, err)
		}
	}
	// The policy the server wires in (callbackhttp.Policy) refuses
	// internal destinations at submission, with a 400.
	guarded := newRunnerEnv(t, jobs.Config{CheckCallback: callbackhttp.Policy{Hosts: []string{"*.client.example"}}.CheckURL},
		&fakeNotifier{done: make(chan struct{})})
	for _, uri := range []string{"http://169.254.169.254/latest/meta-data", "https://intranet.corp/x", "https://client.example/x"} {
		_, err := guarded.r.SubmitHashes(ctx, guarded.p, jobs.HashJob{CredentialID: guarded.credID, SAD: guarded.sad, Hashes: hashes("x", 2),
			Opts: crypto.SHA256, Async: jobs.Async{ResponseURI: uri}})
		if e, ok := errs.As(err); !ok || e.Kind != errs.Invalid || !strings.Contains(e.Msg, "response_uri: not allowed") {
			t.Fatalf("response_uri %q: %v", uri, err)
		}
	}
	if _, err := guarded.r.SubmitHashes(ctx, guarded.p, jobs.HashJob{CredentialID: guarded.credID, SAD: guarded.sad, Hashes: hashes("x", 2),
		Opts: crypto.SHA256, Async: jobs.Async{ResponseURI: "https://hooks.client.example/done"}}); err != nil {
		t.Fatalf("an allowed response_uri: %v", err)
	}
	// Nothing was accepted: the SAD budget is intact.
	var remaining int
	if err := re.e.Store.QueryRow(ctx, `SELECT remaining FROM sads WHERE credential_id = ?`, re.credID).Scan(&remaining); err != nil || remaining != 1000 {
		t.Fatalf("remaining %d, %v", remaining, err)
	}
}

func TestCallbackIsRetriedThenDelivered(t *testing.T) {
	n := &fakeNotifier{failures: 2, done: make(chan struct{})}
	re := newRunnerEnv(t, jobs.Config{CallbackBackoff: 10 * time.Millisecond, CallbackAttempts: 5}, n)
	id, err := re.r.SubmitHashes(context.Background(), re.p, jobs.HashJob{CredentialID: re.credID, SAD: re.sad,
		Hashes: hashes("cb", 3), Opts: crypto.SHA256, Async: jobs.Async{ResponseURI: "http://127.0.0.1:9/done"}})
	if err != nil {
		t.Fatal(err)
	}
	re.run(t)
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("no delivery after %d calls", n.count())
	}
	if got := n.count(); got != 3 || !strings.Contains(n.calls[2], id) {
		t.Fatalf("%d calls %v", got, n.calls)
	}
	st := re.wait(t, id)
	if st.Done != 3 || len(st.Items) != 3 {
		t.Fatalf("status %+v", st)
	}
}

func TestDisabledCredentialFailsTheRestAndRefunds(t *testing.T) {
	re := newRunnerEnv(t, jobs.Config{HashChunk: 10}, nil)
	ctx := context.Background()
	// Disabled before the runner starts: no item can be signed.
	id, err := re.r.SubmitHashes(ctx, re.p, jobs.HashJob{CredentialID: re.credID, SAD: re.sad, Hashes: hashes("off", 25), Opts: crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	if err := re.e.Service.SetKeyEnabled(ctx, re.credID, false); err != nil {
		t.Fatal(err)
	}
	re.run(t)
	st := re.wait(t, id)
	if st.Done != 0 || st.Failed != 25 || len(st.Items) != 25 {
		t.Fatalf("status %+v", st)
	}
	for _, it := range st.Items {
		if it.Signature != nil || it.Error != "invalid_request" || !strings.Contains(it.Description, "disabled") {
			t.Fatalf("item %+v", it)
		}
	}
	var remaining int
	if err := re.e.Store.QueryRow(ctx, `SELECT remaining FROM sads WHERE credential_id = ?`, re.credID).Scan(&remaining); err != nil || remaining != 1000 {
		t.Fatalf("SAD remaining %d after a job that signed nothing, %v", remaining, err)
	}
	u, err := re.e.Service.AdminUsage(ctx, re.credID)
	if err != nil || u.Total != 0 {
		t.Fatalf("usage %+v, %v", u, err)
	}
	h, err := re.e.Service.AdminHistory(ctx, re.credID, sam.HistoryFilter{})
	if err != nil || h.Total != 0 || h.Matching != 25 || !strings.HasPrefix(h.Entries[0].Outcome, "failure:") {
		t.Fatalf("history %+v, %v", h, err)
	}
}

func TestPollIsThePrincipalsAndExpires(t *testing.T) {
	re := newRunnerEnv(t, jobs.Config{}, nil)
	ctx := context.Background()
	id, err := re.r.SubmitHashes(ctx, re.p, jobs.HashJob{CredentialID: re.credID, SAD: re.sad, Hashes: hashes("p", 2), Opts: crypto.SHA256,
		Async: jobs.Async{ValidityPeriod: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*sam.Principal{{UserID: "someone-else"}, {Domain: "other.example"}} {
		if _, err := re.r.Poll(ctx, p, id); !errors.Is(err, jobs.ErrUnknownJob) {
			t.Fatalf("%+v polled another's job: %v", p, err)
		}
	}
	re.run(t)
	re.wait(t, id)
	re.e.Clock.Advance(time.Minute)
	if _, err := re.r.Poll(ctx, re.p, id); !errors.Is(err, jobs.ErrUnknownJob) {
		t.Fatalf("expired job: %v", err)
	}
}
