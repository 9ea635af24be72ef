package csc

import (
	"encoding/base64"
	"errors"
	"net/http"
	"sort"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/internal/httpx"
	"github.com/sigillo/sigillo/sam"
)

// version binds the API to one dialect; its methods are the gin handlers.
// Each decodes, validates, calls one Service method (signHash also reads
// the credential to match signAlgo to the key) and encodes.
type version struct {
	a *API
	d *dialect
}

// fail renders err, first translating sam's errors to this version's
// vocabulary.
func (v *version) fail(c *gin.Context, err error) {
	httpx.WriteError(c, v.a.log, httpx.CSC, v.recode(err))
}

// recode adapts sam's error codes and messages to the API version: v2 has
// invalid_authentication_data and "Credential locked"; v1 names the hash
// members hash / hashAlgo.
func (v *version) recode(err error) error {
	if v.d.version == 2 {
		switch {
		case errors.Is(err, sam.ErrInvalidPIN), errors.Is(err, sam.ErrInvalidOTP):
			e, _ := errs.As(err)
			return &errs.Error{Kind: errs.Invalid, Code: "invalid_authentication_data", Msg: e.Msg, Err: err}
		case errors.Is(err, sam.ErrPINLocked):
			return &errs.Error{Kind: errs.Invalid, Msg: "Credential locked", Err: err}
		}
		return err
	}
	switch {
	case errors.Is(err, sam.ErrHashesRequired):
		return &errs.Error{Kind: errs.Invalid, Msg: "Missing (or invalid type) array parameter hash", Err: err}
	case errors.Is(err, sam.ErrHashAlgo):
		return &errs.Error{Kind: errs.Invalid, Msg: "Invalid parameter hashAlgo", Err: err}
	}
	return err
}

// infoV2Response is the v2 info body.
type infoV2Response struct {
	Specs                     string           `json:"specs"`
	Name                      string           `json:"name"`
	Logo                      string           `json:"logo,omitempty"`
	Region                    string           `json:"region"`
	Lang                      string           `json:"lang"`
	Description               string           `json:"description"`
	AuthType                  []string         `json:"authType"`
	OAuth2                    string           `json:"oauth2,omitempty"`
	Methods                   []string         `json:"methods"`
	ValidationInfo            bool             `json:"validationInfo"`
	AsynchronousOperationMode bool             `json:"asynchronousOperationMode"`
	SignAlgorithms            signAlgorithms   `json:"signAlgorithms"`
	SignatureFormats          signatureFormats `json:"signature_formats"`
	ConformanceLevels         []string         `json:"conformance_levels"`
}

type signAlgorithms struct {
	Algos []string `json:"algos"`
}

// signatureFormats is empty until signDoc exists: we advertise only what
// is implemented.
type signatureFormats struct {
	Formats            []string   `json:"formats"`
	EnvelopeProperties [][]string `json:"envelope_properties"`
}

// infoV1Response is the v1 info body.
type infoV1Response struct {
	Specs       string   `json:"specs"`
	Name        string   `json:"name"`
	Logo        string   `json:"logo,omitempty"`
	Region      string   `json:"region"`
	Lang        string   `json:"lang"`
	Description string   `json:"description"`
	AuthType    []string `json:"authType"`
	Methods     []string `json:"methods"`
}

// authTypes are the service authorization methods we offer (oauth2 later).
var authTypes = []string{"basic"}

// authTypesV2 adds OAuth2 when the authorization server is mounted (it
// serves v2 only: v1's credential token would be of token_type "SAD").
func (a *API) authTypesV2() []string {
	if a.opts.OAuth2URL == "" {
		return authTypes
	}
	return append(append([]string(nil), authTypes...), "oauth2code", "oauth2client")
}

func (v *version) info(c *gin.Context) {
	// GET has no body; POST may carry {lang}, which we accept and ignore
	// (one language), but a body that is not JSON is still an error.
	if c.Request.Method == http.MethodPost {
		body, err := v.a.readBody(c)
		if err == nil {
			_, err = parseRequest(body)
		}
		if err != nil {
			v.fail(c, err)
			return
		}
	}
	o := v.a.opts
	if v.d.version == 1 {
		c.JSON(http.StatusOK, infoV1Response{
			Specs: "1.0.4.0", Name: o.Name, Logo: o.Logo, Region: o.Region, Lang: o.Lang,
			Description: o.Description, AuthType: authTypes, Methods: v.a.methods(v.d),
		})
		return
	}
	resp := infoV2Response{
		Specs: "2.0.0.2", Name: o.Name, Logo: o.Logo, Region: o.Region, Lang: o.Lang,
		Description: o.Description, AuthType: v.a.authTypesV2(), OAuth2: o.OAuth2URL, Methods: v.a.methods(v.d), AsynchronousOperationMode: o.Async != nil,
		SignAlgorithms:    signAlgorithms{Algos: advertisedAlgos},
		SignatureFormats:  signatureFormats{Formats: []string{}, EnvelopeProperties: [][]string{}},
		ConformanceLevels: []string{},
	}
	if o.SignDoc != nil {
		resp.SignatureFormats, resp.ConformanceLevels, resp.ValidationInfo = signDocFormats, signDocLevels, true
	}
	c.JSON(http.StatusOK, resp)
}

// loginResponse is auth/login's body.
type loginResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	ExpiresIn    int    `json:"expires_in,omitempty"`
}

// errMalformedAuth is CSC's answer to a missing or unreadable Basic header.
var errMalformedAuth = errs.New(errs.Unauthenticated, "invalid_request", "Malformed authentication parameter.")

func (v *version) login(c *gin.Context) {
	req, ok := decodeBody(v, c, decodeLogin)
	if !ok {
		return
	}
	var (
		t   *sam.Tokens
		err error
	)
	if req.RefreshToken != "" {
		// The refresh token replaces the Basic header (CSC §11.2).
		t, err = v.a.svc.Refresh(c.Request.Context(), req.RefreshToken)
	} else {
		user, pass, ok := c.Request.BasicAuth()
		if !ok || user == "" {
			c.Header("WWW-Authenticate", `Basic realm="sigillo"`)
			v.fail(c, errMalformedAuth)
			return
		}
		t, err = v.a.svc.Login(c.Request.Context(), user, pass, req.RememberMe)
	}
	if err != nil {
		v.fail(c, err)
		return
	}
	resp := loginResponse{AccessToken: t.AccessToken, ExpiresIn: t.ExpiresIn}
	if req.RememberMe || req.RefreshToken != "" {
		resp.RefreshToken = t.RefreshToken
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, resp)
}

func (v *version) revoke(c *gin.Context) {
	req, ok := decodeBody(v, c, decodeRevoke)
	if !ok {
		return
	}
	if err := v.a.svc.RevokeToken(c.Request.Context(), principal(c), req.Token, req.Hint); err != nil {
		v.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// listV2Response is v2 credentials/list's body.
type listV2Response struct {
	CredentialIDs   []string      `json:"credentialIDs"`
	CredentialInfos []*credInfoV2 `json:"credentialInfos,omitempty"`
	OnlyValid       bool          `json:"onlyValid,omitempty"`
}

// listV1Response is v1 credentials/list's body.
type listV1Response struct {
	CredentialIDs []string `json:"credentialIDs"`
	NextPageToken string   `json:"nextPageToken,omitempty"`
}

func (v *version) list(c *gin.Context) {
	req, ok := decodeBody(v, c, func(b []byte) (*listReq, error) { return decodeList(v.d, b) })
	if !ok {
		return
	}
	creds, err := v.listCredentials(c)
	if err != nil {
		v.fail(c, err)
		return
	}
	if v.d.version == 1 {
		resp, err := pageV1(creds, req)
		if err != nil {
			v.fail(c, err)
			return
		}
		c.JSON(http.StatusOK, resp)
		return
	}
	resp := listV2Response{CredentialIDs: []string{}, OnlyValid: req.OnlyValid}
	for i := range creds {
		ci := &creds[i]
		if req.OnlyValid && !usable(ci) {
			continue
		}
		resp.CredentialIDs = append(resp.CredentialIDs, ci.ID)
		if req.CredentialInfo {
			out := renderV2(ci, infoReq{Certificates: req.Certificates, CertInfo: req.CertInfo, AuthInfo: req.AuthInfo}, v.a.opts.Lang)
			out.CredentialID = ci.ID
			resp.CredentialInfos = append(resp.CredentialInfos, out)
		}
	}
	if req.CredentialInfo && resp.CredentialInfos == nil {
		resp.CredentialInfos = []*credInfoV2{}
	}
	c.JSON(http.StatusOK, resp)
}

// usable is onlyValid's test: the key is enabled and the certificate valid.
func usable(ci *sam.CredentialInfo) bool {
	return ci.KeyStatus == "enabled" && ci.CertStatus == "valid"
}

// pageV1 applies v1 pagination. Credentials are ordered by ID so that a
// page token (the last ID returned) stays meaningful while credentials are
// added or removed between calls.
func pageV1(creds []sam.CredentialInfo, req *listReq) (*listV1Response, error) {
	ids := make([]string, len(creds))
	for i := range creds {
		ids[i] = creds[i].ID
	}
	sort.Strings(ids)
	if req.PageToken != "" {
		after, err := decodePageToken(req.PageToken)
		if err != nil {
			return nil, err
		}
		ids = ids[sort.Search(len(ids), func(i int) bool { return ids[i] > after }):]
	}
	resp := &listV1Response{CredentialIDs: ids}
	if req.MaxResults > 0 && len(ids) > req.MaxResults {
		resp.CredentialIDs = ids[:req.MaxResults]
		resp.NextPageToken = encodePageToken(ids[req.MaxResults-1])
	}
	return resp, nil
}

func (v *version) credInfo(c *gin.Context) {
	req, ok := decodeBody(v, c, decodeInfo)
	if !ok {
		return
	}
	ci, err := v.a.svc.Credential(c.Request.Context(), principal(c), req.CredentialID)
	if err != nil {
		v.fail(c, err)
		return
	}
	if v.d.version == 1 {
		c.JSON(http.StatusOK, renderV1(ci, *req, v.a.opts))
		return
	}
	c.JSON(http.StatusOK, renderV2(ci, *req, v.a.opts.Lang))
}

// sadResponse is credentials/authorize's and extendTransaction's body.
type sadResponse struct {
	SAD       string `json:"SAD"`
	ExpiresIn int    `json:"expiresIn,omitempty"`
}

func (v *version) authorize(c *gin.Context) {
	req, ok := decodeBody(v, c, func(b []byte) (*authorizeReq, error) { return decodeAuthorize(v.d, b, v.a.opts.MaxHashes) })
	if !ok {
		return
	}
	sad, err := v.a.svc.Authorize(c.Request.Context(), principal(c), sam.AuthorizeRequest{
		CredentialID: req.CredentialID, NumSignatures: req.NumSignatures,
		Hashes: req.Hashes, HashAlgo: req.Hash,
		PIN: req.PIN, OTP: req.OTP, Description: req.Description,
	})
	if err != nil {
		v.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, sadResponse{SAD: sad.Value, ExpiresIn: sad.ExpiresIn})
}

func (v *version) extend(c *gin.Context) {
	req, ok := decodeBody(v, c, func(b []byte) (*extendReq, error) { return decodeExtend(v.d, b, v.a.opts.MaxHashes) })
	if !ok {
		return
	}
	sad, err := v.a.svc.ExtendTransaction(c.Request.Context(), principal(c), req.CredentialID, req.SAD, req.Hashes, req.Hash)
	if err != nil {
		v.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, sadResponse{SAD: sad.Value, ExpiresIn: sad.ExpiresIn})
}

// sendOTP serves v1 credentials/sendOTP and v2 credentials/getChallenge:
// the OTP goes out of band (SMS), so the answer is 204.
func (v *version) sendOTP(c *gin.Context) {
	id, ok := decodeBody(v, c, func(b []byte) (string, error) { return decodeChallenge(v.d, b) })
	if !ok {
		return
	}
	if err := v.a.svc.SendOTP(c.Request.Context(), principal(c), id); err != nil {
		v.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// signaturesResponse is signHash's body.
type signaturesResponse struct {
	Signatures []string `json:"signatures"`
}

// resolveSAD returns the SAD a signing request goes with: its own when
// it has one, otherwise the credential-scope token's (CSC v2 §8: such a
// token authorizes signing on its credential and the SAD may be omitted;
// the OAuth credential token is itself a SAD bound to one credential, see
// sam/oauth.go). With neither, the request is invalid.
func (a *API) resolveSAD(p *sam.Principal, credentialID, sad string) (string, error) {
	if sad != "" {
		return sad, nil
	}
	if p == nil || p.Scope != sam.ScopeCredential || p.SAD == "" || p.CredentialID != credentialID {
		return "", errs.Invalidf("Missing (or invalid type) string parameter SAD")
	}
	return p.SAD, nil
}

func (v *version) signHash(c *gin.Context) {
	body, err := v.a.readBody(c)
	if err != nil {
		v.fail(c, err)
		return
	}
	req, err := decodeSignHash(v.d, body, v.a.opts.MaxHashes)
	if err != nil {
		v.a.metrics.signatures(v.d, "invalid", "rejected", 0)
		v.fail(c, err)
		return
	}
	p := principal(c)
	if req.SAD, err = v.a.resolveSAD(p, req.CredentialID, req.SAD); err != nil {
		v.a.metrics.signatures(v.d, req.Scheme.Label, "rejected", len(req.Hashes))
		v.fail(c, err)
		return
	}
	sigs, err := v.sign(c, p, req)
	if err != nil {
		v.a.metrics.signatures(v.d, req.Scheme.Label, outcome(err), len(req.Hashes))
		v.fail(c, err)
		return
	}
	v.a.metrics.signatures(v.d, req.Scheme.Label, "success", len(sigs))
	out := signaturesResponse{Signatures: make([]string, len(sigs))}
	for i, s := range sigs {
		out.Signatures[i] = base64.StdEncoding.EncodeToString(s)
	}
	c.JSON(http.StatusOK, out)
}

// sign checks that the scheme fits the credential's key (otherwise an RSA
// key asked for ECDSA would sign PKCS#1 v1.5 under the wrong algorithm
// name, and vice versa) and asks sam for the signatures.
func (v *version) sign(c *gin.Context, p *sam.Principal, req *signHashReq) ([][]byte, error) {
	ctx := c.Request.Context()
	kf, ok := v.a.keys.get(p.UserID, req.CredentialID)
	if !ok {
		ci, err := v.a.svc.Credential(ctx, p, req.CredentialID)
		if err != nil {
			return nil, err
		}
		kf = keyFacts{algo: ci.KeyAlgo, bits: ci.KeyLen}
		v.a.keys.put(p.UserID, req.CredentialID, ci.KeyAlgo, ci.KeyLen)
	}
	if err := req.Scheme.checkKey(kf.algo, kf.bits); err != nil {
		return nil, err
	}
	sigs, err := v.a.svc.SignHash(ctx, p, sam.SignRequest{
		CredentialID: req.CredentialID, SAD: req.SAD, Hashes: req.Hashes, Opts: req.Scheme.Opts,
	})
	if err != nil {
		return nil, err
	}
	if len(sigs) != len(req.Hashes) {
		return nil, errs.New(errs.Internal, "", "signature count differs from hash count")
	}
	return sigs, nil
}

// outcome classifies a failure for the signature counter.
func outcome(err error) string {
	switch errs.KindOf(err) {
	case errs.Invalid, errs.NotFound, errs.Conflict, errs.Forbidden, errs.Unauthenticated, errs.RateLimited:
		return "rejected"
	}
	return "error"
}

// timestampResponse is signatures/timestamp's body.
type timestampResponse struct {
	Timestamp string `json:"timestamp"`
}

func (v *version) timestamp(c *gin.Context) {
	req, ok := decodeBody(v, c, decodeTimestamp)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	var (
		tok []byte
		err error
	)
	if req.Nonce != nil {
		nt, ok := v.a.opts.TSA.(NonceTimestamper)
		if !ok {
			v.fail(c, errs.Invalidf("Invalid parameter nonce"))
			return
		}
		tok, err = nt.TimestampNonce(ctx, req.Hash, req.Algo, req.Nonce)
	} else {
		tok, err = v.a.opts.TSA.Timestamp(ctx, req.Hash, req.Algo)
	}
	if err != nil {
		if _, ok := errs.As(err); !ok {
			err = errs.Wrap(errs.Unavailable, "Timestamp authority unavailable", err)
		}
		v.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, timestampResponse{Timestamp: base64.StdEncoding.EncodeToString(tok)})
}

// decodeBody reads the bounded request body and decodes it; on failure it
// has already answered in the CSC error shape and ok is false. Every
// handler starts here: read, decode, then one call into sam.
func decodeBody[T any](v *version, c *gin.Context, decode func([]byte) (T, error)) (req T, ok bool) {
	body, err := v.a.readBody(c)
	if err == nil {
		req, err = decode(body)
	}
	if err != nil {
		v.fail(c, err)
		return req, false
	}
	return req, true
}
