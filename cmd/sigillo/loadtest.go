package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/sigillo/sigillo/loadtest"
)

func init() {
	commands["loadtest"] = command{"drive a running sigillo with signing load and report (JSON + HTML)", loadtestMain}
}

func loadtestMain(args []string) int {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	var (
		server     = fs.String("server", "http://127.0.0.1:8080", "base URL of the sigillo to load")
		servers    = fs.String("servers", "", "comma-separated base URLs of several replicas (replaces --server)")
		adminToken = fs.String("admin-token", "", "operator API token (default $SIGILLO_ADMIN_TOKEN, else <data-dir>/admin-token)")
		dataDir    = fs.String("data-dir", "", "data directory of a dev `sigillo serve` (admin-token, softhsm/)")
		scenario   = fs.String("scenario", loadtest.ScenarioSignHash, "signhash | authorize-sign | signdoc")
		workers    = fs.Int("workers", 0, "concurrent clients (default 2 × cores)")
		duration   = fs.Duration("duration", 30*time.Second, "how long to load (ignored with --count)")
		count      = fs.Int("count", 0, "signatures to make (replaces --duration)")
		batch      = fs.Int("batch", 1, "hashes per signHash (documents per signDoc)")
		key        = fs.String("key", "rsa-2048", "credential key: rsa-2048 | rsa-3072 | rsa-4096 | ecdsa-p256 | ecdsa-p384")
		out        = fs.String("out", "loadtest-report", "directory for result.json and report.html")
		verify     = fs.String("verify-sample", "1%", "share of signatures verified against the certificate (e.g. 1%, 0.5, 0 for none)")
		users      = fs.Int("users", 0, "authorize-sign: users to rotate through (default 15 per worker)")
		multisign  = fs.Int("multisign", 100000, "signhash/signdoc: signatures per SAD (the credentials are automatic-signature ones: domain + alias)")
		pdfSize    = fs.String("pdf-size", "100KiB", "signdoc: size of the generated PDF (bytes, or with KiB/MiB)")
		level      = fs.String("level", "B-B", "signdoc: PAdES level B-B | B-T")
		rawHSM     = fs.Bool("raw-hsm", false, "measure the token's raw PKCS#11 signing rate (same concurrency and key) before and after the run")
		rawFor     = fs.Duration("raw-hsm-duration", 5*time.Second, "how long to measure the raw HSM rate")
		p11Module  = fs.String("pkcs11-module", "", "--raw-hsm: PKCS#11 library (default: SoftHSM2)")
		p11Token   = fs.String("pkcs11-token", "", "--raw-hsm: token label (default with --data-dir: sigillo)")
		p11PIN     = fs.String("pkcs11-pin", "", "--raw-hsm: user PIN (default with --data-dir: softhsm/pins.json); or $SIGILLO_PKCS11_PIN")
	)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: sigillo loadtest [flags]\n\nProvisions its own users and credentials through the operator API (not\ntimed), then signs for --duration or --count and writes a JSON result and\nan HTML report. Exit status 1 if any operation failed.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "loadtest: unexpected arguments %q\n", fs.Args())
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	cfg := loadtest.Config{
		Scenario: *scenario, Workers: *workers, Batch: *batch, KeyAlgo: *key,
		Users: *users, Multisign: *multisign, Level: *level, Progress: os.Stderr,
		Interactive: term.IsTerminal(int(os.Stderr.Fd())),
	}
	if *count > 0 {
		cfg.Count = *count
		if set["duration"] {
			fmt.Fprintln(os.Stderr, "loadtest: --count and --duration exclude each other")
			return 2
		}
	} else {
		cfg.Duration = *duration
	}
	if *servers != "" {
		for _, s := range strings.Split(*servers, ",") {
			if s = strings.TrimSpace(s); s != "" {
				cfg.Servers = append(cfg.Servers, s)
			}
		}
	} else {
		cfg.Servers = []string{*server}
	}
	var err error
	if cfg.VerifyRate, err = loadtest.ParseShare(*verify); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest: --verify-sample:", err)
		return 2
	}
	if cfg.PDFSize, err = loadtest.ParseSize(*pdfSize); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest: --pdf-size:", err)
		return 2
	}
	cfg.AdminToken = *adminToken
	if cfg.AdminToken == "" {
		cfg.AdminToken = os.Getenv("SIGILLO_ADMIN_TOKEN")
	}
	if cfg.AdminToken == "" && *dataDir != "" {
		b, err := os.ReadFile(filepath.Join(*dataDir, "admin-token"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest: operator token:", err)
			return 2
		}
		cfg.AdminToken = strings.TrimSpace(string(b))
	}
	if cfg.AdminToken == "" {
		fmt.Fprintln(os.Stderr, "loadtest: need the operator token: --admin-token, $SIGILLO_ADMIN_TOKEN or --data-dir")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *rawHSM {
		pin := *p11PIN
		if pin == "" {
			pin = os.Getenv("SIGILLO_PKCS11_PIN")
		}
		if *p11Module == "" && *p11Token == "" && *dataDir == "" {
			fmt.Fprintln(os.Stderr, "loadtest: --raw-hsm needs --data-dir or --pkcs11-token/--pkcs11-pin")
			return 2
		}
		nw := cfg.Workers
		if nw == 0 {
			nw = 2 * runtime.NumCPU()
		}
		m, err := loadtest.OpenHSM(loadtest.HSMTarget{Module: *p11Module, Token: *p11Token, PIN: pin, DataDir: *dataDir, MaxSessions: max(nw+1, 8)})
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			return 1
		}
		defer m.Close()
		d := *rawFor
		cfg.MeasureRaw = func(ctx context.Context, workers int, algo string) (*loadtest.HSMResult, error) {
			return loadtest.MeasureHSM(ctx, m, algo, workers, d)
		}
	}

	res, err := loadtest.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		if errors.Is(err, context.Canceled) {
			return 130
		}
		return 1
	}
	res.Params.Command = "sigillo loadtest " + strings.Join(redactArgs(args), " ")
	jsonPath, htmlPath, err := res.WriteFiles(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		return 1
	}
	fmt.Printf("%s %s batch %d: %d signatures in %.1fs = %.1f sig/s, %d errors, %d verified, latency p50 %.2fms p90 %.2fms p99 %.2fms max %.2fms\n",
		res.Scenario, res.Params.KeyAlgo, res.Params.Batch, res.Signatures, res.Seconds, res.Rate, res.Errors, res.Verified,
		res.Latency.P50, res.Latency.P90, res.Latency.P99, res.Latency.Max)
	if res.RawHSM != nil {
		after := ""
		if res.RawHSMAfter != nil {
			after = fmt.Sprintf(", %.1f sig/s after", res.RawHSMAfter.Rate)
		}
		fmt.Printf("raw HSM %.1f sig/s before%s (%d workers): ratio %.3f\n", res.RawHSM.Rate, after, res.RawHSM.Workers, res.Ratio)
	}
	if c := res.CPU; c != nil {
		fmt.Printf("CPU: server %.1fs + client %.1fs = %.0f µs per signature", c.ServerSeconds, c.ClientSeconds, c.PerSigMicros)
		if c.Ratio > 0 {
			fmt.Printf(" (raw HSM %.0f µs: CPU ratio %.3f)", c.PerSigMicros*c.Ratio, c.Ratio)
		}
		fmt.Println()
	}
	for _, r := range res.RSS {
		if r.Error == "" {
			fmt.Printf("server RSS %s: start %.1f MiB, end %.1f MiB, max %.1f MiB\n", r.Server,
				float64(r.Start)/(1<<20), float64(r.End)/(1<<20), float64(r.Max)/(1<<20))
		}
	}
	for _, k := range res.ErrorsByKind {
		fmt.Printf("errors %q: %d (first: %s)\n", k.Kind, k.Count, k.Example)
	}
	fmt.Printf("wrote %s and %s\n", jsonPath, htmlPath)
	if res.Errors > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}

// redactArgs hides secret flag values in the command recorded in reports.
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	copy(out, args)
	secret := map[string]bool{"admin-token": true, "pkcs11-pin": true}
	for i := 0; i < len(out); i++ {
		name := strings.TrimLeft(out[i], "-")
		if k, _, ok := strings.Cut(name, "="); ok && secret[k] {
			out[i] = out[i][:strings.Index(out[i], "=")+1] + "REDACTED"
		} else if secret[name] && i+1 < len(out) {
			out[i+1] = "REDACTED"
			i++
		}
	}
	return out
}
