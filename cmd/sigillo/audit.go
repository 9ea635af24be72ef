package main

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/store"
	"github.com/sigillo/sigillo/store/postgres"
	"github.com/sigillo/sigillo/store/sqlite"
)

func init() {
	commands["audit"] = command{summary: "verify or export the hash-chained audit log", run: auditMain}
}

const auditUsage = `usage:
  sigillo audit verify [--database DSN] [--tsa-roots FILE]
  sigillo audit export [--since 2026-01-01T00:00:00Z] [--format jsonl] [--database DSN]

DSN is a SQLite path, sqlite://PATH or a postgres:// URL
(default: $SIGILLO_DATABASE, else ./var/sigillo.db).
verify exits 0 when the chain is intact, 1 at the first broken link,
2 on usage or database errors.`

func auditMain(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return runAudit(ctx, args, os.Stdout, os.Stderr)
}

// runAudit is auditMain with its streams injected, for tests.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, auditUsage)
		return 2
	}
	switch args[0] {
	case "verify":
		return auditVerify(ctx, args[1:], stdout, stderr)
	case "export":
		return auditExport(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, auditUsage)
		return 0
	}
	fmt.Fprintf(stderr, "sigillo audit: unknown subcommand %q\n%s\n", args[0], auditUsage)
	return 2
}

func auditFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("audit "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := os.Getenv("SIGILLO_DATABASE")
	if def == "" {
		def = "./var/sigillo.db"
	}
	db := fs.String("database", def, "SQLite path, sqlite://PATH or postgres:// URL (env SIGILLO_DATABASE)")
	return fs, db
}

func auditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, dsn := auditFlags("verify", stderr)
	rootsFile := fs.String("tsa-roots", "", "PEM file of TSA roots: also check who signed each checkpoint")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var opts []audit.Option
	if *rootsFile != "" {
		pem, err := os.ReadFile(*rootsFile)
		if err != nil {
			fmt.Fprintln(stderr, "sigillo audit verify:", err)
			return 2
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			fmt.Fprintf(stderr, "sigillo audit verify: no certificate in %s\n", *rootsFile)
			return 2
		}
		opts = append(opts, audit.WithTSARoots(roots))
	}
	l, closeAll, err := openAuditLog(ctx, *dsn, opts...)
	if err != nil {
		fmt.Fprintln(stderr, "sigillo audit verify:", err)
		return 2
	}
	defer closeAll()
	res, err := l.Verify(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "sigillo audit verify:", err)
		return 2
	}
	if !res.Intact() {
		fmt.Fprintf(stdout, "audit chain BROKEN at %s\n", res.Broken)
		fmt.Fprintf(stdout, "records before the break: %d\n", res.Records)
		return 1
	}
	head := res.HeadHash
	if res.HeadSeq == 0 {
		head = audit.GenesisHash
	}
	fmt.Fprintf(stdout, "audit chain intact: %d records, head %s\n", res.Records, hex.EncodeToString(head))
	fmt.Fprintf(stdout, "checkpoints verified: %d\n", res.Checkpoints)
	return 0
}

func auditExport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, dsn := auditFlags("export", stderr)
	sinceFlag := fs.String("since", "", "export records at or after this RFC 3339 time (default: all)")
	format := fs.String("format", "jsonl", "output format (jsonl)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *format != "jsonl" {
		fmt.Fprintf(stderr, "sigillo audit export: unknown format %q (want jsonl)\n", *format)
		return 2
	}
	var since time.Time
	if *sinceFlag != "" {
		t, err := time.Parse(time.RFC3339Nano, *sinceFlag)
		if err != nil {
			fmt.Fprintf(stderr, "sigillo audit export: --since: %v\n", err)
			return 2
		}
		since = t
	}
	l, closeAll, err := openAuditLog(ctx, *dsn)
	if err != nil {
		fmt.Fprintln(stderr, "sigillo audit export:", err)
		return 2
	}
	defer closeAll()
	if err := l.Export(ctx, since, stdout); err != nil {
		fmt.Fprintln(stderr, "sigillo audit export:", err)
		return 2
	}
	return 0
}

// openAuditLog opens the store named by dsn and an audit log over it; the
// returned func closes both.
func openAuditLog(ctx context.Context, dsn string, opts ...audit.Option) (*audit.Log, func(), error) {
	st, err := openStore(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	l, err := audit.Open(ctx, st, opts...)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return l, func() { l.Close(); st.Close() }, nil
}

// openStore opens SQLite or PostgreSQL from a DSN. The config package will
// take this over; until then it is the one place that reads a DSN. An
// audit tool must not create an empty database where the real one was
// expected, so a missing SQLite file is an error.
func openStore(ctx context.Context, dsn string) (*store.Store, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return postgres.Open(ctx, dsn, postgres.Options{MaxConns: 4})
	}
	if strings.Contains(dsn, "://") && !strings.HasPrefix(dsn, "sqlite://") {
		return nil, fmt.Errorf("database %q: unknown scheme (want a path, sqlite://PATH or postgres://...)", dsn)
	}
	path := strings.TrimPrefix(dsn, "sqlite://")
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("database %s does not exist", path)
		}
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	return sqlite.Open(ctx, path)
}
