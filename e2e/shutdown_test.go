package e2e

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestGracefulShutdown: SIGTERM while large signHash batches are running.
// Every request the replica accepted completes with its signatures (the
// SAD budget consumed equals the signatures returned, exactly), a new
// connection is refused once the drain starts, and the process exits 0
// within shutdown_timeout.
func TestGracefulShutdown(t *testing.T) {
	const shutdownTimeout = 10 * time.Second
	c, a, b := twoReplicas(t, "SIGILLO_SHUTDOWN_TIMEOUT="+shutdownTimeout.String())
	_ = b
	pa := c.api(a)
	const workers, granted, batch = 4, 1000, 200
	signers := make([]*signer, workers)
	for i := range signers {
		signers[i] = newSigner(t, pa, "term"+string(rune('a'+i)), granted)
	}
	// Each worker's first batch is in flight when SIGTERM arrives: wait
	// until the replica logs nothing yet but the requests are sent.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	var transportErrs sync.Map
	var sigterm atomic.Int64 // UnixNano of the SIGTERM, 0 before
	var drained atomic.Int64 // requests sent before SIGTERM, answered after it
	for _, s := range signers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && int(s.returned.Load())+batch <= s.granted {
				hs := digests(batch)
				sent := time.Now().UnixNano()
				r, err := do(context.Background(), http.MethodPost, a.URL+"/csc/v2/signatures/signHash", s.token, signHashReq(s.cred.ID, s.sad, hs))
				if err != nil {
					transportErrs.Store(err.Error(), true)
					return // the replica is gone for this worker
				}
				s.count(r.status)
				if r.status != 200 {
					t.Errorf("signHash during shutdown: %s", r)
					return
				}
				s.returned.Add(int64(signatures(t, r, s.cred.Cert, hs)))
				if at := sigterm.Load(); at != 0 && sent < at {
					drained.Add(1)
				}
			}
		}()
	}
	// Let the workers get their batches going, then SIGTERM.
	if !waitFor(20*time.Second, func() bool {
		var n int64
		for _, s := range signers {
			n += s.returned.Load()
		}
		return n >= batch
	}) {
		t.Fatal("no batch completed before SIGTERM")
	}
	exit := make(chan int, 1)
	t0 := time.Now()
	sigterm.Store(t0.UnixNano())
	go func() { exit <- a.terminate(shutdownTimeout + 5*time.Second) }()

	// New connections are refused once the drain has started.
	refused := waitFor(5*time.Second, func() bool {
		conn, err := net.DialTimeout("tcp", a.addr, time.Second)
		if err != nil {
			return errors.Is(err, syscall.ECONNREFUSED)
		}
		conn.Close()
		return false
	})
	if !refused {
		t.Error("new connections still accepted after SIGTERM")
	}
	code := <-exit
	took := time.Since(t0)
	stop()
	wg.Wait()
	if code != 0 {
		t.Fatalf("exit code %d after SIGTERM (took %v):\n%s", code, took, a.logs.String())
	}
	if took > shutdownTimeout {
		t.Errorf("drain took %v > shutdown_timeout %v", took, shutdownTimeout)
	}
	t.Logf("exit 0 %v after SIGTERM; %d requests in flight at SIGTERM completed", took.Round(time.Millisecond), drained.Load())
	if drained.Load() == 0 {
		t.Error("no request was in flight at SIGTERM: the drain was not exercised")
	}
	transportErrs.Range(func(k, _ any) bool {
		// A request sent after the listener closed is refused or finds
		// its idle keep-alive connection closed by the drain: before
		// sending ("server closed idle connection", EOF), while writing
		// into the closed connection ("broken pipe"; "use of closed
		// network connection" when the client's own read loop saw the
		// close first and shut the connection under the write), or just
		// after (the kernel answers the unread request with a reset:
		// "connection reset by peer"). The server never saw those
		// requests; one it accepted and then cut mid-response would have
		// consumed budget without a returned signature: the budget check
		// below sees it.
		msg := k.(string)
		if !strings.Contains(msg, "connection refused") && !strings.Contains(msg, "server closed idle connection") &&
			!strings.Contains(msg, "EOF") && !strings.Contains(msg, "write: broken pipe") &&
			!strings.Contains(msg, "use of closed network connection") &&
			!strings.Contains(msg, "connection reset by peer") {
			t.Errorf("unexpected transport error: %s", msg)
		}
		return true
	})
	// Every accepted request completed: consumed budget = signatures
	// returned, exactly, for every worker.
	db := openDB(t, c.database)
	for _, s := range signers {
		bud := readBudget(t, db, s)
		consumed := s.granted - bud.remaining
		if consumed != int(s.returned.Load()) || bud.audited["success"] != consumed {
			t.Errorf("%s: consumed %d, returned %d, audited %d: an accepted request did not complete",
				s.cred.ID, consumed, s.returned.Load(), bud.audited["success"])
		}
	}
	if !a.logs.contains("draining in-flight requests") {
		t.Error("the replica did not log its drain")
	}
}
