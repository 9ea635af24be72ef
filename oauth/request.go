package oauth

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/sam"
)

// Limits on what one authorization request may carry.
const (
	maxHashes      = 1000
	maxDescription = 500
	maxState       = 1024
)

// hashByOID are the digest algorithms a client may bind (CSC.md §1).
var hashByOID = map[string]crypto.Hash{
	"2.16.840.1.101.3.4.2.1": crypto.SHA256,
	"2.16.840.1.101.3.4.2.2": crypto.SHA384,
	"2.16.840.1.101.3.4.2.3": crypto.SHA512,
}

// document is one digest the holder sees on the consent page.
type document struct {
	Label string `json:"label,omitempty"`
	Hash  []byte `json:"hash"`
}

// authRequest is a validated authorization request. It is what a PAR row
// or a browser flow stores (JSON), so its fields are exported.
type authRequest struct {
	ClientID string `json:"clientID"`
	// RedirectURI is the effective redirect URI; RedirectGiven says
	// whether the request named it (the token request must then repeat it).
	RedirectURI   string `json:"redirectURI"`
	RedirectGiven bool   `json:"redirectGiven"`
	State         string `json:"state,omitempty"`
	Scope         string `json:"scope"`
	CodeChallenge string `json:"codeChallenge"`
	CredentialID  string `json:"credentialID,omitempty"`
	// SignatureQualifier, when the client named the kind of signature
	// instead of (or as well as) the credential: the holder's credential
	// of that kind is picked once logged in.
	SignatureQualifier string `json:"signatureQualifier,omitempty"`
	NumSignatures      int    `json:"numSignatures,omitempty"`
	// HashOID names the algorithm of the documents' hashes.
	HashOID     string     `json:"hashOID,omitempty"`
	Documents   []document `json:"documents,omitempty"`
	Description string     `json:"description,omitempty"`
	Lang        string     `json:"lang,omitempty"`
	// RAR marks a request that came as authorization_details.
	RAR bool `json:"rar,omitempty"`
}

func (r *authRequest) hashes() [][]byte {
	if len(r.Documents) == 0 {
		return nil
	}
	out := make([][]byte, len(r.Documents))
	for i, d := range r.Documents {
		out[i] = d.Hash
	}
	return out
}

func (r *authRequest) hashAlgo() crypto.Hash { return hashByOID[r.HashOID] }

// codeRequest is what IssueCode needs from the request.
func (r *authRequest) codeRequest(pin, otp string) sam.CodeRequest {
	cr := sam.CodeRequest{ClientID: r.ClientID, CodeChallenge: r.CodeChallenge, Scope: r.Scope,
		CredentialID: r.CredentialID, NumSignatures: r.NumSignatures, Hashes: r.hashes(), HashAlgo: r.hashAlgo(), PIN: pin, OTP: otp}
	if r.RedirectGiven {
		cr.RedirectURI = r.RedirectURI
	}
	return cr
}

// authError is a refusal of an authorization request. Before the client
// and its redirect URI are known (redirect == false) it is shown on an
// error page; afterwards it goes back to the client (RFC 6749 §4.1.2.1).
type authError struct {
	redirect    bool
	code, desc  string
	status      int
	redirectURI string
	state       string
}

func (e *authError) Error() string { return e.code + ": " + e.desc }

// decodeDigest reads a hash in base64url (CSC's encoding on this
// endpoint) or standard base64, padded or not.
func decodeDigest(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "%") { // encoded twice by the client
		if u, err := url.PathUnescape(s); err == nil {
			s = u
		}
	}
	s = strings.TrimRight(s, "=")
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// rarEntry is one authorization_details entry (type "credential").
type rarEntry struct {
	Type            string          `json:"type"`
	CredentialID    string          `json:"credentialID"`
	HashAlgorithm   string          `json:"hashAlgorithmOID"`
	NumSignatures   json.RawMessage `json:"numSignatures"`
	DocumentDigests []struct {
		Hash  string `json:"hash"`
		Label string `json:"label"`
	} `json:"documentDigests"`
	SignatureQualifier string `json:"signatureQualifier"`
}

// clientLookup is the part of sam parseAuthorize needs.
type clientLookup interface {
	OAuthClient(ctx context.Context, id string) (*sam.OAuthClient, error)
	PrecheckCredential(ctx context.Context, credentialID string, hasHashes bool) error
}

// parseAuthorize validates an authorization request's parameters (from
// authorize's query or form, or a PAR body). cl, when non-nil, is the
// already authenticated client (PAR).
func parseAuthorize(ctx context.Context, svc clientLookup, q url.Values, cl *sam.OAuthClient) (*authRequest, *sam.OAuthClient, error) {
	page := func(desc string) error { return &authError{code: "invalid_request", desc: desc, status: 400} }
	clientID := q.Get("client_id")
	if cl == nil {
		if clientID == "" {
			return nil, nil, page("Missing parameter client_id")
		}
		var err error
		cl, err = svc.OAuthClient(ctx, clientID)
		if err != nil {
			if errs.KindOf(err) == errs.NotFound {
				return nil, nil, &authError{code: "invalid_client", desc: "Unknown client_id", status: 400}
			}
			return nil, nil, err
		}
	} else if clientID != "" && clientID != cl.ID {
		return nil, nil, page("client_id does not match the authenticated client")
	}
	r := &authRequest{ClientID: cl.ID}
	if ru := q.Get("redirect_uri"); ru != "" {
		if !cl.HasRedirectURI(ru) {
			return nil, nil, page("redirect_uri is not registered for this client")
		}
		r.RedirectURI, r.RedirectGiven = ru, true
	} else if len(cl.RedirectURIs) == 1 {
		r.RedirectURI = cl.RedirectURIs[0]
	} else {
		return nil, nil, page("Missing parameter redirect_uri")
	}
	r.State = q.Get("state")
	if len(r.State) > maxState {
		return nil, nil, page("state is too long")
	}
	// From here on errors go back to the client.
	fail := func(code, desc string) (*authRequest, *sam.OAuthClient, error) {
		return nil, cl, &authError{redirect: true, code: code, desc: desc, redirectURI: r.RedirectURI, state: r.State}
	}
	if !cl.Allows(sam.GrantAuthorizationCode) {
		return fail("unauthorized_client", "The client may not use the authorization code grant")
	}
	if rt := q.Get("response_type"); rt != "code" {
		return fail("unsupported_response_type", "response_type must be code")
	}
	switch m := q.Get("code_challenge_method"); {
	case q.Get("code_challenge") == "":
		return fail("invalid_request", "Missing parameter code_challenge (PKCE is required)")
	case m != "S256":
		return fail("invalid_request", "code_challenge_method must be S256")
	}
	r.CodeChallenge = q.Get("code_challenge")
	if len(r.CodeChallenge) != 43 {
		return fail("invalid_request", "Invalid parameter code_challenge")
	}
	if _, err := base64.RawURLEncoding.DecodeString(r.CodeChallenge); err != nil {
		return fail("invalid_request", "Invalid parameter code_challenge")
	}
	scope, details := q.Get("scope"), q.Get("authorization_details")
	switch {
	case details != "" && scope == sam.ScopeCredential:
		return fail("invalid_request", "scope credential and authorization_details must not be combined")
	case details != "":
		r.Scope, r.RAR = sam.ScopeCredential, true
		if scope != "" && scope != sam.ScopeService {
			return fail("invalid_scope", "Invalid parameter scope")
		}
	case scope == "":
		r.Scope = sam.ScopeService
	case scope == sam.ScopeService || scope == sam.ScopeCredential:
		r.Scope = scope
	default:
		return fail("invalid_scope", "Invalid parameter scope")
	}
	if !cl.HasScope(r.Scope) {
		return fail("invalid_scope", "The client may not ask for scope "+r.Scope)
	}
	r.Description, r.Lang = q.Get("description"), q.Get("lang")
	if len(r.Description) > maxDescription {
		return fail("invalid_request", "Invalid parameter description")
	}
	if r.Scope == sam.ScopeCredential {
		var msg string
		if r.RAR {
			msg = r.readRAR(details)
		} else {
			msg = r.readCredentialParams(q)
		}
		if msg != "" {
			return fail("invalid_request", msg)
		}
		if err := svc.PrecheckCredential(ctx, r.CredentialID, len(r.Documents) > 0); err != nil {
			if errors.Is(err, sam.ErrHashesRequired) {
				return fail("invalid_request", "Missing parameter hashes: the credential requires SCAL 2")
			}
			return nil, cl, err
		}
	}
	return r, cl, nil
}

// readCredentialParams reads CSC's credential parameters; it returns the
// error description, or "".
func (r *authRequest) readCredentialParams(q url.Values) string {
	if msg := r.setCredential(q.Get("credentialID"), q.Get("signatureQualifier")); msg != "" {
		return msg
	}
	if v := q.Get("numSignatures"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return "Invalid parameter numSignatures"
		}
		r.NumSignatures = n
	}
	hashes := q.Get("hashes")
	if hashes == "" {
		hashes = q.Get("hash") // v1's name
	}
	if hashes == "" {
		return r.checkCount()
	}
	r.HashOID = q.Get("hashAlgorithmOID")
	h, ok := hashByOID[r.HashOID]
	if !ok {
		return "Invalid parameter hashAlgorithmOID"
	}
	parts := strings.Split(hashes, ",")
	if len(parts) > maxHashes {
		return "Too many hashes"
	}
	for _, p := range parts {
		d, err := decodeDigest(p)
		if err != nil {
			return "Invalid base64url hash in parameter hashes"
		}
		if len(d) != h.Size() {
			return "Invalid digest value length"
		}
		r.Documents = append(r.Documents, document{Hash: d})
	}
	return r.checkCount()
}

// setCredential records the credential and/or signature qualifier the
// request names; at least one is required.
func (r *authRequest) setCredential(id, qualifier string) string {
	if id == "" && qualifier == "" {
		return "Missing parameter credentialID"
	}
	if qualifier != "" && !sam.IsQualifier(qualifier) {
		return "Invalid parameter signatureQualifier"
	}
	r.CredentialID, r.SignatureQualifier = id, qualifier
	return ""
}

func (r *authRequest) checkCount() string {
	if r.NumSignatures == 0 {
		r.NumSignatures = max(len(r.Documents), 1)
	}
	if len(r.Documents) > r.NumSignatures {
		return "Invalid value for parameter numSignatures"
	}
	return ""
}

// readRAR reads authorization_details (RFC 9396) of type "credential".
func (r *authRequest) readRAR(details string) string {
	var entries []rarEntry
	if err := json.Unmarshal([]byte(details), &entries); err != nil || len(entries) != 1 {
		return "Invalid parameter authorization_details: want one entry of type credential"
	}
	e := entries[0]
	if e.Type != "credential" {
		return "Invalid parameter authorization_details: unsupported type"
	}
	if msg := r.setCredential(e.CredentialID, e.SignatureQualifier); msg != "" {
		return msg + " in authorization_details"
	}
	if len(e.NumSignatures) > 0 && string(e.NumSignatures) != "null" {
		s := strings.Trim(string(e.NumSignatures), `"`)
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return "Invalid numSignatures in authorization_details"
		}
		r.NumSignatures = n
	}
	if len(e.DocumentDigests) > 0 {
		h, ok := hashByOID[e.HashAlgorithm]
		if !ok {
			return "Invalid hashAlgorithmOID in authorization_details"
		}
		if len(e.DocumentDigests) > maxHashes {
			return "Too many documentDigests"
		}
		r.HashOID = e.HashAlgorithm
		for _, d := range e.DocumentDigests {
			b, err := decodeDigest(d.Hash)
			if err != nil || len(b) != h.Size() {
				return fmt.Sprintf("Invalid hash in documentDigests (%q)", d.Label)
			}
			if len(d.Label) > 200 {
				return "documentDigests label too long"
			}
			r.Documents = append(r.Documents, document{Label: d.Label, Hash: b})
		}
	}
	return r.checkCount()
}
