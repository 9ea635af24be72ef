// Package tsaclient obtains RFC 3161 time-stamp tokens over HTTP. It is the
// network implementation of cms.Timestamper (signature time-stamps for
// B-T, document time-stamps for B-LTA); it lives apart from package cms so
// that the CMS code does not depend on net/http.
//
// Every reply is checked before its token is returned: HTTP status, PKI
// status granted, nonce echoed, message imprint equal to the request, and
// the token's own signature.
package tsaclient

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/asn1"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/digitorus/timestamp"

	"github.com/sigillo/sigillo/cms"
)

// Client asks one TSA for tokens. The zero value is not usable: set URL.
type Client struct {
	// URL of the TSA (POST application/timestamp-query).
	URL string
	// HTTP is the client to use; nil means one with a 15 s timeout. The
	// context passed to Timestamp bounds each call too.
	HTTP *http.Client
	// Username and Password, if set, are sent as HTTP basic auth.
	Username, Password string
	// Policy, if set, is requested as reqPolicy.
	Policy asn1.ObjectIdentifier
	// MaxResponse bounds the reply size (default 1 MiB).
	MaxResponse int64
}

var _ cms.Timestamper = (*Client)(nil)

var defaultHTTP = &http.Client{Timeout: 15 * time.Second}

// Timestamp requests a token over digest (made with h) and returns the DER
// TimeStampToken. Errors wrap cms.ErrTimestamp.
func (c *Client) Timestamp(ctx context.Context, digest []byte, h crypto.Hash) ([]byte, error) {
	if _, err := cms.HashOID(h); err != nil {
		return nil, err
	}
	if len(digest) != h.Size() {
		return nil, fmt.Errorf("%w: digest is %d bytes, %v needs %d", cms.ErrTimestamp, len(digest), h, h.Size())
	}
	nonce, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		return nil, err
	}
	req := timestamp.Request{HashAlgorithm: h, HashedMessage: digest, Certificates: true, Nonce: nonce, TSAPolicyOID: c.Policy}
	body, err := req.Marshal()
	if err != nil {
		return nil, fmt.Errorf("%w: request: %v", cms.ErrTimestamp, err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", cms.ErrTimestamp, err)
	}
	hreq.Header.Set("Content-Type", "application/timestamp-query")
	hreq.Header.Set("Accept", "application/timestamp-reply")
	if c.Username != "" || c.Password != "" {
		hreq.SetBasicAuth(c.Username, c.Password)
	}
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", cms.ErrTimestamp, c.URL, err)
	}
	defer resp.Body.Close()
	max := c.MaxResponse
	if max <= 0 {
		max = 1 << 20
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: read: %v", cms.ErrTimestamp, c.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s: HTTP %d", cms.ErrTimestamp, c.URL, resp.StatusCode)
	}
	if int64(len(raw)) > max {
		return nil, fmt.Errorf("%w: %s: reply larger than %d bytes", cms.ErrTimestamp, c.URL, max)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/timestamp-") {
		return nil, fmt.Errorf("%w: %s: content type %q", cms.ErrTimestamp, c.URL, ct)
	}
	return checkReply(raw, digest, h, nonce)
}

// timeStampResp is RFC 3161 §2.4.2 TimeStampResp.
type timeStampResp struct {
	Status struct {
		Status       int
		StatusString []asn1.RawValue `asn1:"optional"`
		FailInfo     asn1.BitString  `asn1:"optional"`
	}
	TimeStampToken asn1.RawValue `asn1:"optional"`
}

func checkReply(raw, digest []byte, h crypto.Hash, nonce *big.Int) ([]byte, error) {
	var r timeStampResp
	rest, err := asn1.Unmarshal(raw, &r)
	if err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("%w: malformed TimeStampResp: %v", cms.ErrTimestamp, err)
	}
	if r.Status.Status != 0 && r.Status.Status != 1 { // granted, grantedWithMods
		return nil, fmt.Errorf("%w: TSA refused: status %d, failInfo %x", cms.ErrTimestamp, r.Status.Status, r.Status.FailInfo.Bytes)
	}
	token := r.TimeStampToken.FullBytes
	if len(token) == 0 {
		return nil, fmt.Errorf("%w: granted reply without a token", cms.ErrTimestamp)
	}
	info, err := cms.ParseTimestampToken(token)
	if err != nil {
		return nil, err
	}
	if info.Nonce == nil || info.Nonce.Cmp(nonce) != 0 {
		return nil, fmt.Errorf("%w: nonce not echoed", cms.ErrTimestamp)
	}
	if info.Hash != h || !bytes.Equal(info.HashedMessage, digest) {
		return nil, fmt.Errorf("%w: message imprint differs from the request", cms.ErrTimestamp)
	}
	if info.Token.Signer == nil {
		return nil, fmt.Errorf("%w: token without the TSA certificate", cms.ErrTimestamp)
	}
	return token, nil
}
