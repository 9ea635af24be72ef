package csc

// CSC v2 signatures/signDoc: decoding, validation and rendering. The
// semantics (formats, levels, what the SAD binds) live in package signdoc;
// this file turns the JSON into a signdoc.Request and the result back.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/internal/httpx"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/signdoc"
)

// DocSigner is the signDoc domain; *signdoc.Service implements it.
type DocSigner interface {
	SignDoc(ctx context.Context, p *sam.Principal, r signdoc.Request) (*signdoc.Result, error)
	// MaxDocumentBytes bounds the decoded documents of one request.
	MaxDocumentBytes() int64
}

var _ DocSigner = (*signdoc.Service)(nil)

// signDocFormats and signDocLevels are what info advertises when signDoc
// is mounted (signature_formats, conformance_levels).
var (
	signDocFormats = signatureFormats{
		Formats:            []string{signdoc.FormatCAdES, signdoc.FormatPAdES},
		EnvelopeProperties: [][]string{{signdoc.EnvelopeDetached}, {signdoc.EnvelopeRevision, signdoc.EnvelopeCertification}},
	}
	signDocLevels = []string{"Ades-B-B", "Ades-B-T", "Ades-B-LT", "Ades-B-LTA"}
)

// registerSignDoc mounts signatures/signDoc on g, the authenticated v2
// group.
func (a *API) registerSignDoc(g gin.IRouter, s DocSigner) {
	g.POST("/signatures/signDoc", a.signDoc(s))
}

// signDocBodyOverhead is what a signDoc body may carry besides the Base64
// documents (names, options, SAD, digests).
const signDocBodyOverhead = 4 << 20

// signDocBodyLimit is the largest signDoc body for documents of at most
// maxDoc bytes in total: their Base64 plus the overhead.
func signDocBodyLimit(maxDoc int64) int64 { return maxDoc/3*4 + signDocBodyOverhead }

// readSignDocBody reads a signDoc body bounded by signDocBodyLimit; the
// error for a longer one tells the client the documents' own limit.
func readSignDocBody(c *gin.Context, maxDoc int64) ([]byte, error) {
	return readBounded(c, signDocBodyLimit(maxDoc),
		fmt.Sprintf("documents are limited to %d bytes in total", maxDoc))
}

// signDoc returns the v2 signatures/signDoc handler.
func (a *API) signDoc(s DocSigner) gin.HandlerFunc {
	v := &version{a: a, d: dialectV2}
	return func(c *gin.Context) {
		body, err := readSignDocBody(c, s.MaxDocumentBytes())
		if err != nil {
			v.fail(c, err)
			return
		}
		req, p, ok := a.signDocRequest(c, v, body)
		body = nil
		if !ok {
			return
		}
		n := req.count()
		res, err := s.SignDoc(c.Request.Context(), p, req.Request)
		if err != nil {
			a.metrics.signatures(v.d, "signdoc", outcome(err), n)
			v.fail(c, err)
			return
		}
		failed := 0
		for _, ferr := range res.Failures {
			if ferr != nil {
				failed++
				a.metrics.signatures(v.d, "signdoc", outcome(ferr), 1)
			}
		}
		a.metrics.signatures(v.d, "signdoc", "success", n-failed)
		c.JSON(http.StatusOK, renderSignDoc(v, res))
	}
}

// signDocRequest decodes a signDoc body (without the asynchronous members)
// and resolves its SAD: the step the synchronous and asynchronous handlers
// share. On failure it has answered and reports false.
func (a *API) signDocRequest(c *gin.Context, v *version, body []byte) (*signDocReq, *sam.Principal, bool) {
	req, err := decodeSignDoc(body, a.opts.MaxHashes)
	if err != nil {
		a.metrics.signatures(v.d, "signdoc", "rejected", 0)
		v.fail(c, err)
		return nil, nil, false
	}
	p := principal(c)
	if req.Qualifier != "" {
		if req.CredentialID, err = a.credentialFor(c.Request.Context(), p, req.CredentialID, req.Qualifier); err != nil {
			v.fail(c, err)
			return nil, nil, false
		}
	}
	if req.SAD, err = a.resolveSAD(p, req.CredentialID, req.SAD); err != nil {
		v.fail(c, err)
		return nil, nil, false
	}
	return req, p, true
}

// credentialFor resolves signDoc's signatureQualifier: without a
// credentialID, to the caller's one credential of that kind; with one, the
// credential must be of that kind.
func (a *API) credentialFor(ctx context.Context, p *sam.Principal, credentialID, qualifier string) (string, error) {
	if credentialID == "" {
		ci, err := a.svc.CredentialByQualifier(ctx, p, qualifier)
		if err != nil {
			return "", err
		}
		return ci.ID, nil
	}
	ci, err := a.svc.Credential(ctx, p, credentialID)
	if err != nil {
		return "", err
	}
	if ci.SignatureQualifier != qualifier {
		return "", errs.Invalidf("Invalid parameter signatureQualifier: the credential makes %s signatures", ci.SignatureQualifier)
	}
	return credentialID, nil
}

// signDocReq is the decoded request.
type signDocReq struct {
	signdoc.Request
	// Qualifier is the signatureQualifier the client gave, if any.
	Qualifier string
}

func (r *signDocReq) count() int {
	n := len(r.Documents)
	for _, d := range r.Digests {
		n += len(d.Hashes)
	}
	return n
}

// signDocJSON is the v2 body. Field names match case-insensitively
// (encoding/json), unknown fields are ignored.
type signDocJSON struct {
	CredentialID         *string            `json:"credentialID"`
	SignatureQualifier   *string            `json:"signatureQualifier"`
	SAD                  *string            `json:"SAD"`
	Documents            []signDocEntryJSON `json:"documents"`
	DocumentDigests      []signDocEntryJSON `json:"documentDigests"`
	OperationMode        *string            `json:"operationMode"`
	ReturnValidationInfo json.RawMessage    `json:"returnValidationInfo"`
	ClientData           *string            `json:"clientData"`
}

// signDocEntryJSON is a documents[] or documentDigests[] entry.
type signDocEntryJSON struct {
	Document               *b64Document      `json:"document"`
	Hashes                 []string          `json:"hashes"`
	HashAlgorithmOID       string            `json:"hashAlgorithmOID"`
	SignatureFormat        string            `json:"signature_format"`
	ConformanceLevel       string            `json:"conformance_level"`
	SignAlgo               string            `json:"signAlgo"`
	SignAlgoParams         string            `json:"signAlgoParams"`
	SignedProps            []json.RawMessage `json:"signed_props"`
	SignedEnvelopeProperty string            `json:"signed_envelope_property"`
}

// b64Document decodes a Base64 (or base64url) document straight from the
// JSON bytes, without an intermediate string of the encoded form.
type b64Document []byte

// UnmarshalJSON implements json.Unmarshaler.
func (d *b64Document) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return errs.Invalidf("Missing (or invalid type) string parameter document")
	}
	raw := b[1 : len(b)-1]
	if bytes.IndexByte(raw, '\\') >= 0 { // e.g. "\/" from some encoders
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return errs.Invalidf("Missing (or invalid type) string parameter document")
		}
		raw = []byte(s)
	}
	out, err := decodeB64Bytes(raw)
	if err != nil {
		return errs.Wrap(errs.Invalid, "Invalid Base64 parameter document", err)
	}
	*d = out
	return nil
}

// decodeB64Bytes is decodeB64 over bytes (documents are large).
func decodeB64Bytes(s []byte) ([]byte, error) {
	body := bytes.TrimRight(s, "=")
	pad := len(s) - len(body)
	if pad > 2 || (pad > 0 && len(s)%4 != 0) {
		return nil, fmt.Errorf("bad Base64 padding")
	}
	std, url := false, false
	for _, c := range body {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '+' || c == '/':
			std = true
		case c == '-' || c == '_':
			url = true
		default:
			return nil, fmt.Errorf("bad Base64 character %q", c)
		}
	}
	if std && url {
		return nil, fmt.Errorf("mixed Base64 alphabets")
	}
	enc := base64.RawStdEncoding
	if url {
		enc = base64.RawURLEncoding
	}
	out := make([]byte, enc.DecodedLen(len(body)))
	n, err := enc.Decode(out, body)
	if err != nil {
		return nil, err
	}
	return out[:n], nil
}

// decodeSignDoc validates a signDoc body into a signdoc.Request. Semantic
// checks that need the credential or the documents are signdoc's.
func decodeSignDoc(body []byte, maxHashes int) (*signDocReq, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, errs.Invalidf("Request body must be a JSON object")
	}
	var j signDocJSON
	if err := json.Unmarshal(trimmed, &j); err != nil {
		var e *errs.Error
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &e):
			return nil, e
		case errors.As(err, &ute) && ute.Field != "":
			name := ute.Field
			if i := strings.LastIndexByte(name, '.'); i >= 0 {
				name = name[i+1:]
			}
			return nil, errs.Invalidf("Missing (or invalid type) %s parameter %s", ute.Value, name)
		}
		return nil, errs.Wrap(errs.Invalid, "Malformed JSON request body", err)
	}
	r := &signDocReq{}
	if j.SignatureQualifier != nil {
		r.Qualifier = *j.SignatureQualifier
	}
	if j.CredentialID != nil {
		r.CredentialID = *j.CredentialID
	}
	if r.CredentialID == "" && r.Qualifier == "" {
		return nil, errs.Invalidf("Missing (or invalid type) string parameter credentialID")
	}
	if j.SAD != nil {
		r.SAD = *j.SAD
	}
	if j.OperationMode != nil && *j.OperationMode != "" && *j.OperationMode != "S" {
		return nil, errs.Invalidf("Invalid parameter operationMode")
	}
	if len(j.ReturnValidationInfo) > 0 {
		f := fields{"returnValidationInfo": j.ReturnValidationInfo}
		var err error
		if r.ReturnValidationInfo, err = f.boolean("returnValidationInfo", false); err != nil {
			return nil, err
		}
	}
	switch {
	case len(j.Documents) > 0 && len(j.DocumentDigests) > 0:
		return nil, errs.Invalidf("Only one of documents and documentDigests may be given")
	case len(j.Documents) == 0 && len(j.DocumentDigests) == 0:
		return nil, errs.Invalidf("Missing (or invalid type) array parameter documents or documentDigests")
	}
	if maxHashes <= 0 {
		maxHashes = DefaultMaxHashes
	}
	count := 0
	for i := range j.Documents {
		e := &j.Documents[i]
		if e.Document == nil || len(*e.Document) == 0 {
			return nil, errs.Invalidf("Missing (or invalid type) string parameter document (documents[%d])", i)
		}
		o, err := decodeEntryOptions(e, 0)
		if err != nil {
			return nil, err
		}
		r.Documents = append(r.Documents, signdoc.Document{Content: *e.Document, Options: o})
		e.Document = nil
		if count++; count > maxHashes {
			return nil, errs.Invalidf("Too many documents: at most %d per request", maxHashes)
		}
	}
	for i := range j.DocumentDigests {
		e := &j.DocumentDigests[i]
		if len(e.Hashes) == 0 {
			return nil, errs.Invalidf("Empty hash array")
		}
		if count += len(e.Hashes); count > maxHashes {
			return nil, errs.Invalidf("Too many hashes: at most %d per request", maxHashes)
		}
		hashes := make([][]byte, len(e.Hashes))
		for k, s := range e.Hashes {
			b, err := decodeB64(s)
			if err != nil || len(b) == 0 {
				return nil, errs.Invalidf("Invalid Base64 hash string parameter")
			}
			hashes[k] = b
		}
		implied := crypto.Hash(0)
		if e.HashAlgorithmOID == "" && e.SignAlgo == "" {
			var ok bool
			if implied, ok = hashForLength(len(hashes[0])); !ok {
				return nil, errs.Invalidf("Invalid digest value length")
			}
		}
		o, err := decodeEntryOptions(e, implied)
		if err != nil {
			return nil, err
		}
		if err := checkDigests(hashes, o.Hash); err != nil {
			return nil, err
		}
		r.Digests = append(r.Digests, signdoc.DigestSet{Hashes: hashes, Options: o})
	}
	return r, nil
}

// decodeEntryOptions reads an entry's format, level, envelope property and
// algorithm. implied is the hash to assume when nothing names one (0:
// signdoc's default, SHA-256).
func decodeEntryOptions(e *signDocEntryJSON, implied crypto.Hash) (signdoc.Options, error) {
	var o signdoc.Options
	var err error
	if o.Format, err = signdoc.ParseFormat(e.SignatureFormat); err != nil {
		return o, err
	}
	if o.Level, err = signdoc.ParseLevel(e.ConformanceLevel); err != nil {
		return o, err
	}
	if o.Envelope, err = signdoc.ParseEnvelope(o.Format, e.SignedEnvelopeProperty); err != nil {
		return o, err
	}
	if len(e.SignedProps) > 0 {
		// We would sign attributes other than the ones asked for.
		return o, errs.Invalidf("Invalid parameter signed_props: extra signed attributes are not supported")
	}
	o.Hash = implied
	if e.HashAlgorithmOID != "" {
		h, ok := hashByOID[e.HashAlgorithmOID]
		if !ok {
			return o, errs.Invalidf("Invalid parameter hashAlgorithmOID")
		}
		o.Hash = h
	}
	if e.SignAlgo == "" {
		if e.SignAlgoParams != "" {
			return o, errs.Invalidf("Missing (or invalid type) string parameter signAlgo")
		}
		return o, nil
	}
	hashOID := e.HashAlgorithmOID
	if def, ok := signAlgoDefs[e.SignAlgo]; ok && hashOID == "" && def.hash == 0 && !def.pss {
		// rsaEncryption without a hash OID: signdoc's default hash.
		h := implied
		if h == 0 {
			h = crypto.SHA256
		}
		hashOID = hashOIDOf(h)
	}
	sc, err := resolveScheme(e.SignAlgo, hashOID, e.SignAlgoParams, "hashAlgorithmOID")
	if err != nil {
		return o, err
	}
	o.Hash = sc.Hash
	if pss, ok := sc.Opts.(*rsa.PSSOptions); ok {
		// Our CMS carries PSS with salt = hash length (RFC 4055 usage).
		if pss.SaltLength != sc.Hash.Size() {
			return o, errs.Invalidf("Invalid parameter signAlgoParams: the salt length must equal the hash length")
		}
		o.PSS = true
	}
	switch sc.Key {
	case keyRSA:
		o.KeyType = "rsa"
	case keyEC:
		o.KeyType = "ec"
	}
	return o, nil
}

// signDocResponse is the v2 signDoc body (spec casing, CSC.md §4).
type signDocResponse struct {
	DocumentWithSignature []string            `json:"DocumentWithSignature,omitempty"`
	SignatureObject       []string            `json:"SignatureObject,omitempty"`
	ValidationInfo        *validationInfoJSON `json:"validationInfo,omitempty"`
	// Results is there only when some item failed alone (an extension, as
	// in signPolling's answer): one entry per item in request order
	// (documents, then each hash of documentDigests); a failed item's
	// slot above is "".
	Results []itemResultJSON `json:"results,omitempty"`
}

type validationInfoJSON struct {
	OCSP         []string `json:"ocsp"`
	CRL          []string `json:"crl"`
	Certificates []string `json:"certificates"`
}

func renderSignDoc(v *version, res *signdoc.Result) signDocResponse {
	b64 := func(in [][]byte) []string {
		out := make([]string, len(in))
		for i, b := range in {
			out[i] = base64.StdEncoding.EncodeToString(b)
		}
		return out
	}
	var out signDocResponse
	if len(res.Documents) > 0 {
		out.DocumentWithSignature = b64(res.Documents)
	}
	if len(res.Signatures) > 0 {
		out.SignatureObject = b64(res.Signatures)
	}
	if vi := res.ValidationInfo; vi != nil {
		out.ValidationInfo = &validationInfoJSON{OCSP: b64(vi.OCSP), CRL: b64(vi.CRL), Certificates: b64(vi.Certificates)}
	}
	if res.Failures != nil {
		out.Results = make([]itemResultJSON, len(res.Failures))
		for i, ferr := range res.Failures {
			out.Results[i] = itemResultJSON{Index: i, Status: "signed"}
			if ferr != nil {
				_, body := httpx.Status(v.recode(ferr), httpx.CSC)
				out.Results[i] = itemResultJSON{Index: i, Status: "failed", Error: body.Error, Description: body.Description}
			}
		}
	}
	return out
}
