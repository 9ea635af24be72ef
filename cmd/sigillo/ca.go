package main

// `sigillo ca show|import`: the CA hierarchy, read and changed directly in
// the store and the HSM named by the configuration (these run where the
// service runs, not through the API: importing a CA certificate is not
// something an API token should be able to do).

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sigillo/sigillo/ca"
	"github.com/sigillo/sigillo/config"
	"github.com/sigillo/sigillo/hsm"
	"github.com/sigillo/sigillo/store"
	"github.com/sigillo/sigillo/store/postgres"
	"github.com/sigillo/sigillo/store/sqlite"
)

func init() {
	commands["ca"] = command{summary: "CA hierarchy: show the chain, import a CA certificate for an HSM key", run: caMain}
}

const caUsage = `usage: sigillo ca <command> [flags]

commands:
  show   [--config FILE] [--pem]
         print the stored CA certificates (root, issuing, OCSP responder,
         TSA) with their HSM key ids; --pem also prints the chain in PEM
  import --role root|issuing|ocsp|tsa --cert FILE --key-id ID [--replace] [--config FILE]
         store FILE (PEM or DER) as the certificate of an existing HSM key.
         The key must match the certificate and the certificate must chain
         to the stored parent (import root before issuing). On the next
         start the service uses it (and creates only what is still missing).

The configuration comes from --config / SIGILLO_CONFIG and SIGILLO_* variables
(the same as for serve).
`

func caMain(args []string) int { return runCA(args, os.Stdout, os.Stderr) }

func runCA(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, caUsage)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fs := flag.NewFlagSet("ca "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, caUsage) }
	cfgPath := fs.String("config", os.Getenv("SIGILLO_CONFIG"), "YAML configuration file")
	switch args[0] {
	case "show":
		withPEM := fs.Bool("pem", false, "print the chain (issuing CA, root) in PEM")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		cfg, err := config.Load(*cfgPath, os.Environ())
		if err != nil {
			fmt.Fprintln(stderr, "sigillo ca:", err)
			return 2
		}
		st, err := caOpenStore(ctx, cfg)
		if err != nil {
			fmt.Fprintln(stderr, "sigillo ca:", err)
			return 1
		}
		defer st.Close()
		return caShow(ctx, st, *withPEM, stdout, stderr)
	case "import":
		role := fs.String("role", "", "root, issuing, ocsp or tsa")
		certPath := fs.String("cert", "", "certificate file (PEM or DER)")
		keyID := fs.String("key-id", "", "id of the key pair in the HSM")
		replace := fs.Bool("replace", false, "replace a stored certificate of this role")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if *role == "" || *certPath == "" || *keyID == "" {
			fmt.Fprintln(stderr, "sigillo ca import: --role, --cert and --key-id are required")
			return 2
		}
		der, err := readCertFile(*certPath)
		if err != nil {
			fmt.Fprintln(stderr, "sigillo ca import:", err)
			return 2
		}
		cfg, err := config.Load(*cfgPath, os.Environ())
		if err != nil {
			fmt.Fprintln(stderr, "sigillo ca:", err)
			return 2
		}
		st, err := caOpenStore(ctx, cfg)
		if err != nil {
			fmt.Fprintln(stderr, "sigillo ca:", err)
			return 1
		}
		defer st.Close()
		keys, err := caOpenHSM(cfg)
		if err != nil {
			fmt.Fprintln(stderr, "sigillo ca:", err)
			return 1
		}
		defer keys.Close()
		cert, err := ca.Import(ctx, keys, st, *role, der, *keyID, *replace)
		if err != nil {
			fmt.Fprintln(stderr, "sigillo ca import:", err)
			return 1
		}
		fmt.Fprintf(stdout, "imported %s CA certificate %q (serial %x) for HSM key %s\n", *role, cert.Subject.String(), cert.SerialNumber, *keyID)
		return 0
	default:
		fmt.Fprintf(stderr, "sigillo ca: unknown command %q\n\n%s", args[0], caUsage)
		return 2
	}
}

func caShow(ctx context.Context, st *store.Store, withPEM bool, stdout, stderr io.Writer) int {
	entries, err := ca.Stored(ctx, st)
	if err != nil {
		fmt.Fprintln(stderr, "sigillo ca show:", err)
		return 1
	}
	if len(entries) == 0 {
		fmt.Fprintln(stderr, "sigillo ca show: no CA yet (the service creates it on its first start, or use sigillo ca import)")
		return 1
	}
	var chain []*x509.Certificate
	for _, role := range []string{ca.RoleRoot, ca.RoleIssuing, ca.RoleOCSP, ca.RoleTSA} {
		e, ok := entries[role]
		if !ok {
			fmt.Fprintf(stdout, "%-8s (none)\n", role)
			continue
		}
		c, err := x509.ParseCertificate(e.CertDER)
		if err != nil {
			fmt.Fprintf(stderr, "sigillo ca show: stored %s certificate: %v\n", role, err)
			return 1
		}
		fmt.Fprintf(stdout, "%-8s subject:  %s\n", role, c.Subject)
		fmt.Fprintf(stdout, "         issuer:   %s\n", c.Issuer)
		fmt.Fprintf(stdout, "         serial:   %x\n", c.SerialNumber)
		fmt.Fprintf(stdout, "         validity: %s .. %s\n", c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
		fmt.Fprintf(stdout, "         key:      %s (%s)\n", e.KeyID, c.PublicKeyAlgorithm)
		if role == ca.RoleIssuing {
			chain = append([]*x509.Certificate{c}, chain...)
		} else if role == ca.RoleRoot {
			chain = append(chain, c)
		}
	}
	if withPEM {
		for _, c := range chain {
			_ = pem.Encode(stdout, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		}
	}
	return 0
}

func readCertFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.Contains(string(data), "-----BEGIN") {
		b, _ := pem.Decode(data)
		if b == nil || b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: no PEM CERTIFICATE block", path)
		}
		return b.Bytes, nil
	}
	return data, nil
}

// caOpenStore opens the configured store (migrating it) the way serve does.
func caOpenStore(ctx context.Context, cfg *config.Config) (*store.Store, error) {
	if config.DatabaseKind(cfg.Database) == "postgres" {
		return postgres.Open(ctx, cfg.Database, postgres.Options{MaxConns: 2})
	}
	return sqlite.Open(ctx, cfg.Database)
}

// caOpenHSM opens the configured token the way serve does, including the
// dev-mode private SoftHSM2 token under the data directory.
func caOpenHSM(cfg *config.Config) (*hsm.Manager, error) {
	hc := hsm.Config{Module: cfg.PKCS11.Module, TokenLabel: cfg.PKCS11.Token, PIN: cfg.PKCS11.PIN.Value, MaxSessions: cfg.PKCS11.MaxSessions}
	if cfg.Mode == "dev" && hc.Module == "" && hc.TokenLabel == "" {
		dev, err := hsm.ProvisionSoftHSM(filepath.Join(cfg.DataDir, "softhsm"), "sigillo")
		if err != nil {
			return nil, fmt.Errorf("dev SoftHSM2 token: %w", err)
		}
		dev.MaxSessions = hc.MaxSessions
		hc = dev
	}
	if hc.Module == "" {
		m, err := hsm.FindSoftHSMModule()
		if err != nil {
			return nil, fmt.Errorf("pkcs11.module not set and %w", err)
		}
		hc.Module = m
	}
	if hc.TokenLabel == "" {
		return nil, errors.New("pkcs11.token is required when pkcs11.module is set")
	}
	m, err := hsm.Open(hc)
	if err != nil {
		return nil, fmt.Errorf("hsm: %w", err)
	}
	return m, nil
}
