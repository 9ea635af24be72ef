package main

// `sigillo sign`: sign local PDFs through a remote sigillo (or any CSC v2
// service) the way a desktop signing client does. The documents never
// leave the machine: each PDF is prepared locally (signature placeholder,
// ByteRange digest), only H(signed attributes) goes to the server, and the
// holder's SAD is bound to exactly those hashes (one authorize for the
// batch, then signHash). B-T time-stamps come from the server's
// signatures/timestamp.

import (
	"bufio"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/sigillo/sigillo/cms"
	"github.com/sigillo/sigillo/cscclient"
	"github.com/sigillo/sigillo/pades"
	"github.com/sigillo/sigillo/pades/revfetch"
	"github.com/sigillo/sigillo/signdoc"
)

func init() {
	commands["sign"] = command{summary: "sign local PDFs with a remote credential (CSC client, hashes locally)", run: signMain}
}

const signUsage = `usage: sigillo sign --server URL --user USER [--credential ID] --pin PIN [--otp OTP]
                   [--level B-B|B-T|B-LT|B-LTA] --out DIR|FILE.pdf IN.pdf [IN.pdf ...]

Signs each input as a PAdES signature with a credential of a remote CSC v2
service. The PDFs stay local: only the hashes to sign are sent, with one
credentials/authorize for the whole batch (the SAD is bound to them) and
signatures/signHash; B-T adds a time-stamp from the service; B-LT adds the
validation data (certificates, OCSP responses or CRLs fetched from the URLs
in the certificates) in a /DSS; B-LTA then a document time-stamp.

  --server URL       service root (e.g. https://sign.example)
  --user USER        login name; the password comes from --password or
                     the SIGILLO_SIGN_PASSWORD environment variable
  --credential ID    credential to sign with (default: the only one)
  --pin PIN          signature PIN (or SIGILLO_SIGN_PIN)
  --otp OTP          one-time password, when the credential needs one; for
                     a credential whose OTP comes by SMS, without --otp the
                     service is asked to send it and the code is read from
                     standard input
  --level L          B-B (default), B-T, B-LT or B-LTA
  --out PATH         output directory, or the output file for one input
  --quiet            no progress on stderr

Exit status: 0 all signed, 1 failure (nothing is written for a failed
batch), 2 usage error.
`

func signMain(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return runSign(ctx, args, os.Stdin, os.Stdout, os.Stderr)
}

// signOptions are the parsed flags.
type signOptions struct {
	server, user, password, credential, pin, otp, out string
	level                                             pades.Level
	inputs                                            []string
	quiet                                             bool
}

func parseSignFlags(args []string, stderr io.Writer) (*signOptions, error) {
	o := &signOptions{}
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, signUsage) }
	fs.StringVar(&o.server, "server", "", "")
	fs.StringVar(&o.user, "user", "", "")
	fs.StringVar(&o.password, "password", "", "")
	fs.StringVar(&o.credential, "credential", "", "")
	fs.StringVar(&o.pin, "pin", "", "")
	fs.StringVar(&o.otp, "otp", "", "")
	fs.StringVar(&o.out, "out", "", "")
	level := fs.String("level", "B-B", "")
	fs.BoolVar(&o.quiet, "quiet", false, "")
	// Flags and files may be interleaved (sigillo sign a.pdf --out x).
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return nil, err
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		o.inputs = append(o.inputs, rest[0])
		rest = rest[1:]
	}
	if o.password == "" {
		o.password = os.Getenv("SIGILLO_SIGN_PASSWORD")
	}
	if o.pin == "" {
		o.pin = os.Getenv("SIGILLO_SIGN_PIN")
	}
	var problems []string
	if o.server == "" {
		problems = append(problems, "--server is required")
	}
	if o.user == "" {
		problems = append(problems, "--user is required")
	}
	if o.password == "" {
		problems = append(problems, "a password is required (--password or SIGILLO_SIGN_PASSWORD)")
	}
	if o.out == "" {
		problems = append(problems, "--out is required")
	}
	if len(o.inputs) == 0 {
		problems = append(problems, "no input PDF")
	}
	l, err := signdoc.ParseLevel(*level)
	if err != nil {
		problems = append(problems, fmt.Sprintf("--level %q: want B-B, B-T, B-LT or B-LTA", *level))
	}
	o.level = l
	if strings.HasSuffix(strings.ToLower(o.out), ".pdf") && len(o.inputs) > 1 {
		problems = append(problems, "--out names a file but there are several inputs: give a directory")
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return o, nil
}

func runSign(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseSignFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "sigillo sign: %v\n\n%s", err, signUsage)
		}
		return 2
	}
	outs, err := signOutputs(o)
	if err != nil {
		fmt.Fprintf(stderr, "sigillo sign: %v\n", err)
		return 2
	}
	if err := signBatch(ctx, o, outs, stdin, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "sigillo sign: %v\n", err)
		return 1
	}
	return 0
}

// signOutputs maps each input to its output path (DIR/<name>-signed.pdf, or
// the file named by --out for one input). It refuses to overwrite an input.
func signOutputs(o *signOptions) ([]string, error) {
	outs := make([]string, len(o.inputs))
	if len(o.inputs) == 1 && strings.HasSuffix(strings.ToLower(o.out), ".pdf") {
		outs[0] = o.out
	} else {
		if err := os.MkdirAll(o.out, 0o755); err != nil {
			return nil, fmt.Errorf("--out: %w", err)
		}
		seen := map[string]bool{}
		for i, in := range o.inputs {
			base := strings.TrimSuffix(filepath.Base(in), filepath.Ext(in))
			outs[i] = filepath.Join(o.out, base+"-signed.pdf")
			if seen[outs[i]] {
				return nil, fmt.Errorf("two inputs would both be written to %s", outs[i])
			}
			seen[outs[i]] = true
		}
	}
	for i, in := range o.inputs {
		a, _ := filepath.Abs(in)
		b, _ := filepath.Abs(outs[i])
		if a == b {
			return nil, fmt.Errorf("%s would overwrite its input", outs[i])
		}
	}
	return outs, nil
}

// signJob is one document in flight.
type signJob struct {
	in, out string
	tmp     *os.File
	prep    *pades.Prepared
	attrs   *cms.SignedAttrs
}

// signHashChunk bounds the hashes of one signHash call (servers cap it).
const signHashChunk = 500

func signBatch(ctx context.Context, o *signOptions, outs []string, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	c := &cscclient.Client{BaseURL: o.server}
	if err := c.Login(ctx, o.user, o.password); err != nil {
		return err
	}
	if o.credential == "" {
		ids, err := c.List(ctx)
		if err != nil {
			return err
		}
		if len(ids) != 1 {
			return fmt.Errorf("you have %d credentials (%s): choose one with --credential", len(ids), strings.Join(ids, ", "))
		}
		o.credential = ids[0]
	}
	info, err := c.Info(ctx, o.credential)
	if err != nil {
		return err
	}
	chain, err := info.Chain()
	if err != nil {
		return err
	}
	if info.NeedsOTP() && o.otp == "" && !info.OTPBySMS() {
		return errors.New("the credential needs an OTP from the authenticator app: give --otp")
	}
	n := len(o.inputs)
	if info.Multisign > 0 && n > info.Multisign {
		return fmt.Errorf("%d documents, but the credential signs at most %d per authorization", n, info.Multisign)
	}
	scheme, err := cms.SchemeFor(chain[0].PublicKey, false)
	if err != nil {
		return err
	}
	signAlgo := "1.2.840.10045.4.3.2" // ecdsa-with-SHA256
	if scheme == cms.PKCS1v15 {
		signAlgo = "1.2.840.113549.1.1.11" // sha256WithRSAEncryption
	}

	jobs := make([]*signJob, n)
	defer func() {
		for _, j := range jobs {
			if j != nil && j.tmp != nil {
				j.tmp.Close()
				os.Remove(j.tmp.Name())
			}
		}
	}()
	prog := newSignProgress(stderr, o.quiet, n)
	digests := make([][]byte, n)
	for i, in := range o.inputs {
		j := &signJob{in: in, out: outs[i]}
		jobs[i] = j
		if err := signPrepare(ctx, j, chain, o.level); err != nil {
			return err
		}
		digests[i] = j.attrs.Digest()
		prog.step("prepared")
	}
	if info.NeedsOTP() && o.otp == "" {
		// Asked for only now, after the documents are prepared, so the
		// code is still fresh (a minute by default) when authorize sends it.
		if o.otp, err = askSMSOTP(ctx, c, o.credential, stdin, stderr); err != nil {
			return err
		}
	}
	sad, err := c.Authorize(ctx, cscclient.AuthorizeRequest{CredentialID: o.credential, NumSignatures: n,
		Hashes: digests, Hash: crypto.SHA256, PIN: o.pin, OTP: o.otp, Description: fmt.Sprintf("sigillo sign: %d PDF documents", n)})
	if err != nil {
		return err
	}
	sigs := make([][]byte, 0, n)
	for k := 0; k < n; k += signHashChunk {
		part := digests[k:min(k+signHashChunk, n)]
		s, err := c.SignHash(ctx, o.credential, sad, part, crypto.SHA256, signAlgo)
		if err != nil {
			return err
		}
		sigs = append(sigs, s...)
	}
	prog.restart()
	for i, j := range jobs {
		var unsigned []cms.Attribute
		if o.level >= pades.BT {
			attr, err := cms.SignatureTimestamp(ctx, c, sigs[i], crypto.SHA256)
			if err != nil {
				return fmt.Errorf("%s: %w", j.in, err)
			}
			unsigned = append(unsigned, attr)
		}
		der, err := j.attrs.Assemble(sigs[i], scheme, chain, unsigned)
		if err != nil {
			return fmt.Errorf("%s: %w", j.in, err)
		}
		if err := pades.Embed(j.tmp, j.prep, der); err != nil {
			return fmt.Errorf("%s: %w", j.in, err)
		}
		if o.level >= pades.BLT {
			if err := j.extend(ctx, o.level, c, chain); err != nil {
				return fmt.Errorf("%s: %w", j.in, err)
			}
		}
		if err := j.tmp.Sync(); err != nil {
			return fmt.Errorf("%s: %w", j.out, err)
		}
		if err := j.tmp.Close(); err != nil {
			return fmt.Errorf("%s: %w", j.out, err)
		}
		if err := os.Rename(j.tmp.Name(), j.out); err != nil {
			return fmt.Errorf("%s: %w", j.out, err)
		}
		j.tmp = nil
		fmt.Fprintln(stdout, j.out)
		prog.step("signed")
	}
	return nil
}

// askSMSOTP has the service send the credential's OTP by SMS and reads
// the code from stdin.
func askSMSOTP(ctx context.Context, c *cscclient.Client, credentialID string, stdin io.Reader, stderr io.Writer) (string, error) {
	if err := c.Challenge(ctx, credentialID); err != nil {
		return "", err
	}
	fmt.Fprint(stderr, "A one-time password was sent by SMS. Code: ")
	line, err := bufio.NewReader(io.LimitReader(stdin, 1024)).ReadString('\n')
	code := strings.TrimSpace(line)
	if code == "" {
		if err == nil || errors.Is(err, io.EOF) {
			err = errors.New("no code given")
		}
		return "", fmt.Errorf("reading the OTP: %w", err)
	}
	return code, nil
}

// extend adds B-LT's /DSS (validation data fetched from the certificates'
// OCSP and CRL URLs) and, for B-LTA, a document time-stamp from the
// service, each as an incremental update written to a new temporary file
// that replaces j.tmp.
func (j *signJob) extend(ctx context.Context, level pades.Level, ts cms.Timestamper, chain []*x509.Certificate) error {
	step := func(write func(in *os.File, size int64, out *os.File) error) error {
		st, err := j.tmp.Stat()
		if err != nil {
			return err
		}
		next, err := os.CreateTemp(filepath.Dir(j.out), ".sigillo-sign-*.pdf")
		if err != nil {
			return err
		}
		if err := write(j.tmp, st.Size(), next); err != nil {
			next.Close()
			os.Remove(next.Name())
			return err
		}
		j.tmp.Close()
		os.Remove(j.tmp.Name())
		j.tmp = next
		return nil
	}
	err := step(func(in *os.File, size int64, out *os.File) error {
		return pades.AddDSS(ctx, in, size, out, &revfetch.Fetcher{}, chain)
	})
	if err != nil || level < pades.BLTA {
		return err
	}
	return step(func(in *os.File, size int64, out *os.File) error {
		return pades.AddDocTimeStamp(ctx, in, size, out, ts, crypto.SHA256, 0)
	})
}

// signPrepare writes the prepared PDF to a temporary file next to the
// output and builds the signed attributes over its ByteRange digest.
func signPrepare(ctx context.Context, j *signJob, chain []*x509.Certificate, level pades.Level) error {
	in, err := os.Open(j.in)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if j.tmp, err = os.CreateTemp(filepath.Dir(j.out), ".sigillo-sign-*.pdf"); err != nil {
		return err
	}
	if j.prep, err = pades.Prepare(ctx, in, st.Size(), j.tmp, chain, pades.Options{Level: level}); err != nil {
		return fmt.Errorf("%s: %w", j.in, err)
	}
	if j.attrs, err = cms.NewSignedAttributes(j.prep.Digest, j.prep.Hash, chain[0]); err != nil {
		return fmt.Errorf("%s: %w", j.in, err)
	}
	return nil
}

// signProgress prints n/total and the rate on stderr, at most twice a
// second (and always the last step).
type signProgress struct {
	w            io.Writer
	quiet        bool
	total, done  int
	start, shown time.Time
}

func newSignProgress(w io.Writer, quiet bool, total int) *signProgress {
	return &signProgress{w: w, quiet: quiet, total: total, start: time.Now()}
}

func (p *signProgress) restart() { p.done, p.start, p.shown = 0, time.Now(), time.Time{} }

func (p *signProgress) step(what string) {
	p.done++
	if p.quiet || (p.done < p.total && time.Since(p.shown) < 500*time.Millisecond) {
		return
	}
	p.shown = time.Now()
	rate := float64(p.done) / max(time.Since(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "%s %d/%d (%.1f documents/s)\n", what, p.done, p.total, rate)
}
