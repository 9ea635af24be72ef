package cmstest

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digitorus/timestamp"

	"github.com/sigillo/sigillo/cms"
)

var _ cms.Timestamper = (*TSAServer)(nil)

// TSAServer is an in-process RFC 3161 time-stamp authority. It implements
// the Timestamper interface of package cms directly and serves the RFC 3161
// HTTP protocol through Handler.
type TSAServer struct {
	Cert  *x509.Certificate
	Key   crypto.Signer
	Chain []*x509.Certificate // TSA certificate first
	// Now is the TSA clock (default time.Now).
	Now func() time.Time
	// ExtraCerts are added to every token (to make tokens large).
	ExtraCerts []*x509.Certificate
	// Calls counts issued tokens.
	Calls atomic.Int64
	// Mutate, when set, alters each parsed HTTP request before the token
	// is made (for client tests: wrong nonce, wrong imprint).
	Mutate func(req *timestamp.Request)
	// Tamper, when set, replaces each HTTP response (for client tests).
	Tamper func(resp []byte) []byte
}

// NewTSA issues a TSA certificate (EKU timeStamping) from ca.
func NewTSA(t testing.TB, ca *CA) *TSAServer {
	t.Helper()
	key, chain := ca.Leaf(t, "sigillo test TSA", "p-256", TSA)
	return &TSAServer{Cert: chain[0], Key: key, Chain: chain}
}

var testPolicy = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1, 1}

func (s *TSAServer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// response builds a granted TimeStampResp.
func (s *TSAServer) response(req *timestamp.Request) ([]byte, error) {
	ts := timestamp.Timestamp{
		HashAlgorithm:     req.HashAlgorithm,
		HashedMessage:     req.HashedMessage,
		Time:              s.now().UTC().Truncate(time.Second),
		Policy:            testPolicy,
		Nonce:             req.Nonce,
		AddTSACertificate: true,
		Accuracy:          time.Second,
		Certificates:      s.ExtraCerts,
	}
	s.Calls.Add(1)
	return ts.CreateResponseWithOpts(s.Cert, s.Key, crypto.SHA256)
}

// Timestamp returns a TimeStampToken over digest (cms.Timestamper).
func (s *TSAServer) Timestamp(ctx context.Context, digest []byte, h crypto.Hash) ([]byte, error) {
	resp, err := s.response(&timestamp.Request{HashAlgorithm: h, HashedMessage: digest, Certificates: true})
	if err != nil {
		return nil, err
	}
	var r struct {
		Status asn1.RawValue
		Token  asn1.RawValue
	}
	if _, err := asn1.Unmarshal(resp, &r); err != nil {
		return nil, err
	}
	if len(r.Token.FullBytes) == 0 {
		return nil, errors.New("cmstest: no token")
	}
	return r.Token.FullBytes, nil
}

// Handler serves RFC 3161 over HTTP (POST application/timestamp-query).
func (s *TSAServer) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/timestamp-query" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		req, err := timestamp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if s.Mutate != nil {
			s.Mutate(req)
		}
		resp, err := s.response(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if s.Tamper != nil {
			resp = s.Tamper(resp)
		}
		w.Header().Set("Content-Type", "application/timestamp-reply")
		w.Write(resp)
	})
}
