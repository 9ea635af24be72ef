package callbackhttp_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigillo/sigillo/jobs/callbackhttp"
)

func TestNotify(t *testing.T) {
	var got []string
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.Header.Get("Content-Type")+" "+string(b))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusBadGateway) })
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusTemporaryRedirect) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { time.Sleep(time.Second) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	p := callbackhttp.New(500*time.Millisecond, callbackhttp.Policy{Private: true})
	ctx := context.Background()
	for _, tc := range []struct {
		path, wantErr string
	}{
		{"/ok", ""},
		{"/fail", "502"},
		{"/redirect", "307"}, // not followed: the callback goes nowhere else
		{"/slow", "Timeout"},
	} {
		err := p.Notify(ctx, srv.URL+tc.path, []byte(`{"responseID":"job-1"}`))
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.path, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: got %v, want an error with %q", tc.path, err, tc.wantErr)
		}
	}
	if len(got) != 1 || got[0] != `POST application/json {"responseID":"job-1"}` {
		t.Fatalf("deliveries %q", got)
	}
}

func TestPolicyCheckURL(t *testing.T) {
	listed := callbackhttp.Policy{Hosts: []string{"hooks.example.com", "*.partner.example"}}
	open := callbackhttp.Policy{}
	private := callbackhttp.Policy{Private: true}
	for _, tc := range []struct {
		policy callbackhttp.Policy
		uri    string
		ok     bool
	}{
		{listed, "https://hooks.example.com/done", true},
		{listed, "https://HOOKS.example.com:8443/done", true},
		{listed, "https://a.b.partner.example/x", true},
		{listed, "https://partner.example/x", false}, // *. means subdomains only
		{listed, "https://hooks.example.com.evil.test/x", false},
		{listed, "https://evil.test/hooks.example.com", false},
		{open, "https://anything.example/x", true},
		{open, "https://93.184.216.34/x", true},
		{open, "http://127.0.0.1:8080/x", false},
		{open, "http://[::1]/x", false},
		{open, "http://10.1.2.3/x", false},
		{open, "http://172.16.0.1/x", false},
		{open, "http://192.168.1.1/x", false},
		{open, "http://169.254.169.254/latest/meta-data", false},
		{open, "http://100.64.0.1/x", false},
		{open, "http://0.0.0.0/x", false},
		{open, "http://[fd00::1]/x", false},
		{open, "http://[fe80::1]/x", false},
		{open, "http://[::ffff:127.0.0.1]/x", false},
		{open, "http://224.0.0.1/x", false},
		{private, "http://127.0.0.1:8080/x", true},
		{private, "http://169.254.169.254/x", true},
	} {
		u, err := url.Parse(tc.uri)
		if err != nil {
			t.Fatal(err)
		}
		err = tc.policy.CheckURL(u)
		if (err == nil) != tc.ok {
			t.Errorf("%+v CheckURL(%s) = %v, want ok %v", tc.policy, tc.uri, err, tc.ok)
		}
		if err != nil && !errors.Is(err, callbackhttp.ErrNotAllowed) {
			t.Errorf("CheckURL(%s): %v does not wrap ErrNotAllowed", tc.uri, err)
		}
	}
}

// A name that resolves to a loopback address passes CheckURL (it is not
// a literal IP) but the connection is refused: the dialer checks the
// address it actually connects to, so DNS cannot steer a callback inside.
func TestNotifyRefusesNonPublicAddressesAfterDNS(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	byName := "http://localhost:" + u.Port() + "/done"
	p := callbackhttp.New(time.Second, callbackhttp.Policy{})
	for _, uri := range []string{srv.URL + "/done", byName} {
		err := p.Notify(context.Background(), uri, []byte(`{}`))
		if !errors.Is(err, callbackhttp.ErrNotAllowed) {
			t.Errorf("Notify(%s) = %v, want ErrNotAllowed", uri, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the refused callbacks reached the server %d times", n)
	}
	if err := callbackhttp.New(time.Second, callbackhttp.Policy{Private: true}).Notify(context.Background(), byName, []byte(`{}`)); err != nil || hits.Load() != 1 {
		t.Fatalf("with private networks allowed: %v, %d hits", err, hits.Load())
	}
}
