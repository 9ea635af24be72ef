package e2e

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver for checks on the shared database

	"github.com/sigillo/sigillo/internal/testenv"
)

// binary is the sigillo executable, built once by TestMain.
var (
	binary   string
	buildErr error
	repoRoot string
)

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Dir(filepath.Dir(file))
	dir, err := os.MkdirTemp("", "sigillo-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "sigillo")
	cmd := exec.Command("go", "build", "-o", binary, "./cmd/sigillo")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		buildErr = fmt.Errorf("build sigillo: %v\n%s", err, out)
	}
	code := m.Run()
	sharedPG.stopAll()
	os.RemoveAll(dir)
	os.Exit(code)
}

func needBinary(t testing.TB) {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// ---------------------------------------------------------------- PostgreSQL

// pgServer is a private PostgreSQL instance started with
// scripts/postgres-start.sh: stopping it harms no other test.
type pgServer struct {
	dir, port, url string
	mu             sync.Mutex
	running        bool
}

// startPG starts a private PostgreSQL server. When t is nil it is the
// package's shared one, stopped by TestMain.
func startPG(t testing.TB) *pgServer {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		testenv.Missing(t, "PostgreSQL server binaries (initdb, pg_ctl) not found (apt-get install postgresql)")
	}
	// Directly under the temp dir: as root the script runs PostgreSQL as
	// the postgres user, who cannot traverse t.TempDir()'s 0700 parents.
	dir, err := os.MkdirTemp("", "sigillo-e2e-pg")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(freeAddr(t))
	p := &pgServer{dir: dir, port: port}
	if err := p.start(); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("start private PostgreSQL: %v", err)
	}
	return p
}

func (p *pgServer) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	out, err := exec.Command(filepath.Join(repoRoot, "scripts/postgres-start.sh"), p.dir, p.port).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%v: %s", err, ee.Stderr)
		}
		return err
	}
	p.url = strings.TrimSpace(string(out))
	p.running = true
	return nil
}

// stop shuts the server down (fast mode: connections are cut).
func (p *pgServer) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return
	}
	_ = exec.Command(filepath.Join(repoRoot, "scripts/postgres-start.sh"), "--stop", p.dir).Run()
	p.running = false
}

func (p *pgServer) destroy() {
	p.stop()
	os.RemoveAll(p.dir)
}

// newDatabase creates an empty database and returns its URL.
func (p *pgServer) newDatabase(t testing.TB) string {
	t.Helper()
	db, err := sql.Open("pgx", p.url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := "e2e_" + randHex(6)
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	u, _ := url.Parse(p.url)
	u.Path = "/" + name
	return u.String()
}

// sharedPG is one private server for the tests that do not stop it.
var sharedPG = &sharedServer{}

type sharedServer struct {
	once sync.Once
	pg   *pgServer
	err  error
}

func (s *sharedServer) get(t testing.TB) *pgServer {
	t.Helper()
	s.once.Do(func() {
		bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
		if len(bins) == 0 {
			s.err = errors.New("PostgreSQL server binaries not found (apt-get install postgresql)")
			return
		}
		dir, err := os.MkdirTemp("", "sigillo-e2e-pg")
		if err != nil {
			s.err = err
			return
		}
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		_, port, _ := net.SplitHostPort(l.Addr().String())
		l.Close()
		p := &pgServer{dir: dir, port: port}
		if s.err = p.start(); s.err == nil {
			s.pg = p
		} else {
			os.RemoveAll(dir)
		}
	})
	if s.err != nil {
		if strings.Contains(s.err.Error(), "not found") {
			testenv.Missing(t, "%v", s.err)
		}
		t.Fatalf("shared PostgreSQL: %v", s.err)
	}
	return s.pg
}

func (s *sharedServer) stopAll() {
	if s.pg != nil {
		s.pg.destroy()
	}
}

// openDB opens a database/sql handle for checks.
func openDB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// ---------------------------------------------------------------- HSM

// token is a SoftHSM2 token in a private directory, made by
// softhsm-test/mktoken.sh (as an operator would).
type token struct {
	conf, label, pin string
	module           string // libsofthsm2.so
}

func newToken(t testing.TB, label string) *token {
	t.Helper()
	module := softhsmModule(t)
	testenv.Tool(t, "softhsm2-util")
	dir := t.TempDir()
	out, err := exec.Command("sh", filepath.Join(repoRoot, "softhsm-test/mktoken.sh"), dir, label).Output()
	if err != nil {
		t.Fatalf("mktoken.sh: %v", err)
	}
	m := regexp.MustCompile(`SIGILLO_PKCS11_PIN='([^']+)'`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no PIN in mktoken.sh output:\n%s", out)
	}
	return &token{conf: filepath.Join(dir, "softhsm2.conf"), label: label, pin: string(m[1]), module: module}
}

func softhsmModule(t testing.TB) string {
	t.Helper()
	for _, pat := range []string{"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/*-linux-gnu/softhsm/libsofthsm2.so", "/usr/lib64/pkcs11/libsofthsm2.so", "/usr/local/lib/softhsm/libsofthsm2.so"} {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			return m[0]
		}
	}
	testenv.Missing(t, "libsofthsm2.so not found (apt-get install softhsm2)")
	return ""
}

// env is the HSM part of a replica's environment: SoftHSM2 directly.
func (k *token) env() []string {
	return []string{"SOFTHSM2_CONF=" + k.conf, "SIGILLO_PKCS11_MODULE=" + k.module,
		"SIGILLO_PKCS11_TOKEN=" + k.label, "SIGILLO_PKCS11_PIN=" + k.pin}
}

// p11Server is `p11-kit server` exporting a SoftHSM2 token on a unix
// socket: the "network HSM appliance" of NETWORK-HSM.md.
type p11Server struct {
	t      testing.TB
	tok    *token
	p11kit string
	client string // p11-kit-client.so
	sock   string
	mu     sync.Mutex
	cmd    *exec.Cmd
}

func newP11Server(t testing.TB, tok *token) *p11Server {
	t.Helper()
	p11kit := testenv.Tool(t, "p11-kit")
	var client string
	for _, pat := range []string{"/usr/lib/*-linux-gnu/pkcs11/p11-kit-client.so", "/usr/lib64/pkcs11/p11-kit-client.so", "/usr/lib/pkcs11/p11-kit-client.so"} {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			client = m[0]
			break
		}
	}
	if client == "" {
		testenv.Missing(t, "p11-kit-client.so not found (apt-get install p11-kit-modules)")
	}
	// A short path: unix socket paths are limited to ~108 bytes.
	sockDir, err := os.MkdirTemp("", "p11")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	s := &p11Server{t: t, tok: tok, p11kit: p11kit, client: client, sock: filepath.Join(sockDir, "hsm.sock")}
	s.start()
	t.Cleanup(s.kill)
	return s
}

// start runs the server in its own process group (it forks a child per
// client connection; killing the group cuts every connection at once).
func (s *p11Server) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = os.Remove(s.sock)
	cmd := exec.Command(s.p11kit, "server", "-f", "-n", s.sock, "--provider", s.tok.module, "pkcs11:token="+s.tok.label)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+s.tok.conf)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start p11-kit server: %v", err)
	}
	s.cmd = cmd
	for i := 0; ; i++ {
		if _, err := os.Stat(s.sock); err == nil {
			return
		}
		if i == 500 {
			s.t.Fatal("p11-kit server made no socket within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill sends SIGKILL to the server's process group (ours, by its id).
func (s *p11Server) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// env is the HSM part of a replica's environment through the remoting.
func (s *p11Server) env() []string {
	return []string{"P11_KIT_SERVER_ADDRESS=unix:path=" + s.sock, "SIGILLO_PKCS11_MODULE=" + s.client,
		"SIGILLO_PKCS11_TOKEN=" + s.tok.label, "SIGILLO_PKCS11_PIN=" + s.tok.pin}
}

// ---------------------------------------------------------------- replicas

// cluster is what every replica of one deployment shares.
type cluster struct {
	t          *testing.T
	database   string
	hsmEnv     []string
	adminToken string
	secretKey  string
	extra      []string // more SIGILLO_* settings for every replica
	tok        *token   // the SoftHSM2 token behind the replicas, if direct
}

func newCluster(t *testing.T, database string, hsmEnv []string, extra ...string) *cluster {
	t.Helper()
	needBinary(t)
	return &cluster{t: t, database: database, hsmEnv: hsmEnv, adminToken: randHex(16), secretKey: randHex(32), extra: extra}
}

// replica is one `sigillo serve` process.
type replica struct {
	t    *testing.T
	name string
	addr string
	URL  string
	env  []string
	dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	logs *ring
	done chan struct{}
	err  error // exit status, once done is closed
}

// start launches a replica with its own listen address and data dir and
// waits until /readyz says ready.
func (c *cluster) start(name string, extra ...string) *replica {
	c.t.Helper()
	r := &replica{t: c.t, name: name, addr: freeAddr(c.t), dir: c.t.TempDir()}
	r.URL = "http://" + r.addr
	r.env = append(baseEnv(),
		"SIGILLO_MODE=dev",
		"SIGILLO_LISTEN="+r.addr,
		// One public URL for the deployment (it is written into
		// certificates), as behind a load balancer.
		"SIGILLO_PUBLIC_URL=http://sigillo.test",
		"SIGILLO_DATA_DIR="+r.dir,
		"SIGILLO_DATABASE="+c.database,
		"SIGILLO_DATABASE_MAX_CONNS=20",
		"SIGILLO_ADMIN_TOKEN="+c.adminToken,
		"SIGILLO_AUTH_SECRET_KEY="+c.secretKey,
		"SIGILLO_LOG_FORMAT=json",
		"SIGILLO_LOG_LEVEL=info",
		"SIGILLO_SHUTDOWN_TIMEOUT=10s",
		"SIGILLO_CA_KEY_ALGO=ecdsa-p256",
	)
	r.env = append(r.env, c.hsmEnv...)
	r.env = append(r.env, c.extra...)
	r.env = append(r.env, extra...)
	r.launch()
	c.t.Cleanup(func() {
		r.kill9()
		if c.t.Failed() {
			c.t.Logf("---- last log lines of replica %s ----\n%s", r.name, r.logs.String())
		}
	})
	r.waitReady(60 * time.Second)
	return r
}

// baseEnv is the test's environment without SIGILLO_ configuration.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SIGILLO_") || strings.HasPrefix(kv, "SOFTHSM2_CONF=") || strings.HasPrefix(kv, "P11_KIT_SERVER_ADDRESS=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (r *replica) launch() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	cmd := exec.Command(binary, "serve")
	cmd.Dir = r.dir
	cmd.Env = r.env
	if r.logs == nil {
		r.logs = newRing(400)
	}
	cmd.Stdout = r.logs
	cmd.Stderr = r.logs
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start replica %s: %v", r.name, err)
	}
	r.cmd = cmd
	done := make(chan struct{})
	r.done = done
	go func() {
		err := cmd.Wait()
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
		close(done)
	}()
}

// restart starts the (stopped) replica again with the same settings.
func (r *replica) restart() {
	r.t.Helper()
	r.launch()
	r.waitReady(60 * time.Second)
}

// waitReady polls /readyz until 200, failing if the process exits.
func (r *replica) waitReady(within time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(r.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-r.done:
			r.t.Fatalf("replica %s exited before ready (%v):\n%s", r.name, r.err, r.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("replica %s not ready within %v:\n%s", r.name, within, r.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill9 kills the process with SIGKILL (no drain, no deferred cleanup).
func (r *replica) kill9() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// terminate sends SIGTERM and waits up to within for the exit; it returns
// the exit code (-1 if it did not exit in time, after a SIGKILL).
func (r *replica) terminate(within time.Duration) int {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(within):
		r.kill9()
		return -1
	}
	var ee *exec.ExitError
	switch {
	case r.err == nil:
		return 0
	case errors.As(r.err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// ring keeps the last lines a process wrote (for failure reports).
type ring struct {
	mu    sync.Mutex
	lines []string
	max   int
	part  bytes.Buffer
}

func newRing(n int) *ring { return &ring{max: n} }

func (r *ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.part.Write(p)
	for {
		line, err := r.part.ReadString('\n')
		if err != nil {
			r.part.Reset()
			r.part.WriteString(line)
			break
		}
		r.lines = append(r.lines, strings.TrimRight(line, "\n"))
		if len(r.lines) > r.max {
			r.lines = r.lines[len(r.lines)-r.max:]
		}
	}
	return len(p), nil
}

func (r *ring) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

// contains reports whether some line contains s.
func (r *ring) contains(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}
