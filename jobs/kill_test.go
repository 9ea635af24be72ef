package jobs_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigillo/sigillo/hsm"
	softhsmtest "github.com/sigillo/sigillo/softhsm-test"
	"github.com/sigillo/sigillo/store/sqlite"
)

// serverPackage is what the kill test runs: the real `sigillo serve`.
const serverPackage = "../cmd/sigillo"

var serverArgs = []string{"serve"}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func buildServer(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sigillo-autoserve")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "sigillo")
		out, err := exec.Command("go", "build", "-o", binPath, serverPackage).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build %s: %v\n%s", serverPackage, err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(binPath)) })
	return binPath
}

// process is one `serve` process.
type process struct {
	cmd  *exec.Cmd
	base string
	logs *strings.Builder
	mu   sync.Mutex
	done chan struct{}
}

func startProcess(t *testing.T, bin string, env []string) *process {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, serverArgs...)
	cmd.Env = append(append([]string{}, env...), "SIGILLO_LISTEN="+addr, "SIGILLO_PUBLIC_URL=http://"+addr)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, base: "http://" + addr, logs: &strings.Builder{}, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		resp, err := http.Get(p.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("server exited during start-up:\n%s", p.output())
		case <-ctx.Done():
			t.Fatalf("server not ready: %v\n%s", err, p.output())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestKillNineMidJobResumesWithoutDoubleSpend runs the service as a
// separate process, kills it with SIGKILL while asynchronous jobs are
// half done, restarts it on the same database and token, and checks that
// every item ends signed (and valid) or reported failed, and that the SAD
// budget used equals the signatures returned.
func TestKillNineMidJobResumesWithoutDoubleSpend(t *testing.T) {
	softhsmtest.Require(t)
	bin := buildServer(t)
	hc, _ := softhsmtest.Provision(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "sigillo.db")
	adminToken := randHex(16)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SIGILLO_") || strings.HasPrefix(kv, "SIGILLO_TEST_") {
			env = append(env, kv)
		}
	}
	env = append(env, "SOFTHSM2_CONF="+hsm.SoftHSMConfPath(), "SIGILLO_PKCS11_MODULE="+hc.Module, "SIGILLO_PKCS11_TOKEN="+hc.TokenLabel,
		"SIGILLO_PKCS11_PIN="+hc.PIN, "SIGILLO_DATABASE="+db, "SIGILLO_DATA_DIR="+dir, "SIGILLO_ADMIN_TOKEN="+adminToken,
		"SIGILLO_AUTH_SECRET_KEY="+randHex(32), "SIGILLO_LOG_FORMAT=text", "SIGILLO_LOG_LEVEL=info")

	first := startProcess(t, bin, env)
	a := newAPI(t, first.base, adminToken)
	tok, cred := a.integration("integ-k", "kill.example", "ALIAS-K", "rsa-2048")
	cert := a.leaf(tok, cred)
	const jobsN, perJob = 5, 1000
	sad := a.authorize(tok, cred, jobsN*perJob)
	ids := make([]string, jobsN)
	inputs := make([][][]byte, jobsN)
	for j := range ids {
		inputs[j] = hashes(fmt.Sprint("kill-", j), perJob)
		var acc struct {
			ResponseID string `json:"responseID"`
		}
		a.call("/csc/v2/signatures/signHash", tok, map[string]any{"credentialID": cred, "SAD": sad, "hashes": b64(inputs[j]),
			"signAlgo": sha256WithRSA, "operationMode": "A"}, 200, &acc)
		ids[j] = acc.ResponseID
	}
	// Kill -9 once some, but not all, items are signed.
	progress := func() (done int) {
		for _, id := range ids {
			status, _, data := a.do(http.MethodPost, "/csc/v2/signatures/signPolling", map[string]string{"Authorization": "Bearer " + tok},
				mustJSON(t, map[string]string{"requestID": id}))
			var r pollResult
			_ = json.Unmarshal(data, &r)
			switch status {
			case http.StatusOK:
				done += len(r.Results)
			case http.StatusAccepted:
				done += r.Done
			default:
				t.Fatalf("signPolling: %d %s", status, data)
			}
		}
		return done
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n := progress()
		if n > 0 && n < jobsN*perJob {
			t.Logf("kill -9 with %d of %d items signed", n, jobsN*perJob)
			break
		}
		if n == jobsN*perJob || time.Now().After(deadline) {
			t.Fatalf("could not catch the jobs half done (%d of %d signed)", n, jobsN*perJob)
		}
		time.Sleep(20 * time.Millisecond)
	}
	first.kill()

	second := startProcess(t, bin, env)
	a = newAPI(t, second.base, adminToken)
	signed, failed := 0, 0
	for j, id := range ids {
		res := a.poll(tok, id, 3*time.Minute)
		if len(res.Results) != perJob || len(res.Signatures) != perJob {
			t.Fatalf("job %d: %d results, %d signatures", j, len(res.Results), len(res.Signatures))
		}
		for i, r := range res.Results {
			switch r.Status {
			case "signed":
				verifyRaw(t, cert, inputs[j][i], res.Signatures[i])
				signed++
			case "failed":
				if r.Error == "" || res.Signatures[i] != "" {
					t.Fatalf("job %d item %d failed without a reason or with a signature: %+v", j, i, r)
				}
				failed++
			default:
				t.Fatalf("job %d item %d: %+v", j, i, r)
			}
		}
	}
	t.Logf("after restart: %d signed, %d failed", signed, failed)
	if signed+failed != jobsN*perJob {
		t.Fatalf("%d items accounted for, want %d", signed+failed, jobsN*perJob)
	}

	// The SAD budget used is exactly the signatures returned.
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var remaining int
	if err := st.QueryRow(context.Background(), `SELECT remaining FROM sads WHERE credential_id = ?`, cred).Scan(&remaining); err != nil {
		t.Fatal(err)
	}
	if used := jobsN*perJob - remaining; used != signed {
		t.Fatalf("SAD budget used %d, signatures returned %d", used, signed)
	}
	// The counters and the history count each signature once.
	var u struct {
		Total int64 `json:"totalSignatures"`
	}
	a.admin(http.MethodGet, "/credentials/"+cred+"/usage", nil, 200, &u)
	var h struct {
		Total int64 `json:"totalSignatures"`
	}
	a.admin(http.MethodGet, "/credentials/"+cred+"/history?size=1", nil, 200, &h)
	if u.Total != int64(signed) || h.Total != int64(signed) {
		t.Fatalf("usage %d, history %d, signatures returned %d", u.Total, h.Total, signed)
	}
	if !strings.Contains(second.output(), "job finished") {
		t.Errorf("the restarted process did not finish the jobs:\n%s", second.output())
	}
}
