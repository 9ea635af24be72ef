package loadtest

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// scenario is one way of signing. Provisioning and set-up are not timed;
// op is, once per signing request (or session).
type scenario interface {
	spec(cfg Config) credSpec
	// accounts is how many users to provision.
	accounts(cfg Config) int
	// setup readies worker w before the clock starts.
	setup(ctx context.Context, w *worker) error
	// op makes n signatures and returns how many it obtained and verified.
	op(ctx context.Context, w *worker, n int) (sigs, verified int, err error)
}

func newScenario(cfg Config) (scenario, error) {
	switch cfg.Scenario {
	case ScenarioSignHash:
		return &signHashScenario{}, nil
	case ScenarioAuthorizeSign:
		return &authorizeSignScenario{}, nil
	case ScenarioSignDoc:
		doc, err := MinimalPDF(cfg.PDFSize)
		if err != nil {
			return nil, err
		}
		return &signDocScenario{doc: doc, enc: base64.StdEncoding.EncodeToString(doc)}, nil
	}
	return nil, fmt.Errorf("loadtest: unknown scenario %q", cfg.Scenario)
}

// worker is one concurrent client with its own session state.
type worker struct {
	id   int
	cfg  *Config
	c    *client
	rng  *mrand.Rand
	acct *account // signhash, signdoc: this worker's credential
	pool *userPool

	token      string
	tokenRenew time.Time
	sad        string
	sadLeft    int
	sadRenew   time.Time
	otpWait    time.Duration
	authorized int       // credentials/authorize calls during the run
	deadline   time.Time // end of a duration-bound run
}

// errRunOver ends a worker whose operation could not start before the
// deadline; it is not an error of the server.
var errRunOver = errors.New("run over")

// shouldVerify samples signatures for verification at cfg.VerifyRate.
func (w *worker) shouldVerify() bool {
	return w.cfg.VerifyRate > 0 && w.rng.Float64() < w.cfg.VerifyRate
}

// budget hands out the signatures of a --count run; unlimited when total is 0.
type budget struct {
	total   int64
	claimed atomic.Int64
}

// claim returns how many of n signatures the caller may make (0: done).
func (b *budget) claim(n int) int {
	if b.total == 0 {
		return n
	}
	end := b.claimed.Add(int64(n))
	start := end - int64(n)
	if start >= b.total {
		return 0
	}
	return int(min(end, b.total) - start)
}

// recorder collects samples; one mutex is plenty at HTTP request rates.
type recorder struct {
	start time.Time

	mu       sync.Mutex
	samples  []sample
	sigs     int
	errs     int
	verified int
	kinds    map[string]*ErrorKind
}

func (r *recorder) add(s sample, verified int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, s)
	r.sigs += s.Sigs
	r.verified += verified
	if err != nil {
		r.errs++
		k := r.kinds[s.Err]
		if k == nil {
			k = &ErrorKind{Kind: s.Err, Example: err.Error()}
			r.kinds[s.Err] = k
		}
		k.Count++
	}
}

// Run provisions what the scenario needs, optionally measures the raw HSM,
// then runs the load and returns what it measured. Errors are for runs
// that could not start (bad config, provisioning or set-up failure); errors
// during the run are counted in the Result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	sc, err := newScenario(cfg)
	if err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = newHTTPClient(cfg.Workers)
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	clients := make([]*client, len(cfg.Servers))
	for i, s := range cfg.Servers {
		clients[i] = newClient(hc, s)
	}

	res := &Result{Scenario: cfg.Scenario, Params: paramsOf(cfg)}
	runID := randomHex(4)
	provStart := time.Now()
	accts, err := provision(ctx, clients[0], cfg.AdminToken, runID, sc.accounts(cfg), sc.spec(cfg), progress)
	if err != nil {
		return nil, err
	}
	res.Provision.Users = len(accts)
	res.Provision.Seconds = time.Since(provStart).Seconds()

	workers := make([]*worker, cfg.Workers)
	var pool *userPool
	if cfg.Scenario == ScenarioAuthorizeSign {
		pool = newUserPool(accts)
	}
	for i := range workers {
		var seed [32]byte
		_, _ = crand.Read(seed[:])
		workers[i] = &worker{id: i, cfg: &cfg, c: clients[i%len(clients)], rng: mrand.New(mrand.NewChaCha8(seed)), pool: pool}
		if pool == nil {
			workers[i].acct = accts[i%len(accts)]
		}
	}
	fmt.Fprintf(progress, "setting up %d workers on %d server(s)\n", len(workers), len(clients))
	if err := setupAll(ctx, sc, workers); err != nil {
		return nil, err
	}
	if res.RawHSM, err = measureRaw(ctx, cfg, progress, "before"); err != nil {
		return nil, err
	}

	res.LoadAvg[0] = loadAvg()
	rss := newRSSMonitor(clients, cfg.RSSEvery)
	rss.sample(ctx, 0) // before the load
	rec := &recorder{kinds: map[string]*ErrorKind{}}
	cpu0 := processCPU()
	rec.start = time.Now()
	res.Start = rec.start
	var deadline time.Time
	if cfg.Count == 0 {
		deadline = rec.start.Add(cfg.Duration)
	}
	for _, w := range workers {
		w.deadline = deadline
		w.authorized = 0 // set-up's authorizations are not part of the run
	}
	stopBg := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() { showProgress(progress, cfg, rec, stopBg) })
	if cfg.RSSEvery > 0 {
		bg.Go(func() { rss.loop(ctx, rec.start, stopBg) })
	}

	runWorkers(ctx, cfg, sc, workers, rec, deadline)
	res.End = time.Now()
	clientCPU := processCPU() - cpu0
	close(stopBg)
	bg.Wait()
	rss.sample(context.WithoutCancel(ctx), res.End.Sub(rec.start).Seconds())
	res.LoadAvg[1] = loadAvg()
	if ctx.Err() == nil {
		if res.RawHSMAfter, err = measureRaw(ctx, cfg, progress, "after"); err != nil {
			return nil, err
		}
	}
	res.fill(rec, workers, rss, clientCPU)
	return res, nil
}

// fill derives the summary from what the run recorded.
func (res *Result) fill(rec *recorder, workers []*worker, rss *rssMonitor, clientCPU time.Duration) {
	res.Seconds = res.End.Sub(res.Start).Seconds()
	res.Signatures, res.Errors, res.Verified, res.Operations = rec.sigs, rec.errs, rec.verified, len(rec.samples)
	for _, k := range rec.kinds {
		res.ErrorsByKind = append(res.ErrorsByKind, *k)
	}
	sort.Slice(res.ErrorsByKind, func(i, j int) bool { return res.ErrorsByKind[i].Count > res.ErrorsByKind[j].Count })
	if res.Seconds > 0 {
		res.Rate = float64(res.Signatures) / res.Seconds
	}
	if res.RawHSM != nil {
		raw := res.RawHSM.Rate
		if res.RawHSMAfter != nil {
			raw = (raw + res.RawHSMAfter.Rate) / 2
		}
		if raw > 0 {
			res.Ratio = res.Rate / raw
		}
	}
	if srvCPU, ok := rss.cpuSeconds(); ok && res.Signatures > 0 && clientCPU > 0 {
		c := &CPU{ServerSeconds: srvCPU, ClientSeconds: clientCPU.Seconds()}
		c.PerSigMicros = (c.ServerSeconds + c.ClientSeconds) * 1e6 / float64(res.Signatures)
		if res.RawHSM != nil && res.RawHSM.CPUPerSigMicros > 0 {
			raw := res.RawHSM.CPUPerSigMicros
			if a := res.RawHSMAfter; a != nil && a.CPUPerSigMicros > 0 {
				raw = (raw + a.CPUPerSigMicros) / 2
			}
			c.Ratio = raw / c.PerSigMicros
		}
		res.CPU = c
	}
	lats := make([]time.Duration, 0, len(rec.samples))
	for _, s := range rec.samples {
		if s.Err == "" {
			lats = append(lats, s.Lat)
		}
	}
	res.Latency = summarize(lats)
	res.Histogram = histogram(lats)
	res.Timeline = timeline(rec.samples)
	res.RSS = rss.results()
	for _, w := range workers {
		res.OTPWaitSeconds += w.otpWait.Seconds()
		res.Authorizations += w.authorized
	}
}

// measureRaw runs cfg.MeasureRaw, if set; when says "before" or "after".
func measureRaw(ctx context.Context, cfg Config, progress io.Writer, when string) (*HSMResult, error) {
	if cfg.MeasureRaw == nil {
		return nil, nil
	}
	fmt.Fprintf(progress, "measuring the raw HSM signing rate %s the run (%s, %d workers)\n", when, cfg.KeyAlgo, cfg.Workers)
	raw, err := cfg.MeasureRaw(ctx, cfg.Workers, cfg.KeyAlgo)
	if err != nil {
		return nil, fmt.Errorf("raw HSM measurement %s the run: %w", when, err)
	}
	fmt.Fprintf(progress, "raw HSM: %.0f sig/s\n", raw.Rate)
	return raw, nil
}

// runWorkers runs the timed loop of every worker until the deadline (zero:
// none), the Count budget or ctx ends it.
func runWorkers(ctx context.Context, cfg Config, sc scenario, workers []*worker, rec *recorder, deadline time.Time) {
	bud := &budget{total: int64(cfg.Count)}
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil && (deadline.IsZero() || time.Now().Before(deadline)) {
				n := bud.claim(cfg.Batch)
				if n == 0 {
					return
				}
				t0 := time.Now()
				sigs, verified, err := sc.op(ctx, w, n)
				t1 := time.Now()
				s := sample{At: t1.Sub(rec.start), Lat: t1.Sub(t0), Sigs: sigs}
				if err != nil {
					if ctx.Err() != nil || errors.Is(err, errRunOver) {
						return // interrupted: not the server's fault
					}
					s.Err = errorKind(err)
				}
				rec.add(s, verified, err)
			}
		})
	}
	wg.Wait()
}

func setupAll(ctx context.Context, sc scenario, workers []*worker) error {
	errc := make(chan error, len(workers))
	sem := make(chan struct{}, 4) // set-up logs in: argon2 on the server
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := sc.setup(ctx, w); err != nil {
				errc <- fmt.Errorf("set up worker %d: %w", w.id, err)
			}
		})
	}
	wg.Wait()
	close(errc)
	return <-errc // nil when closed empty
}

func paramsOf(cfg Config) Params {
	p := Params{
		Servers: cfg.Servers, Workers: cfg.Workers, Count: cfg.Count, Batch: cfg.Batch,
		KeyAlgo: cfg.KeyAlgo, VerifyRate: max(cfg.VerifyRate, 0), GoMaxProcs: runtime.GOMAXPROCS(0),
	}
	if cfg.Count == 0 {
		p.Duration = cfg.Duration.String()
	}
	switch cfg.Scenario {
	case ScenarioAuthorizeSign:
		p.Users = cfg.Users
	case ScenarioSignDoc:
		p.PDFSize, p.Level, p.Multisign = cfg.PDFSize, cfg.Level, cfg.Multisign
	default:
		p.Multisign = cfg.Multisign
	}
	return p
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}

// showProgress prints one line about twice a second on a terminal
// (rewritten in place), or one line every cfg.ProgressEvery otherwise,
// until stop closes; then a final line.
func showProgress(w io.Writer, cfg Config, rec *recorder, stop <-chan struct{}) {
	every := cfg.ProgressEvery
	if cfg.Interactive {
		every = 500 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	seen := 0
	var p50, p99 float64
	line := func() string {
		rec.mu.Lock()
		fresh := rec.samples[seen:]
		lats := make([]time.Duration, 0, len(fresh))
		for _, s := range fresh {
			if s.Err == "" {
				lats = append(lats, s.Lat)
			}
		}
		seen = len(rec.samples)
		sigs, errs := rec.sigs, rec.errs
		rec.mu.Unlock()
		if len(lats) > 0 { // else keep the last window's values
			slices.Sort(lats)
			p50, p99 = ms(percentile(lats, 50)), ms(percentile(lats, 99))
		}
		el := time.Since(rec.start)
		rate := 0.0
		if el > 0 {
			rate = float64(sigs) / el.Seconds()
		}
		return fmt.Sprintf("%7.1fs  %9d sigs  %8.1f sig/s  %5d errors  p50 %7.2fms  p99 %7.2fms",
			el.Seconds(), sigs, rate, errs, p50, p99)
	}
	for {
		select {
		case <-stop:
			if cfg.Interactive {
				fmt.Fprintf(w, "\r%s\n", line())
			} else {
				fmt.Fprintln(w, line())
			}
			return
		case <-t.C:
			if cfg.Interactive {
				fmt.Fprintf(w, "\r%s\x1b[K", line())
			} else {
				fmt.Fprintln(w, line())
			}
		}
	}
}

// userPool hands authorize-sign workers a user whose TOTP code for the
// current step is still unused. Users come back in the order they were
// used, so if the front one is already used this step, all are.
type userPool struct {
	mu    sync.Mutex
	queue []*account
	ready chan struct{} // signalled when a user comes back
}

func newUserPool(accts []*account) *userPool {
	q := slices.Clone(accts)
	for _, a := range q {
		a.lastStep = -1
	}
	return &userPool{queue: q, ready: make(chan struct{}, 1)}
}

// take returns a user fresh for the current TOTP step, waiting for the next
// step (or for a user to come back) when there is none; waited is how long.
func (p *userPool) take(ctx context.Context, now func() time.Time) (a *account, waited time.Duration, err error) {
	t0 := now()
	for {
		p.mu.Lock()
		if len(p.queue) > 0 {
			front := p.queue[0]
			_, step, err := front.totpCode(now())
			if err != nil {
				p.mu.Unlock()
				return nil, 0, err
			}
			if front.lastStep < step {
				p.queue = p.queue[1:]
				p.mu.Unlock()
				return front, now().Sub(t0), nil
			}
		}
		var wake time.Duration = 100 * time.Millisecond
		if len(p.queue) > 0 {
			period := time.Duration(max(p.queue[0].OTP.Period(), 1)) * time.Second
			wake = period - time.Duration(now().UnixNano())%period + 10*time.Millisecond
		}
		p.mu.Unlock()
		timer := time.NewTimer(wake)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, now().Sub(t0), ctx.Err()
		case <-p.ready:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// put returns a user that used its code of step.
func (p *userPool) put(a *account, step int64) {
	p.mu.Lock()
	a.lastStep = max(a.lastStep, step)
	p.queue = append(p.queue, a)
	p.mu.Unlock()
	select {
	case p.ready <- struct{}{}:
	default:
	}
}

// loadAvg returns the 1-minute load average, or 0 where /proc/loadavg is
// not readable.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
