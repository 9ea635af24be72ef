package csc

// CSC v2 asynchronous mode (operationMode "A") for signHash and signDoc,
// and signatures/signPolling. The jobs themselves (store-backed, resumable,
// readable from any replica) are package jobs'; this file decodes, hands
// over and renders.
//
// The asynchronous handlers run in front of the synchronous ones on the
// same routes: a request without operationMode "A" passes through
// untouched (its body restored), so the synchronous decoding and its
// error messages stay the only ones.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/jobs"
	"github.com/sigillo/sigillo/sam"
)

// AsyncRunner runs asynchronous jobs; *jobs.Runner implements it.
type AsyncRunner interface {
	SubmitHashes(ctx context.Context, p *sam.Principal, h jobs.HashJob) (string, error)
	SubmitDocuments(ctx context.Context, p *sam.Principal, d jobs.DocJob) (string, error)
	Poll(ctx context.Context, p *sam.Principal, id string) (*jobs.Status, error)
	MaxDocumentBytes() int64
}

var _ AsyncRunner = (*jobs.Runner)(nil)

// asyncMembers are the members only the asynchronous mode reads.
var asyncMembers = []string{"operationMode", "validity_period", "response_uri"}

// asyncParams reads operationMode, validity_period (ms) and response_uri.
// validity_period and response_uri are ignored (CSC: "A only") unless the
// mode is "A".
func asyncParams(f fields) (mode string, a jobs.Async, err error) {
	if mode, err = f.str("operationMode", false); err != nil {
		return "", a, err
	}
	switch mode {
	case "", "S":
		return "S", a, nil
	case "A":
	default:
		return "", a, errs.Invalidf("Invalid parameter operationMode")
	}
	ms, set, err := f.integer("validity_period", false)
	if err != nil || (set && ms <= 0) {
		return "", a, jobs.ErrValidity
	}
	if ms > int64(365*24*time.Hour/time.Millisecond) {
		return "", a, jobs.ErrValidityRange
	}
	a.ValidityPeriod = time.Duration(ms) * time.Millisecond
	if a.ResponseURI, err = f.str("response_uri", false); err != nil {
		return "", a, jobs.ErrResponseURI
	}
	return mode, a, nil
}

// without returns the JSON object f minus the asynchronous members.
func (f fields) without(names ...string) ([]byte, error) {
	out := make(map[string]json.RawMessage, len(f))
	for k, v := range f {
		drop := false
		for _, n := range names {
			if strings.EqualFold(k, n) {
				drop = true
			}
		}
		if !drop {
			out[k] = v
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, "Internal error", err)
	}
	return b, nil
}

// containsFold reports whether b contains the ASCII word w (lower case),
// ignoring case, without allocating (JSON member names match
// case-insensitively).
func containsFold(b []byte, w string) bool {
	for i := 0; i+len(w) <= len(b); i++ {
		if b[i]|0x20 != w[0] {
			continue
		}
		j := 1
		for j < len(w) && b[i+j]|0x20 == w[j] {
			j++
		}
		if j == len(w) {
			return true
		}
	}
	return false
}

// restoreBody puts body back for the next handler of the chain.
func restoreBody(c *gin.Context, body []byte) {
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
	c.Request.ContentLength = int64(len(body))
}

// responseIDResponse is the answer to an accepted asynchronous request.
type responseIDResponse struct {
	ResponseID string `json:"responseID"`
}

// asyncHash is the operationMode "A" front of v2 signatures/signHash.
func (a *API) asyncHash(v *version) gin.HandlerFunc {
	return func(c *gin.Context) {
		if a.opts.Async == nil || v.d.version != 2 {
			c.Next()
			return
		}
		body, err := a.readBody(c)
		if err != nil {
			v.fail(c, err)
			c.Abort()
			return
		}
		// A cheap look first: a body that does not even contain the word
		// is synchronous and is parsed once, by the synchronous handler
		// (which also reports malformed bodies).
		if !containsFold(body, "operationmode") {
			restoreBody(c, body)
			c.Next()
			return
		}
		f, err := parseFields(body)
		if err != nil {
			restoreBody(c, body)
			c.Next()
			return
		}
		mode, async, err := asyncParams(f)
		if err == nil && mode != "A" {
			restoreBody(c, body)
			c.Next()
			return
		}
		c.Abort()
		if err != nil {
			v.fail(c, err)
			return
		}
		rest, err := f.without(asyncMembers...)
		if err != nil {
			v.fail(c, err)
			return
		}
		req, err := decodeSignHash(v.d, rest, a.opts.MaxHashes)
		if err != nil {
			a.metrics.signatures(v.d, "invalid", "rejected", 0)
			v.fail(c, err)
			return
		}
		p := principal(c)
		if req.SAD, err = a.resolveSAD(p, req.CredentialID, req.SAD); err != nil {
			v.fail(c, err)
			return
		}
		if err := v.checkKey(c, p, req); err != nil {
			v.fail(c, err)
			return
		}
		id, err := a.opts.Async.SubmitHashes(c.Request.Context(), p, jobs.HashJob{CredentialID: req.CredentialID, SAD: req.SAD,
			Hashes: req.Hashes, Opts: req.Scheme.Opts, Async: async})
		if err != nil {
			a.metrics.signatures(v.d, req.Scheme.Label, outcome(err), len(req.Hashes))
			v.fail(c, err)
			return
		}
		a.metrics.signatures(v.d, req.Scheme.Label, "accepted", len(req.Hashes))
		c.JSON(http.StatusOK, responseIDResponse{ResponseID: id})
	}
}

// checkKey is sign's check that the scheme fits the credential's key.
func (v *version) checkKey(c *gin.Context, p *sam.Principal, req *signHashReq) error {
	kf, ok := v.a.keys.get(p.UserID, req.CredentialID)
	if !ok {
		ci, err := v.a.svc.Credential(c.Request.Context(), p, req.CredentialID)
		if err != nil {
			return err
		}
		kf = keyFacts{algo: ci.KeyAlgo, bits: ci.KeyLen}
		v.a.keys.put(p.UserID, req.CredentialID, ci.KeyAlgo, ci.KeyLen)
	}
	return req.Scheme.checkKey(kf.algo, kf.bits)
}

// asyncDoc is the operationMode "A" front of v2 signatures/signDoc. It
// accepts documents up to the runner's MaxDocumentBytes.
func (a *API) asyncDoc(c *gin.Context) {
	v := &version{a: a, d: dialectV2}
	if a.opts.Async == nil {
		c.Next()
		return
	}
	body, err := readSignDocBody(c, a.opts.Async.MaxDocumentBytes())
	if err != nil {
		c.Abort()
		v.fail(c, err)
		return
	}
	// Cheap look at the mode first: no copy of the documents for "S".
	var probe struct {
		OperationMode *string `json:"operationMode"`
	}
	if json.Unmarshal(body, &probe) != nil || probe.OperationMode == nil || *probe.OperationMode != "A" {
		restoreBody(c, body)
		c.Next()
		return
	}
	c.Abort()
	f, err := parseFields(body)
	if err != nil {
		v.fail(c, err)
		return
	}
	body = nil
	_, async, err := asyncParams(f)
	if err != nil {
		v.fail(c, err)
		return
	}
	var names []string
	if raw, ok := f.get("documents"); ok {
		var entries []struct {
			Name string `json:"documentName"`
		}
		if json.Unmarshal(raw, &entries) == nil {
			for _, e := range entries {
				names = append(names, e.Name)
			}
		}
	}
	rest, err := f.without(asyncMembers...)
	f = nil
	if err != nil {
		v.fail(c, err)
		return
	}
	req, p, ok := a.signDocRequest(c, v, rest)
	rest = nil
	if !ok {
		return
	}
	n := req.count()
	id, err := a.opts.Async.SubmitDocuments(c.Request.Context(), p, jobs.DocJob{Request: req.Request, Names: names, Async: async})
	if err != nil {
		a.metrics.signatures(v.d, "signdoc", outcome(err), n)
		v.fail(c, err)
		return
	}
	a.metrics.signatures(v.d, "signdoc", "accepted", n)
	c.JSON(http.StatusOK, responseIDResponse{ResponseID: id})
}

// pendingResponse is signPolling's 202 body: the CSC error shape plus
// progress.
type pendingResponse struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Done        int    `json:"done"`
	Failed      int    `json:"failed"`
	Total       int    `json:"total"`
}

// itemResultJSON is one item's outcome in signPolling's answer (an
// extension: CSC has no per-document error). Index is the item's position
// in the request.
type itemResultJSON struct {
	Index       int    `json:"index"`
	Status      string `json:"status"`
	Error       string `json:"error,omitempty"`
	Description string `json:"error_description,omitempty"`
}

// pollingResponse is signPolling's 200 body. A failed item keeps its
// place in signatures / DocumentWithSignature / SignatureObject as "".
type pollingResponse struct {
	Signatures            []string         `json:"signatures,omitempty"`
	DocumentWithSignature []string         `json:"DocumentWithSignature,omitempty"`
	SignatureObject       []string         `json:"SignatureObject,omitempty"`
	Results               []itemResultJSON `json:"results"`
}

// signPolling serves v2 signatures/signPolling.
func (a *API) signPolling(c *gin.Context) {
	v := &version{a: a, d: dialectV2}
	body, err := a.readBody(c)
	if err != nil {
		v.fail(c, err)
		return
	}
	f, err := parseRequest(body)
	if err != nil {
		v.fail(c, err)
		return
	}
	id, err := f.str("requestID", true)
	if err != nil {
		v.fail(c, err)
		return
	}
	st, err := a.opts.Async.Poll(c.Request.Context(), principal(c), id)
	if err != nil {
		v.fail(c, err)
		return
	}
	if st.Pending {
		c.JSON(http.StatusAccepted, pendingResponse{Error: "accepted_request", Description: "The request is still being processed",
			Done: st.Done, Failed: st.Failed, Total: st.Total})
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, renderPolling(st))
}

func renderPolling(st *jobs.Status) pollingResponse {
	out := pollingResponse{Results: make([]itemResultJSON, len(st.Items))}
	if st.Kind == jobs.KindHash {
		out.Signatures = make([]string, len(st.Items))
	}
	for i, it := range st.Items {
		r := itemResultJSON{Index: i, Status: "signed"}
		s := ""
		if it.Signature == nil {
			r.Status, r.Error, r.Description = "failed", it.Error, it.Description
		} else {
			s = base64.StdEncoding.EncodeToString(it.Signature)
		}
		out.Results[i] = r
		switch {
		case st.Kind == jobs.KindHash:
			out.Signatures[i] = s
		case it.Document:
			out.DocumentWithSignature = append(out.DocumentWithSignature, s)
		default:
			out.SignatureObject = append(out.SignatureObject, s)
		}
	}
	return out
}

// signDocChain is the handler chain of v2 signatures/signDoc: the
// Idempotency-Key front, the asynchronous front, then sync (the
// synchronous handler, or notImplemented while signDoc is not mounted).
func (a *API) signDocChain(sync gin.HandlerFunc) []gin.HandlerFunc {
	limit := func() int64 {
		if a.opts.Async != nil {
			return signDocBodyLimit(a.opts.Async.MaxDocumentBytes())
		}
		return a.opts.MaxBody
	}
	return []gin.HandlerFunc{a.idempotent("signDoc", limit), a.asyncDoc, sync}
}
