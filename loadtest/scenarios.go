package loadtest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// signAlgoFor is the CSC signAlgo for SHA-256 with the certificate's key.
func signAlgoFor(cert *x509.Certificate) (string, error) {
	switch cert.PublicKey.(type) {
	case *rsa.PublicKey:
		return oidSHA256RSA, nil
	case *ecdsa.PublicKey:
		return oidECDSASHA256, nil
	}
	return "", fmt.Errorf("unsupported certificate key %T", cert.PublicKey)
}

// verifyDigest checks sig over a SHA-256 digest with the certificate's key.
func verifyDigest(cert *x509.Certificate, digest, sig []byte) error {
	return verifyPub(cert.PublicKey, digest, sig)
}

// verifyPub checks sig over a SHA-256 digest (PKCS#1 v1.5 for RSA, DER for
// ECDSA, as sigillo and the hsm package return them).
func verifyPub(pub crypto.PublicKey, digest, sig []byte) error {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, sig)
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest, sig) {
			return errors.New("ECDSA signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("unsupported public key %T", pub)
}

// randomHashes returns n random SHA-256-sized digests, raw and Base64.
func (w *worker) randomHashes(n int) ([][]byte, []string) {
	raw := make([][]byte, n)
	enc := make([]string, n)
	for i := range raw {
		d := make([]byte, 32)
		for j := 0; j < 32; j += 8 {
			v := w.rng.Uint64()
			for k := range 8 {
				d[j+k] = byte(v >> (8 * k))
			}
		}
		raw[i] = d
		enc[i] = base64.StdEncoding.EncodeToString(d)
	}
	return raw, enc
}

// checkSignatures verifies a sample of sigs against hashes.
func (w *worker) checkSignatures(cert *x509.Certificate, credID string, hashes [][]byte, sigs []string) (verified int, err error) {
	if len(sigs) != len(hashes) {
		return 0, fmt.Errorf("signHash: %w: %d signatures for %d hashes", errDecode, len(sigs), len(hashes))
	}
	for i, s := range sigs {
		if !w.shouldVerify() {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return verified, &VerifyError{CredentialID: credID, Err: fmt.Errorf("signature %d is not Base64: %w", i, err)}
		}
		if err := verifyDigest(cert, hashes[i], sig); err != nil {
			return verified, &VerifyError{CredentialID: credID, Err: fmt.Errorf("signature %d: %w", i, err)}
		}
		verified++
	}
	return verified, nil
}

// ensureSession logs the worker's account in when it has no valid token.
func (w *worker) ensureSession(ctx context.Context) error {
	if w.token != "" && time.Now().Before(w.tokenRenew) {
		return nil
	}
	tok, renew, err := login(ctx, w.c, w.acct)
	if err != nil {
		return err
	}
	w.token, w.tokenRenew = tok, renew
	return nil
}

// ensureSAD makes sure the worker holds a SAD good for n more signatures,
// authorizing (PIN, SCAL 1, no hashes) for as many as the credential's
// multisign allows, a multiple of n so none is wasted.
func (w *worker) ensureSAD(ctx context.Context, n int) error {
	if err := w.ensureSession(ctx); err != nil {
		return err
	}
	if w.sad != "" && w.sadLeft >= n && time.Now().Before(w.sadRenew) {
		return nil
	}
	num := max(w.cfg.Multisign/n, 1) * n
	var r authorizeResp
	err := w.c.post(ctx, cscAuthorize, bearer(w.token), authorizeReq{
		CredentialID: w.acct.CredentialID, NumSignatures: num,
		AuthData: []authData{{ID: "PIN", Value: w.acct.PIN}},
	}, &r)
	if err != nil {
		w.sad = ""
		return fmt.Errorf("authorize %s: %w", w.acct.CredentialID, err)
	}
	if r.SAD == "" {
		return fmt.Errorf("authorize %s: %w: no SAD", w.acct.CredentialID, errDecode)
	}
	ttl := time.Duration(r.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = time.Hour
	}
	w.sad, w.sadLeft, w.sadRenew = r.SAD, num, time.Now().Add(ttl*8/10)
	w.authorized++
	return nil
}

// setupCredential logs in, reads the certificate through credentials/info
// and pre-authorizes a SAD, before the clock starts.
func (w *worker) setupCredential(ctx context.Context) error {
	if err := w.ensureSession(ctx); err != nil {
		return err
	}
	cert, err := credentialCert(ctx, w.c, w.token, w.acct.CredentialID)
	if err != nil {
		return err
	}
	if !cert.Equal(w.acct.Cert) {
		return fmt.Errorf("credentials/info %s: certificate differs from the one issued at enrollment", w.acct.CredentialID)
	}
	return w.ensureSAD(ctx, w.cfg.Batch)
}

// automaticDomain is the domain of the load test's automatic-signature
// credentials.
const automaticDomain = "loadtest.invalid"

// signHashScenario: the automatic-signature integration. An automatic
// credential (domain + alias, SCAL 1), one SAD per worker for many
// signatures, Batch hashes per signHash.
type signHashScenario struct{}

func (signHashScenario) spec(cfg Config) credSpec {
	return credSpec{KeyAlgo: cfg.KeyAlgo, OTP: "none", SCAL: 1, Multisign: cfg.Multisign, Domain: automaticDomain}
}

func (signHashScenario) accounts(cfg Config) int { return cfg.Workers }

func (signHashScenario) setup(ctx context.Context, w *worker) error { return w.setupCredential(ctx) }

func (signHashScenario) op(ctx context.Context, w *worker, n int) (int, int, error) {
	if err := w.ensureSAD(ctx, n); err != nil {
		return 0, 0, err
	}
	raw, enc := w.randomHashes(n)
	algo, err := signAlgoFor(w.acct.Cert)
	if err != nil {
		return 0, 0, err
	}
	var r signHashResp
	err = w.c.post(ctx, cscSignHashPath, bearer(w.token), signHashReq{
		CredentialID: w.acct.CredentialID, SAD: w.sad, Hashes: enc, HashAlgorithmOID: oidSHA256, SignAlgo: algo,
	}, &r)
	if err != nil {
		w.sad = "" // its state is unknown now: authorize afresh
		return 0, 0, err
	}
	w.sadLeft -= n
	verified, err := w.checkSignatures(w.acct.Cert, w.acct.CredentialID, raw, r.Signatures)
	if err != nil {
		return 0, verified, err
	}
	return len(r.Signatures), verified, nil
}

// authorizeSignScenario: a person signing (SCAL 2). Each operation is a
// whole session: login, authorize with PIN + TOTP bound to the hashes,
// signHash. A TOTP code is single-use per step, so users rotate.
type authorizeSignScenario struct{}

func (authorizeSignScenario) spec(cfg Config) credSpec {
	return credSpec{KeyAlgo: cfg.KeyAlgo, OTP: "totp", SCAL: 2, Multisign: max(cfg.Batch, 1)}
}

func (authorizeSignScenario) accounts(cfg Config) int { return cfg.Users }

func (authorizeSignScenario) setup(context.Context, *worker) error { return nil }

func (authorizeSignScenario) op(ctx context.Context, w *worker, n int) (int, int, error) {
	wctx := ctx
	if !w.deadline.IsZero() { // do not wait for a TOTP step past the end
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadline(ctx, w.deadline)
		defer cancel()
	}
	acct, waited, err := w.pool.take(wctx, time.Now)
	w.otpWait += waited
	if err != nil {
		if ctx.Err() == nil && wctx.Err() != nil {
			return 0, 0, errRunOver
		}
		return 0, 0, err
	}
	step := int64(-1)
	defer func() { w.pool.put(acct, step) }()

	tok, _, err := login(ctx, w.c, acct)
	if err != nil {
		return 0, 0, err
	}
	raw, enc := w.randomHashes(n)
	code, s, err := acct.totpCode(time.Now())
	if err != nil {
		return 0, 0, err
	}
	step = s
	var ar authorizeResp
	err = w.c.post(ctx, cscAuthorize, bearer(tok), authorizeReq{
		CredentialID: acct.CredentialID, NumSignatures: n, Hashes: enc, HashAlgorithmOID: oidSHA256,
		AuthData: []authData{{ID: "PIN", Value: acct.PIN}, {ID: "OTP", Value: code}},
	}, &ar)
	w.authorized++
	if err != nil {
		return 0, 0, fmt.Errorf("authorize %s: %w", acct.CredentialID, err)
	}
	algo, err := signAlgoFor(acct.Cert)
	if err != nil {
		return 0, 0, err
	}
	var r signHashResp
	err = w.c.post(ctx, cscSignHashPath, bearer(tok), signHashReq{
		CredentialID: acct.CredentialID, SAD: ar.SAD, Hashes: enc, HashAlgorithmOID: oidSHA256, SignAlgo: algo,
	}, &r)
	if err != nil {
		return 0, 0, err
	}
	verified, err := w.checkSignatures(acct.Cert, acct.CredentialID, raw, r.Signatures)
	if err != nil {
		return 0, verified, err
	}
	return len(r.Signatures), verified, nil
}

// signDocScenario: PAdES signing of generated PDFs by an integration:
// an automatic credential like signhash; Batch documents per signDoc.
type signDocScenario struct {
	doc []byte
	enc string // doc in Base64, encoded once

	mu    sync.Mutex
	cache map[docsKey]json.RawMessage
}

type docsKey struct {
	algo string
	n    int
}

// documents returns the JSON array of n copies of the document, encoded
// once per signAlgo and count.
func (s *signDocScenario) documents(w *worker, algo string, n int) (json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := docsKey{algo, n}
	if b, ok := s.cache[k]; ok {
		return b, nil
	}
	level := "Ades-B-B"
	if w.cfg.Level == "B-T" {
		level = "Ades-B-T"
	}
	docs := make([]signDocDocument, n)
	for i := range docs {
		docs[i] = signDocDocument{Document: s.enc, SignatureFormat: "P", ConformanceLevel: level, SignAlgo: algo}
	}
	b, err := json.Marshal(docs)
	if err != nil {
		return nil, fmt.Errorf("encode documents: %w", err)
	}
	if s.cache == nil {
		s.cache = map[docsKey]json.RawMessage{}
	}
	s.cache[k] = b
	return b, nil
}

func (*signDocScenario) spec(cfg Config) credSpec {
	return credSpec{KeyAlgo: cfg.KeyAlgo, OTP: "none", SCAL: 1, Multisign: cfg.Multisign, Domain: automaticDomain}
}

func (*signDocScenario) accounts(cfg Config) int { return cfg.Workers }

func (*signDocScenario) setup(ctx context.Context, w *worker) error { return w.setupCredential(ctx) }

func (s *signDocScenario) op(ctx context.Context, w *worker, n int) (int, int, error) {
	if err := w.ensureSAD(ctx, n); err != nil {
		return 0, 0, err
	}
	algo, err := signAlgoFor(w.acct.Cert)
	if err != nil {
		return 0, 0, err
	}
	docs, err := s.documents(w, algo, n)
	if err != nil {
		return 0, 0, err
	}
	// Assembled by hand: json.Marshal would re-validate the megabytes of
	// pre-encoded documents on every request.
	head, err := json.Marshal(signDocReq{CredentialID: w.acct.CredentialID, SAD: w.sad, Documents: json.RawMessage("0")})
	if err != nil {
		return 0, 0, err
	}
	req := make([]byte, 0, len(head)+len(docs))
	req = append(append(append(req, head[:len(head)-2]...), docs...), '}') // head ends with 0}
	body, err := w.c.postRaw(ctx, cscSignDocPath, bearer(w.token), req)
	if err != nil {
		w.sad = ""
		return 0, 0, err
	}
	w.sadLeft -= n
	signed, err := signedDocuments(body)
	if err != nil {
		return 0, 0, err
	}
	if len(signed) != n {
		return 0, 0, fmt.Errorf("signDoc: %w: %d documents for %d sent", errDecode, len(signed), n)
	}
	verified := 0
	for i, d := range signed {
		if !w.shouldVerify() {
			continue
		}
		pdf, err := base64.StdEncoding.DecodeString(d)
		if err != nil {
			return 0, verified, &VerifyError{CredentialID: w.acct.CredentialID, Err: fmt.Errorf("document %d is not Base64: %w", i, err)}
		}
		if err := VerifySignedPDF(s.doc, pdf, w.acct.Cert, w.cfg.Level == "B-T"); err != nil {
			return 0, verified, &VerifyError{CredentialID: w.acct.CredentialID, Err: fmt.Errorf("document %d: %w", i, err)}
		}
		verified++
	}
	return n, verified, nil
}
