package ca

import (
	"context"
	"crypto"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"

	"github.com/digitorus/timestamp"

	"github.com/sigillo/sigillo/errs"
)

// tsaAccuracy is the accuracy stated in every token: the clock is the
// host's NTP-disciplined clock, truncated to the second by GeneralizedTime.
const tsaAccuracy = time.Second

// TimestampResponse answers a DER RFC 3161 TimeStampReq with a DER
// TimeStampResp. A request that does not parse is an errs.Invalid error;
// one that parses but cannot be granted (hash algorithm, digest length,
// policy, critical extension) gets a rejection TimeStampResp, as RFC 3161
// asks.
func (a *Authority) TimestampResponse(ctx context.Context, reqDER []byte) ([]byte, error) {
	req, err := ParseTimestampRequest(reqDER)
	if err != nil {
		return nil, err
	}
	if fail, ok := a.refuse(req); !ok {
		a.met.timestamps.WithLabelValues("rejected").Inc()
		return timestamp.CreateErrorResponse(timestamp.Rejection, fail)
	}
	return a.timestampResponse(ctx, req.HashAlgorithm, req.HashedMessage, req.Nonce, req.Certificates)
}

// ParseTimestampRequest decodes a DER TimeStampReq. Errors are errs.Invalid.
func ParseTimestampRequest(der []byte) (*timestamp.Request, error) {
	req, err := timestamp.ParseRequest(der)
	if err != nil {
		return nil, errs.Wrap(errs.Invalid, "Malformed time-stamp request", err)
	}
	return req, nil
}

// refuse returns why req cannot be granted, if it cannot.
func (a *Authority) refuse(req *timestamp.Request) (timestamp.FailureInfo, bool) {
	switch req.HashAlgorithm {
	case crypto.SHA256, crypto.SHA384, crypto.SHA512:
	default:
		return timestamp.BadAlgorithm, false
	}
	if len(req.HashedMessage) != req.HashAlgorithm.Size() {
		return timestamp.BadDataFormat, false
	}
	if len(req.TSAPolicyOID) > 0 && !req.TSAPolicyOID.Equal(a.tsaPolicy) {
		return timestamp.UnacceptedPolicy, false
	}
	for _, e := range req.Extensions {
		if e.Critical {
			return timestamp.UnacceptedExtension, false
		}
	}
	return 0, true
}

func (a *Authority) timestampResponse(ctx context.Context, h crypto.Hash, digest []byte, nonce *big.Int, certReq bool) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ts := timestamp.Timestamp{
		HashAlgorithm:     h,
		HashedMessage:     digest,
		Time:              a.now().UTC(),
		Accuracy:          tsaAccuracy,
		Policy:            a.tsaPolicy,
		AddTSACertificate: certReq,
		Nonce:             nonce,
	}
	sigHash, _, err := signatureParams(a.tsa.signer.Public())
	if err != nil {
		return nil, err
	}
	// The library builds the TSTInfo (random 160-bit serial) and the CMS
	// SignedData; the signature itself comes from the HSM key through
	// crypto.Signer.
	resp, err := ts.CreateResponseWithOpts(a.tsa.cert, a.tsa.signer, sigHash)
	if err != nil {
		return nil, errsHSM(fmt.Errorf("time-stamp: %w", err))
	}
	a.met.timestamps.WithLabelValues("granted").Inc()
	return resp, nil
}

// Timestamp returns an RFC 3161 TimeStampToken (a CMS ContentInfo) over
// digest, computed with h, with the TSA certificate embedded. It is the
// pades engine's Timestamper.
func (a *Authority) Timestamp(ctx context.Context, digest []byte, h crypto.Hash) ([]byte, error) {
	switch h {
	case crypto.SHA256, crypto.SHA384, crypto.SHA512:
	default:
		return nil, errs.Invalidf("Unsupported time-stamp hash algorithm %v", h)
	}
	if len(digest) != h.Size() {
		return nil, errs.Invalidf("Digest of %d bytes is not a %v digest", len(digest), h)
	}
	resp, err := a.timestampResponse(ctx, h, digest, nil, true)
	if err != nil {
		return nil, err
	}
	var r struct {
		Status asn1.RawValue
		Token  asn1.RawValue `asn1:"optional"`
	}
	if _, err := asn1.Unmarshal(resp, &r); err != nil || len(r.Token.FullBytes) == 0 {
		return nil, fmt.Errorf("time-stamp: own response has no token: %v", err)
	}
	return r.Token.FullBytes, nil
}
