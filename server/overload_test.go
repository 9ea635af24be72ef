package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sigillo/sigillo/ratelimit"
)

// TestOverloadBoundsConcurrencyAndQueue floods a slow guarded route with
// far more concurrent requests than it admits: at no time do more than
// MaxInFlight run, every refusal is a fast 503 with Retry-After in the CSC
// error shape, nothing is a 500, and an admitted request never waits
// longer than the queue timeout (so its latency stays bounded however
// large the flood).
func TestOverloadBoundsConcurrencyAndQueue(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	cfg := OverloadConfig{MaxInFlight: 3, MaxQueue: 5, QueueTimeout: 300 * time.Millisecond}
	reg := prometheus.NewRegistry()
	o, err := NewOverload(cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	const work = 40 * time.Millisecond
	var running, peak atomic.Int64
	e := gin.New()
	e.Use(o.ForPaths(SigningRoute))
	e.POST("/csc/v2/signatures/signHash", func(c *gin.Context) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(work)
		running.Add(-1)
		c.JSON(200, gin.H{"signatures": []string{}})
	})
	e.POST("/csc/v2/credentials/list", func(c *gin.Context) { c.JSON(200, gin.H{}) })
	srv := httptest.NewServer(e)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200}}

	const flood = 120
	type result struct {
		status     int
		retryAfter string
		errCode    string
		took       time.Duration
	}
	results := make([]result, flood)
	var wg sync.WaitGroup
	for i := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			resp, err := client.Post(srv.URL+"/csc/v2/signatures/signHash", "application/json", nil)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			r := result{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), took: time.Since(t0)}
			if resp.StatusCode != 200 {
				var eb struct{ Error string }
				_ = json.Unmarshal(body, &eb)
				r.errCode = eb.Error
			}
			results[i] = r
		}()
	}
	// An unguarded route is not held up by the flood.
	resp, err := client.Post(srv.URL+"/csc/v2/credentials/list", "application/json", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("unguarded route during the flood: %v %v", resp, err)
	}
	resp.Body.Close()
	wg.Wait()

	var ok, refused int
	var maxOK time.Duration
	for i, r := range results {
		switch r.status {
		case 200:
			ok++
			maxOK = max(maxOK, r.took)
		case 503:
			refused++
			if r.retryAfter == "" || r.errCode != "temporarily_unavailable" {
				t.Errorf("request %d: 503 without Retry-After or CSC error (%q, %q)", i, r.retryAfter, r.errCode)
			}
		default:
			t.Errorf("request %d: status %d", i, r.status)
		}
	}
	t.Logf("%d admitted (slowest %v), %d refused, peak concurrency %d", ok, maxOK, refused, peak.Load())
	if p := peak.Load(); p > int64(cfg.MaxInFlight) {
		t.Errorf("peak concurrency %d > MaxInFlight %d", p, cfg.MaxInFlight)
	}
	if ok < cfg.MaxInFlight || refused == 0 {
		t.Errorf("admitted %d, refused %d: the bound did not act", ok, refused)
	}
	// Bound, not a speed measurement: queue wait ≤ QueueTimeout, plus the
	// request's own work, plus generous slack for a loaded 2-core machine.
	if bound := cfg.QueueTimeout + work + 2*time.Second; maxOK > bound {
		t.Errorf("an admitted request took %v > bound %v", maxOK, bound)
	}
	// Queue and slots are empty again: the next request runs at once.
	resp, err = client.Post(srv.URL+"/csc/v2/signatures/signHash", "application/json", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the flood: %v %v", resp, err)
	}
	resp.Body.Close()
	if o.queued.Load() != 0 || len(o.slots) != 0 {
		t.Errorf("leaked: queued %d, slots %d", o.queued.Load(), len(o.slots))
	}
}

func TestSigningRoute(t *testing.T) {
	for path, want := range map[string]bool{
		"/csc/v2/signatures/signHash":      true,
		"/csc/v1/signatures/signHash":      true,
		"/csc/v2/signatures/signDoc":       true,
		"/csc/v2/credentials/authorize":    true,
		"/csc/v2/credentials/list":         false,
		"/csc/v2/auth/login":               false,
		"/readyz":                          false,
		"/admin/v1/credentials/authorize":  false,
		"/csc/v2/credentials/authorizeXYZ": false,
	} {
		if got := SigningRoute(path); got != want {
			t.Errorf("SigningRoute(%q) = %v, want %v", path, got, want)
		}
	}
}

// TestClientIPIgnoresForwardingHeaders: without forwarded, a client
// cannot choose the address its rate limits are counted against.
func TestClientIPIgnoresForwardingHeaders(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	for _, forwarded := range []bool{false, true} {
		e := gin.New()
		if forwarded {
			if err := e.SetTrustedProxies([]string{"192.0.2.0/24"}); err != nil {
				t.Fatal(err)
			}
		}
		e.Use(ClientIP(forwarded))
		var got string
		e.GET("/x", func(c *gin.Context) { got = ratelimit.ClientIP(c.Request.Context()) })
		req := httptest.NewRequest("GET", "/x", nil)
		req.RemoteAddr = "192.0.2.10:5555"
		req.Header.Set("X-Forwarded-For", "198.51.100.77")
		e.ServeHTTP(httptest.NewRecorder(), req)
		want := "192.0.2.10"
		if forwarded {
			want = "198.51.100.77"
		}
		if got != want {
			t.Errorf("forwarded=%v: client IP %q, want %q", forwarded, got, want)
		}
	}
}
