package csc

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/signdoc"
	"github.com/sigillo/sigillo/signdoc/signdoctest"
)

// signDocServer is the CSC API with signDoc over the real parts
// (SoftHSM2, SQLite, the CA with its live OCSP/TSA endpoints) on a real
// HTTP server. Register still mounts signDoc as 501, so signDoc lives on a
// second engine in front of it, exactly as registerSignDoc mounts it.
type signDocServer struct {
	t     *testing.T
	env   *signdoctest.Env
	url   string
	token string
}

func newSignDocServer(t *testing.T, user string) *signDocServer {
	t.Helper()
	env := signdoctest.New(t, nil)
	api := New(env.Sam, Options{TSA: env.Authority})
	main := gin.New()
	api.Register(main)
	sd := gin.New()
	api.registerSignDoc(sd.Group("/csc/v2", api.authenticate), env.SignDoc)
	mux := http.NewServeMux()
	mux.Handle("/csc/v2/signatures/signDoc", sd)
	mux.Handle("/", main)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s := &signDocServer{t: t, env: env, url: srv.URL}
	env.User(t, user)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/csc/v2/auth/login", strings.NewReader("{}"))
	req.SetBasicAuth(user, signdoctest.Password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("login: %d %v", resp.StatusCode, err)
	}
	s.token = tok.AccessToken
	return s
}

// post sends body (marshalled unless it is a string) and returns the
// status and the raw answer.
func (s *signDocServer) post(path string, body any) (int, []byte) {
	s.t.Helper()
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	default:
		b, _ = json.Marshal(v)
	}
	req, _ := http.NewRequest(http.MethodPost, s.url+"/csc/v2/"+path, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// authorize returns a SAD for the credential bound to hashes (SHA-256
// unless oid says otherwise).
func (s *signDocServer) authorize(cred string, n int, oid string, hashes ...[]byte) string {
	s.t.Helper()
	body := map[string]any{"credentialID": cred, "numSignatures": n, "authData": []map[string]string{{"id": "PIN", "value": signdoctest.PIN}}}
	if len(hashes) > 0 {
		var hs []string
		for _, h := range hashes {
			hs = append(hs, base64.StdEncoding.EncodeToString(h))
		}
		body["hashes"], body["hashAlgorithmOID"] = hs, oid
	}
	st, out := s.post("credentials/authorize", body)
	if st != http.StatusOK {
		s.t.Fatalf("authorize: %d %s", st, out)
	}
	var r struct{ SAD string }
	json.Unmarshal(out, &r)
	return r.SAD
}

func sdB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
func sdSum(b []byte) []byte { d := sha256.Sum256(b); return d[:] }

type signDocAnswer struct {
	DocumentWithSignature []string
	SignatureObject       []string
	ValidationInfo        *struct{ OCSP, CRL, Certificates []string } `json:"validationInfo"`
	Error                 string                                      `json:"error"`
	Description           string                                      `json:"error_description"`
	Results               []struct {
		Index       int    `json:"index"`
		Status      string `json:"status"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	} `json:"results"`
}

func sdAnswer(t *testing.T, out []byte) signDocAnswer {
	t.Helper()
	var a signDocAnswer
	if err := json.Unmarshal(out, &a); err != nil {
		t.Fatalf("answer is not JSON: %.200q", out)
	}
	return a
}

func sdUnB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSignDocHTTP signs, in one signDoc call, four PDFs at B-B, B-T, B-LT
// and B-LTA with a SCAL 2 SAD bound to their SHA-256, then CAdES detached
// signatures over digests, and validates every result independently.
func TestSignDocHTTP(t *testing.T) {
	s := newSignDocServer(t, "signdoc-http")
	v := signdoctest.NewValidators(t, s.env.Authority.Root(), s.env.Authority.Issuer())
	ec := s.env.Credential(t, "signdoc-http", sam.NewCredential{SCAL: 2, Multisign: 20})
	rsaCred := s.env.Credential(t, "signdoc-http", sam.NewCredential{SCAL: 2, Multisign: 20, KeyAlgo: "rsa-2048"})

	t.Run("PAdES_all_levels_one_call", func(t *testing.T) {
		levels := []string{"Ades-B-B", "AdES-B-T", "ades-b-lt", "Ades-B-LTA"}
		wants := []signdoctest.PDFWant{
			{Sigs: 1},
			{Sigs: 1, SignatureTimestamps: 1},
			{Sigs: 1, SignatureTimestamps: 1, DSS: true, TrailingUpdate: true},
			{Sigs: 1, SignatureTimestamps: 1, DSS: true, DTS: 1},
		}
		var docs [][]byte
		var entries []map[string]any
		for i, l := range levels {
			d := signdoctest.MakePDF(1+i, 1000*i, "http "+l)
			docs = append(docs, d)
			entries = append(entries, map[string]any{"document": sdB64(d), "signature_format": "P", "conformance_level": l,
				"signAlgo": "1.2.840.10045.4.3.2"})
		}
		sad := s.authorize(ec.CredentialID, 4, "2.16.840.1.101.3.4.2.1", sdSum(docs[0]), sdSum(docs[1]), sdSum(docs[2]), sdSum(docs[3]))
		st, out := s.post("signatures/signDoc", map[string]any{"credentialID": ec.CredentialID, "SAD": sad,
			"documents": entries, "returnValidationInfo": true})
		if st != http.StatusOK {
			t.Fatalf("signDoc: %d %.500s", st, out)
		}
		a := sdAnswer(t, out)
		if a.Results != nil || strings.Contains(string(out), `"results"`) {
			t.Fatal("a results member although every document was signed (plain CSC answer expected)")
		}
		if len(a.DocumentWithSignature) != 4 || len(a.SignatureObject) != 0 {
			t.Fatalf("got %d documents, %d signature objects", len(a.DocumentWithSignature), len(a.SignatureObject))
		}
		for i, enc := range a.DocumentWithSignature {
			pdf := sdUnB64(t, enc)
			if !strings.HasPrefix(string(pdf), string(docs[i])) {
				t.Fatalf("document %d is not an update of input %d", i, i)
			}
			v.CheckPDF(t, "http-"+levels[i], pdf, wants[i])
		}
		if a.ValidationInfo == nil || len(a.ValidationInfo.OCSP) == 0 || len(a.ValidationInfo.CRL) == 0 || len(a.ValidationInfo.Certificates) < 4 {
			t.Fatalf("validationInfo: %+v", a.ValidationInfo)
		}
		// The SAD is spent.
		st, out = s.post("signatures/signDoc", map[string]any{"credentialID": ec.CredentialID, "SAD": sad,
			"documents": []map[string]any{{"document": sdB64(docs[0]), "signature_format": "P"}}})
		if st != http.StatusBadRequest {
			t.Fatalf("reused SAD: %d %s", st, out)
		}
	})

	t.Run("CAdES_detached_digests", func(t *testing.T) {
		contents := [][]byte{[]byte("first content\n"), []byte("second content\n")}
		var hashes [][]byte
		var hs []string
		for _, c := range contents {
			d := sha512.Sum512(c)
			hashes = append(hashes, d[:])
			hs = append(hs, base64.RawURLEncoding.EncodeToString(d[:])) // base64url is accepted too
		}
		sad := s.authorize(rsaCred.CredentialID, 2, "2.16.840.1.101.3.4.2.3", hashes...)
		st, out := s.post("signatures/signDoc", map[string]any{"credentialID": rsaCred.CredentialID, "SAD": sad,
			"documentDigests": []map[string]any{{"hashes": hs, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.3", "signature_format": "C",
				"conformance_level": "Ades-B-T", "signed_envelope_property": "Detached", "signAlgo": "1.2.840.113549.1.1.13"}}})
		if st != http.StatusOK {
			t.Fatalf("signDoc: %d %.500s", st, out)
		}
		a := sdAnswer(t, out)
		if len(a.SignatureObject) != 2 {
			t.Fatalf("got %d signature objects", len(a.SignatureObject))
		}
		for i, so := range a.SignatureObject {
			if !v.CheckCAdES(t, "http-cades", sdUnB64(t, so), contents[i]) {
				t.Errorf("signature %d: no signature-time-stamp at B-T", i)
			}
		}
	})

	t.Run("one_bad_document_fails_alone", func(t *testing.T) {
		good1, good2 := signdoctest.MakePDF(1, 0, "batch one"), signdoctest.MakePDF(1, 0, "batch two")
		bad := []byte("%PDF-1.7 not really")
		sad := s.authorize(ec.CredentialID, 3, "2.16.840.1.101.3.4.2.1", sdSum(good1), sdSum(bad), sdSum(good2))
		var entries []map[string]any
		for _, d := range [][]byte{good1, bad, good2} {
			entries = append(entries, map[string]any{"document": sdB64(d), "signature_format": "P", "signAlgo": "1.2.840.10045.4.3.2"})
		}
		st, out := s.post("signatures/signDoc", map[string]any{"credentialID": ec.CredentialID, "SAD": sad, "documents": entries})
		if st != http.StatusOK {
			t.Fatalf("signDoc: %d %.500s", st, out)
		}
		a := sdAnswer(t, out)
		if len(a.DocumentWithSignature) != 3 || a.DocumentWithSignature[1] != "" || len(a.Results) != 3 {
			t.Fatalf("answer: %d documents (second %q), results %+v", len(a.DocumentWithSignature), a.DocumentWithSignature[1], a.Results)
		}
		r := a.Results
		if r[0].Status != "signed" || r[2].Status != "signed" || r[1].Status != "failed" || r[1].Index != 1 ||
			r[1].Error != "invalid_request" || !strings.Contains(r[1].Description, "not a PDF") {
			t.Fatalf("results %+v", r)
		}
		for _, i := range []int{0, 2} {
			v.CheckPDF(t, fmt.Sprint("http-partial-", i), sdUnB64(t, a.DocumentWithSignature[i]), signdoctest.PDFWant{Sigs: 1})
		}
	})

	t.Run("SCAL2_other_document_refused", func(t *testing.T) {
		approved, other := signdoctest.MakePDF(1, 0, "approved"), signdoctest.MakePDF(1, 0, "swapped")
		sad := s.authorize(ec.CredentialID, 1, "2.16.840.1.101.3.4.2.1", sdSum(approved))
		before := s.env.Audit.Count("signature.sign", "success")
		st, out := s.post("signatures/signDoc", map[string]any{"credentialID": ec.CredentialID, "SAD": sad,
			"documents": []map[string]any{{"document": sdB64(other), "signature_format": "P"}}})
		a := sdAnswer(t, out)
		if st != http.StatusBadRequest || a.Error != "invalid_request" || a.Description != "Hash is not authorized by the SAD" {
			t.Fatalf("other document: %d %s", st, out)
		}
		if s.env.Audit.Count("signature.sign", "success") != before {
			t.Fatal("signed anyway")
		}
		st, out = s.post("signatures/signDoc", map[string]any{"credentialID": ec.CredentialID, "SAD": sad,
			"documents": []map[string]any{{"document": sdB64(approved), "signature_format": "P"}}})
		if st != http.StatusOK {
			t.Fatalf("approved document after a refusal: %d %.300s", st, out)
		}
	})
}

// TestSignDocHTTP_badInput: every malformed request is 400 invalid_request
// with a clear message, nothing is signed and the SAD stays whole.
// TestSignDocHTTP_signatureQualifier: credentials/info names each
// credential's kind of signature; signDoc with a signatureQualifier and no
// credentialID signs with the caller's one credential of that kind, and
// refuses (400, nothing signed) an unknown qualifier, one the caller has
// no credential of, one several credentials have, or a named credential
// of another kind.
func TestSignDocHTTP_signatureQualifier(t *testing.T) {
	s := newSignDocServer(t, "signdoc-q")
	v := signdoctest.NewValidators(t, s.env.Authority.Root(), s.env.Authority.Issuer())
	first := s.env.Credential(t, "signdoc-q", sam.NewCredential{SCAL: 2, Multisign: 5})
	st, out := s.post("credentials/info", map[string]any{"credentialID": first.CredentialID})
	if st != http.StatusOK || !strings.Contains(string(out), `"signatureQualifier":"eu_eidas_aes"`) {
		t.Fatalf("credentials/info: %d %s", st, out)
	}
	pdf := signdoctest.MakePDF(2, 300, "by qualifier")
	docs := []map[string]any{{"document": sdB64(pdf), "signature_format": "P"}}
	sign := func(body map[string]any) (int, []byte) {
		body["documents"] = docs
		return s.post("signatures/signDoc", body)
	}
	refused := func(name string, st int, out []byte, want string) {
		t.Helper()
		a := sdAnswer(t, out)
		if st != http.StatusBadRequest || a.Error != "invalid_request" || !strings.Contains(a.Description, want) {
			t.Fatalf("%s: %d %s, want 400 invalid_request with %q", name, st, out, want)
		}
	}
	before := s.env.Audit.Count("signature.sign", "success")
	sad := s.authorize(first.CredentialID, 1, "2.16.840.1.101.3.4.2.1", sdSum(pdf))
	st, out = sign(map[string]any{"signatureQualifier": "eu_eidas_fancy", "SAD": sad})
	refused("unknown qualifier", st, out, "Invalid parameter signatureQualifier")
	st, out = sign(map[string]any{"signatureQualifier": "eu_eidas_qes", "SAD": sad})
	refused("no credential of that kind", st, out, "no credential of the user has it")
	st, out = sign(map[string]any{"credentialID": first.CredentialID, "signatureQualifier": "eu_eidas_qes", "SAD": sad})
	refused("named credential of another kind", st, out, "the credential makes eu_eidas_aes signatures")
	if s.env.Audit.Count("signature.sign", "success") != before {
		t.Fatal("a refused request signed")
	}

	st, out = sign(map[string]any{"signatureQualifier": "eu_eidas_aes", "SAD": sad})
	if st != http.StatusOK {
		t.Fatalf("signDoc by qualifier: %d %s", st, out)
	}
	a := sdAnswer(t, out)
	if len(a.DocumentWithSignature) != 1 {
		t.Fatalf("%d documents back", len(a.DocumentWithSignature))
	}
	v.CheckPDF(t, "by-qualifier", sdUnB64(t, a.DocumentWithSignature[0]), signdoctest.PDFWant{Sigs: 1})

	second := s.env.Credential(t, "signdoc-q", sam.NewCredential{SCAL: 2, Multisign: 5})
	sad = s.authorize(second.CredentialID, 1, "2.16.840.1.101.3.4.2.1", sdSum(pdf))
	st, out = sign(map[string]any{"signatureQualifier": "eu_eidas_aes", "SAD": sad})
	refused("two credentials of that kind", st, out, "2 credentials of the user have it, name one with credentialID")
	st, out = sign(map[string]any{"credentialID": second.CredentialID, "signatureQualifier": "eu_eidas_aes", "SAD": sad})
	if st != http.StatusOK {
		t.Fatalf("signDoc with credentialID and its qualifier: %d %s", st, out)
	}
}

func TestSignDocHTTP_badInput(t *testing.T) {
	s := newSignDocServer(t, "signdoc-bad")
	cred := s.env.Credential(t, "signdoc-bad", sam.NewCredential{SCAL: 2, Multisign: 5})
	good := signdoctest.MakePDF(1, 0, "the approved one")
	sad := s.authorize(cred.CredentialID, 1, "2.16.840.1.101.3.4.2.1", sdSum(good))
	doc := func(d string, extra ...string) string {
		e := `{"document":"` + d + `","signature_format":"P"`
		for _, x := range extra {
			e += "," + x
		}
		return `{"credentialID":"` + cred.CredentialID + `","SAD":"` + sad + `","documents":[` + e + `}]}`
	}
	for _, tc := range []struct {
		name, body, want string
	}{
		{"not JSON", `documents`, "JSON object"},
		{"Base64 garbage", doc("%%%not base64%%%"), "Invalid Base64 parameter document"},
		{"document not a string", `{"credentialID":"` + cred.CredentialID + `","SAD":"` + sad + `","documents":[{"document":12,"signature_format":"P"}]}`, "document"},
		{"not a PDF", doc(sdB64([]byte("just some text, certainly not a PDF"))), "not a PDF"},
		{"encrypted PDF", doc(sdB64(signdoctest.EncryptedPDF())), "not a PDF"},
		{"truncated PDF", doc(sdB64(good[:len(good)-200])), "not a PDF"},
		{"unknown level", doc(sdB64(good), `"conformance_level":"Ades-B-XL"`), "Invalid parameter conformance_level"},
		{"unknown format", doc(sdB64(good), `"signature_format":"X"`), "Invalid parameter signature_format"},
		{"bad envelope property", doc(sdB64(good), `"signed_envelope_property":"Enveloped"`), "Invalid parameter signed_envelope_property"},
		{"signed_props", doc(sdB64(good), `"signed_props":[{"attribute_name":"x"}]`), "signed_props"},
		{"RSA algorithm for an EC key", doc(sdB64(good), `"signAlgo":"1.2.840.113549.1.1.11"`), "signAlgo"},
		{"unknown hash", doc(sdB64(good), `"hashAlgorithmOID":"1.3.14.3.2.26"`), "hashAlgorithmOID"},
		{"asynchronous", `{"credentialID":"` + cred.CredentialID + `","SAD":"` + sad + `","operationMode":"A","documents":[{"document":"` + sdB64(good) + `","signature_format":"P"}]}`, "operationMode"},
		{"both", `{"credentialID":"` + cred.CredentialID + `","SAD":"` + sad + `","documents":[{"document":"` + sdB64(good) + `","signature_format":"P"}],"documentDigests":[{"hashes":["` + sdB64(sdSum(good)) + `"],"signature_format":"C"}]}`, "Only one of"},
		{"neither", `{"credentialID":"` + cred.CredentialID + `","SAD":"` + sad + `"}`, "documents or documentDigests"},
		{"no credential", `{"SAD":"` + sad + `","documents":[{"document":"` + sdB64(good) + `","signature_format":"P"}]}`, "credentialID"},
		{"digest with P", `{"credentialID":"` + cred.CredentialID + `","SAD":"` + sad + `","documentDigests":[{"hashes":["` + sdB64(sdSum(good)) + `"],"signature_format":"P"}]}`, "signature_format"},
		{"CAdES attached", `{"credentialID":"` + cred.CredentialID + `","SAD":"` + sad + `","documentDigests":[{"hashes":["` + sdB64(sdSum(good)) + `"],"signature_format":"C","signed_envelope_property":"Attached"}]}`, "Invalid parameter signed_envelope_property"},
		{"digest length", `{"credentialID":"` + cred.CredentialID + `","SAD":"` + sad + `","documentDigests":[{"hashes":["` + sdB64(sdSum(good)[:31]) + `"],"hashAlgorithmOID":"2.16.840.1.101.3.4.2.1","signature_format":"C"}]}`, "Invalid digest value length"},
		{"digest not Base64", `{"credentialID":"` + cred.CredentialID + `","SAD":"` + sad + `","documentDigests":[{"hashes":["@@"],"signature_format":"C"}]}`, "Invalid Base64 hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.env.Audit.Count("signature.sign", "success")
			st, out := s.post("signatures/signDoc", tc.body)
			a := sdAnswer(t, out)
			if st != http.StatusBadRequest || a.Error != "invalid_request" || !strings.Contains(a.Description, tc.want) {
				t.Fatalf("%d %s, want 400 invalid_request with %q", st, out, tc.want)
			}
			if s.env.Audit.Count("signature.sign", "success") != before {
				t.Fatal("something was signed")
			}
		})
	}
	t.Run("too_big", func(t *testing.T) {
		small, err := signdoc.New(s.env.Sam, signdoc.Config{MaxDocumentBytes: 2000})
		if err != nil {
			t.Fatal(err)
		}
		api := New(s.env.Sam, Options{})
		e := gin.New()
		api.registerSignDoc(e.Group("/csc/v2", api.authenticate), small)
		big := signdoctest.MakePDF(1, 3000, "big")
		for _, body := range []string{doc(sdB64(big)), doc(sdB64(big) + strings.Repeat("A", 8<<20))} {
			w := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/csc/v2/signatures/signDoc", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+s.token)
			e.ServeHTTP(w, req)
			a := sdAnswer(t, w.Body.Bytes())
			if w.Code != http.StatusBadRequest || a.Error != "invalid_request" || !strings.Contains(a.Description, "bytes") {
				t.Fatalf("too big: %d %s", w.Code, w.Body.Bytes())
			}
		}
	})
	// The SAD survived every refusal.
	st, out := s.post("signatures/signDoc", doc(sdB64(good)))
	if st != http.StatusOK {
		t.Fatalf("SAD consumed by refused requests: %d %.300s", st, out)
	}
}

func FuzzDecodeSignDoc(f *testing.F) {
	f.Add([]byte(`{"credentialID":"c","SAD":"s","documents":[{"document":"JVBERi0=","signature_format":"P","conformance_level":"Ades-B-LTA"}]}`))
	f.Add([]byte(`{"credentialID":"c","documentDigests":[{"hashes":["` + sdB64(sdSum(nil)) + `"],"signature_format":"C","signAlgo":"1.2.840.113549.1.1.10","signAlgoParams":"MDSgDzANBglghkgBZQMEAgEFAKEcMBoGCSqGSIb3DQEBCDANBglghkgBZQMEAgEFAKIDAgEg"}]}`))
	f.Add([]byte(`{"credentialID":"c","documents":[{"document":"a\/b=","signature_format":"c","returnValidationInfo":"true"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeSignDoc(body, 10)
		if err != nil {
			return
		}
		if r.CredentialID == "" || (len(r.Documents) == 0) == (len(r.Digests) == 0) {
			t.Fatalf("accepted %+v", r)
		}
		for _, d := range r.Digests {
			for _, h := range d.Hashes {
				if len(h) != d.Hash.Size() {
					t.Fatalf("digest of %d bytes for %v", len(h), d.Hash)
				}
			}
		}
	})
}
