package callbackhttp_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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
	p := callbackhttp.New(500 * time.Millisecond)
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
