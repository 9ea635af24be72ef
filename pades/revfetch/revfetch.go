// Package revfetch fetches revocation data over HTTP from the URLs in a
// certificate (AIA OCSP, CRL distribution points). It is the network
// implementation of pades.ValidationSource, used for B-LT when the CA is
// not in-process; it is kept out of package pades so that the PDF code
// does not depend on net/http.
//
// Everything returned has been checked: the OCSP response is signed for
// this certificate by its issuer (or a delegated responder) and says good;
// the CRL is signed by the issuer and does not list the certificate.
package revfetch

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"
)

// Error kinds.
var (
	// ErrRevoked: the certificate is revoked; signing must not go on.
	ErrRevoked = errors.New("revfetch: certificate revoked")
	// ErrUnavailable: no usable OCSP response or CRL could be fetched.
	ErrUnavailable = errors.New("revfetch: revocation data unavailable")
)

// Fetcher fetches OCSP responses (preferred) or CRLs.
type Fetcher struct {
	// HTTP client; nil means one with a 15 s timeout.
	HTTP *http.Client
	// MaxResponse bounds a reply (default 16 MiB, CRLs can be large).
	MaxResponse int64
	// Clock for freshness checks (time.Now if nil).
	Clock func() time.Time
}

var defaultHTTP = &http.Client{Timeout: 15 * time.Second}

// Revocation returns a good OCSP response for cert, or if no responder
// answers usefully, the issuer's CRL. A revoked certificate is an
// ErrRevoked error.
func (f *Fetcher) Revocation(ctx context.Context, cert, issuer *x509.Certificate) (ocspDER, crlDER []byte, err error) {
	var errs []error
	for _, url := range cert.OCSPServer {
		der, err := f.ocsp(ctx, url, cert, issuer)
		if err == nil {
			return der, nil, nil
		}
		if errors.Is(err, ErrRevoked) {
			return nil, nil, err
		}
		errs = append(errs, err)
	}
	for _, url := range cert.CRLDistributionPoints {
		if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
			continue
		}
		der, err := f.crl(ctx, url, cert, issuer)
		if err == nil {
			return nil, der, nil
		}
		if errors.Is(err, ErrRevoked) {
			return nil, nil, err
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, nil, fmt.Errorf("%w: %q has no OCSP or HTTP CRL URL", ErrUnavailable, cert.Subject)
	}
	return nil, nil, fmt.Errorf("%w: %q: %w", ErrUnavailable, cert.Subject, errors.Join(errs...))
}

func (f *Fetcher) now() time.Time {
	if f.Clock != nil {
		return f.Clock()
	}
	return time.Now()
}

func (f *Fetcher) do(req *http.Request) ([]byte, error) {
	hc := f.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	max := f.MaxResponse
	if max <= 0 {
		max = 16 << 20
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d", req.URL, resp.StatusCode)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: reply larger than %d bytes", req.URL, max)
	}
	return b, nil
}

func (f *Fetcher) ocsp(ctx context.Context, url string, cert, issuer *x509.Certificate) ([]byte, error) {
	reqDER, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(reqDER))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	der, err := f.do(req)
	if err != nil {
		return nil, fmt.Errorf("OCSP %w", err)
	}
	resp, err := ocsp.ParseResponseForCert(der, cert, issuer)
	if err != nil {
		return nil, fmt.Errorf("OCSP %s: %w", url, err)
	}
	switch resp.Status {
	case ocsp.Good:
	case ocsp.Revoked:
		return nil, fmt.Errorf("%w: OCSP %s: revoked at %v", ErrRevoked, url, resp.RevokedAt)
	default:
		return nil, fmt.Errorf("OCSP %s: status %d", url, resp.Status)
	}
	if !resp.NextUpdate.IsZero() && resp.NextUpdate.Before(f.now()) {
		return nil, fmt.Errorf("OCSP %s: stale response (nextUpdate %v)", url, resp.NextUpdate)
	}
	return der, nil
}

func (f *Fetcher) crl(ctx context.Context, url string, cert, issuer *x509.Certificate) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	der, err := f.do(req)
	if err != nil {
		return nil, fmt.Errorf("CRL %w", err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("CRL %s: %w", url, err)
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return nil, fmt.Errorf("CRL %s: %w", url, err)
	}
	if !crl.NextUpdate.IsZero() && crl.NextUpdate.Before(f.now()) {
		return nil, fmt.Errorf("CRL %s: stale (nextUpdate %v)", url, crl.NextUpdate)
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			return nil, fmt.Errorf("%w: listed in CRL %s since %v", ErrRevoked, url, e.RevocationTime)
		}
	}
	return der, nil
}
