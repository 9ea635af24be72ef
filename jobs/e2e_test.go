package jobs_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigillo/sigillo/pades"
	"github.com/sigillo/sigillo/server/servertest"
	"github.com/sigillo/sigillo/signdoc/signdoctest"
	softhsmtest "github.com/sigillo/sigillo/softhsm-test"
)

// startReplica runs a whole replica (servertest: real SoftHSM2 token,
// SQLite, HTTP) as sigillo serve assembles it, jobs runner included.
func startReplica(t testing.TB) (*api, *servertest.Server) {
	t.Helper()
	softhsmtest.Require(t)
	srv := servertest.Start(t, servertest.Options{})
	return newAPI(t, srv.URL, srv.AdminToken), srv
}

// TestAutomaticSignatureEndToEnd: an integration of domain A signs 10,000
// hashes (RSA-2048) in batches of 1,000 and 200 PDFs (PAdES B-T) in one
// asynchronous signDoc; every signature is verified; domain B cannot see
// or use A's alias, credential or job; usage, limit, history and
// idempotency behave as documented.
func TestAutomaticSignatureEndToEnd(t *testing.T) {
	a, _ := startReplica(t)
	const alias = "RSSMRA80A01H501U"
	tokA, credA := a.integration("integ-a", "acme.example", alias, "rsa-2048")
	tokB, credB := a.integration("integ-b", "beta.example", alias, "ecdsa-p256")
	onlyA := a.credential("integ-a", "acme.example", "ACME-SEAL", "ecdsa-p256")

	t.Run("info_advertises_async", func(t *testing.T) {
		status, _, data := a.do(http.MethodGet, "/csc/v2/info", nil, nil)
		var info struct {
			Async   bool     `json:"asynchronousOperationMode"`
			Methods []string `json:"methods"`
		}
		if status != 200 || json.Unmarshal(data, &info) != nil || !info.Async || !slices.Contains(info.Methods, "signatures/signPolling") {
			t.Fatalf("info: %d %s", status, data)
		}
	})

	t.Run("alias_addressing_is_domain_scoped", func(t *testing.T) {
		var list struct {
			CredentialIDs []string `json:"credentialIDs"`
		}
		a.call("/csc/v2/credentials/list", tokA, map[string]any{"userID": alias}, 200, &list)
		if !slices.Equal(list.CredentialIDs, []string{credA}) {
			t.Fatalf("A's alias lists %v, want [%s]", list.CredentialIDs, credA)
		}
		// The same alias in domain B is B's credential, never A's.
		a.call("/csc/v2/credentials/list", tokB, map[string]any{"userID": alias}, 200, &list)
		if !slices.Equal(list.CredentialIDs, []string{credB}) {
			t.Fatalf("B's alias lists %v, want [%s]", list.CredentialIDs, credB)
		}
		var e struct {
			Description string `json:"error_description"`
		}
		a.call("/csc/v2/credentials/list", tokB, map[string]any{"userID": "ACME-SEAL"}, 400, &e)
		if e.Description != "Invalid parameter userID" {
			t.Fatalf("B listing A's alias: %+v", e)
		}
		for _, path := range []string{"/csc/v2/credentials/info", "/csc/v2/credentials/authorize"} {
			a.call(path, tokB, map[string]any{"credentialID": onlyA, "numSignatures": 1,
				"authData": []map[string]string{{"id": "PIN", "value": "12345678"}}}, 400, &e)
			if e.Description != "Invalid parameter credentialID" {
				t.Fatalf("B on A's credential %s: %+v", path, e)
			}
		}
	})

	cert := a.leaf(tokA, credA)
	sad := a.authorize(tokA, credA, 11000)
	made := 0
	signHash := func(hs [][]byte, want int, extra ...any) []byte {
		t.Helper()
		body := map[string]any{"credentialID": credA, "SAD": sad, "hashes": b64(hs), "signAlgo": sha256WithRSA}
		var hdr []string
		for i := 0; i+1 < len(extra); i += 2 {
			if k := extra[i].(string); strings.HasPrefix(k, "H:") {
				hdr = append(hdr, strings.TrimPrefix(k, "H:"), extra[i+1].(string))
			} else {
				body[k] = extra[i+1]
			}
		}
		return a.call("/csc/v2/signatures/signHash", tokA, body, want, nil, hdr...)
	}

	t.Run("batch_bound", func(t *testing.T) {
		data := signHash(hashes("too-many", 1001), 400)
		if !strings.Contains(string(data), "1000") {
			t.Fatalf("the refusal does not give the limit: %s", data)
		}
	})

	t.Run("10000_hashes_in_batches_of_1000", func(t *testing.T) {
		for b := 0; b < 10; b++ {
			hs := hashes(fmt.Sprint("batch-", b), 1000)
			var out struct {
				Signatures []string `json:"signatures"`
			}
			if err := json.Unmarshal(signHash(hs, 200), &out); err != nil || len(out.Signatures) != len(hs) {
				t.Fatalf("batch %d: %d signatures, %v", b, len(out.Signatures), err)
			}
			for i, s := range out.Signatures {
				verifyRaw(t, cert, hs[i], s)
			}
			made += len(hs)
		}
	})

	t.Run("200_pdfs_async_signDoc_B-T", func(t *testing.T) {
		docs := make([]map[string]any, 200)
		inputs := make([][]byte, 200)
		for i := range docs {
			inputs[i] = makePDF(i)
			docs[i] = map[string]any{"document": base64.StdEncoding.EncodeToString(inputs[i]), "signature_format": "P",
				"conformance_level": "Ades-B-T", "documentName": fmt.Sprintf("invoice-%03d.pdf", i)}
		}
		var acc struct {
			ResponseID string `json:"responseID"`
		}
		a.call("/csc/v2/signatures/signDoc", tokA, map[string]any{"credentialID": credA, "SAD": sad, "documents": docs,
			"operationMode": "A", "validity_period": 600000}, 200, &acc)
		if acc.ResponseID == "" {
			t.Fatal("no responseID")
		}
		// Another domain's client cannot read the job.
		var e struct {
			Description string `json:"error_description"`
		}
		a.call("/csc/v2/signatures/signPolling", tokB, map[string]any{"requestID": acc.ResponseID}, 400, &e)
		if e.Description != "Invalid parameter requestID" {
			t.Fatalf("B polling A's job: %+v", e)
		}
		res := a.poll(tokA, acc.ResponseID, 3*time.Minute)
		if len(res.DocumentWithSignature) != 200 || len(res.Results) != 200 {
			t.Fatalf("%d documents, %d results", len(res.DocumentWithSignature), len(res.Results))
		}
		signed := make([][]byte, 200)
		for i, d := range res.DocumentWithSignature {
			if res.Results[i].Status != "signed" {
				t.Fatalf("document %d: %+v", i, res.Results[i])
			}
			pdf, err := base64.StdEncoding.DecodeString(d)
			if err != nil || !bytes.HasPrefix(pdf, inputs[i]) {
				t.Fatalf("document %d is not its input signed (order or content changed)", i)
			}
			infos, err := pades.Verify(bytes.NewReader(pdf), int64(len(pdf)))
			if err != nil || len(infos) != 1 || infos[0].Err != nil || infos[0].Timestamp == nil || infos[0].CMS == nil {
				t.Fatalf("document %d: %+v %v", i, infos, err)
			}
			if !infos[0].CMS.Certificates[0].Equal(cert) {
				t.Fatalf("document %d signed by %s", i, infos[0].CMS.Certificates[0].Subject)
			}
			signed[i] = pdf
		}
		made += 200
		// Independent validators (qpdf, pdfsig, openssl cms) on every
		// tenth document: all 200 would double the test's time.
		t.Run("external_validators", func(t *testing.T) {
			chain := a.chain(tokA, credA)
			v := signdoctest.NewValidators(t, chain[len(chain)-1], chain[1:len(chain)-1]...)
			for i := 0; i < len(signed); i += 10 {
				v.CheckPDF(t, fmt.Sprintf("doc%d", i), signed[i], signdoctest.PDFWant{Sigs: 1, SignatureTimestamps: 1})
			}
		})
	})

	t.Run("a_bad_document_fails_alone", func(t *testing.T) {
		var before struct {
			Total int64 `json:"totalSignatures"`
		}
		a.admin(http.MethodGet, "/credentials/"+credA+"/usage", nil, 200, &before)
		docs := []map[string]any{
			{"document": base64.StdEncoding.EncodeToString(makePDF(1000)), "signature_format": "P"},
			{"document": base64.StdEncoding.EncodeToString([]byte("%PDF-1.7 this is not a PDF at all")), "signature_format": "P"},
			{"document": base64.StdEncoding.EncodeToString(makePDF(1002)), "signature_format": "P"},
		}
		var acc struct {
			ResponseID string `json:"responseID"`
		}
		a.call("/csc/v2/signatures/signDoc", tokA, map[string]any{"credentialID": credA, "SAD": sad, "documents": docs,
			"operationMode": "A"}, 200, &acc)
		res := a.poll(tokA, acc.ResponseID, time.Minute)
		if len(res.Results) != 3 || res.Results[0].Status != "signed" || res.Results[2].Status != "signed" ||
			res.Results[1].Status != "failed" || res.Results[1].Error != "invalid_request" || !strings.Contains(res.Results[1].Description, "not a PDF") {
			t.Fatalf("results %+v", res.Results)
		}
		if len(res.DocumentWithSignature) != 3 || res.DocumentWithSignature[1] != "" {
			t.Fatalf("documents: %d, failed slot %q", len(res.DocumentWithSignature), truncate([]byte(res.DocumentWithSignature[1])))
		}
		for _, i := range []int{0, 2} {
			pdf, _ := base64.StdEncoding.DecodeString(res.DocumentWithSignature[i])
			infos, err := pades.Verify(bytes.NewReader(pdf), int64(len(pdf)))
			if err != nil || len(infos) != 1 || infos[0].Err != nil {
				t.Fatalf("document %d: %+v %v", i, infos, err)
			}
		}
		made += 2
		// The failed document's budget came back: the counters moved by 2.
		var after struct {
			Total int64 `json:"totalSignatures"`
		}
		a.admin(http.MethodGet, "/credentials/"+credA+"/usage", nil, 200, &after)
		if after.Total != before.Total+2 {
			t.Fatalf("usage moved from %d to %d for 2 signatures", before.Total, after.Total)
		}
	})

	t.Run("async_signHash_with_response_uri", func(t *testing.T) {
		got := make(chan string, 4)
		cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			got <- string(b)
		}))
		defer cb.Close()
		hs := hashes("async", 100)
		var acc struct {
			ResponseID string `json:"responseID"`
		}
		if err := json.Unmarshal(signHash(hs, 200, "operationMode", "A", "response_uri", cb.URL+"/done"), &acc); err != nil || acc.ResponseID == "" {
			t.Fatalf("accept: %v", err)
		}
		select {
		case body := <-got:
			if !strings.Contains(body, acc.ResponseID) {
				t.Fatalf("callback %s", body)
			}
		case <-time.After(time.Minute):
			t.Fatal("no callback")
		}
		res := a.poll(tokA, acc.ResponseID, time.Minute)
		if len(res.Signatures) != 100 {
			t.Fatalf("%d signatures", len(res.Signatures))
		}
		for i, s := range res.Signatures {
			verifyRaw(t, cert, hs[i], s)
		}
		made += 100
	})

	t.Run("idempotency_key", func(t *testing.T) {
		hs := hashes("idem", 5)
		first := signHash(hs, 200, "H:Idempotency-Key", "k-1")
		made += 5
		status, hdr, again := a.do(http.MethodPost, "/csc/v2/signatures/signHash", map[string]string{"Authorization": "Bearer " + tokA,
			"Idempotency-Key": "k-1"}, mustJSON(t, map[string]any{"signAlgo": sha256WithRSA, "hashes": b64(hs), "SAD": sad, "credentialID": credA}))
		if status != 200 || !bytes.Equal(first, again) || hdr.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("retry: %d %q, replayed %q", status, truncate(again), hdr.Get("Idempotent-Replayed"))
		}
		signHash(hashes("other", 5), 422, "H:Idempotency-Key", "k-1")
		// The key is the principal's: B's k-1 is another key.
		a.call("/csc/v2/signatures/signHash", tokB, map[string]any{"credentialID": credB, "SAD": "x", "hashes": b64(hs),
			"signAlgo": ecdsaWithSHA256}, 400, nil, "Idempotency-Key", "k-1")
	})

	t.Run("usage_history_and_limit", func(t *testing.T) {
		var u struct {
			Total, Today, Max int64
		}
		usage := func() {
			var raw struct {
				Total int64 `json:"totalSignatures"`
				Today int64 `json:"todaySignatures"`
				Max   int64 `json:"maxSignatures"`
			}
			a.admin(http.MethodGet, "/credentials/"+credA+"/usage", nil, 200, &raw)
			u.Total, u.Today, u.Max = raw.Total, raw.Today, raw.Max
		}
		usage()
		if u.Total != int64(made) || u.Today != int64(made) {
			t.Fatalf("usage %+v, want %d signatures", u, made)
		}
		a.admin(http.MethodPost, "/credentials/"+credA+"/limit", map[string]any{"maxSignatures": made + 3}, 200, nil)
		data := signHash(hashes("over", 5), 400)
		if !strings.Contains(string(data), "Signature limit reached") {
			t.Fatalf("limit: %s", data)
		}
		signHash(hashes("under", 3), 200)
		made += 3
		usage()
		if u.Total != int64(made) || u.Max != int64(made) {
			t.Fatalf("usage after limit %+v, want %d", u, made)
		}
		var h struct {
			Matching  int   `json:"matching"`
			More      bool  `json:"more"`
			Total     int64 `json:"totalSignatures"`
			Last7Days int64 `json:"last7DaysSignatures"`
			Entries   []struct {
				Document, Format, Level, Outcome, Client string
				Digests                                  []string
				Signatures                               int
			} `json:"entries"`
		}
		from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		to := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		a.admin(http.MethodGet, "/credentials/"+credA+"/history?size=50&page=0&from="+from+"&to="+to, nil, 200, &h)
		if h.Total != int64(made) || h.Last7Days != int64(made) || len(h.Entries) != 50 || !h.More {
			t.Fatalf("history: total %d last7 %d entries %d matching %d, want %d", h.Total, h.Last7Days, len(h.Entries), h.Matching, made)
		}
		// The newest: the batch of 3 under the limit, then the refused 5.
		under := hashes("under", 3)
		if e := h.Entries[0]; e.Outcome != "success" || e.Client != "user:integ-a" || e.Signatures != 3 || e.Format != "hash" ||
			!slices.Equal(e.Digests, []string{hex.EncodeToString(under[0]), hex.EncodeToString(under[1]), hex.EncodeToString(under[2])}) {
			t.Fatalf("newest entry %+v", e)
		}
		if e := h.Entries[1]; !strings.HasPrefix(e.Outcome, "failure:") || e.Signatures != 5 {
			t.Fatalf("refused batch entry %+v", e)
		}
		// Every signed document is an entry of its own, named.
		all := 0
		docs := 0
		for page := 0; ; page++ {
			a.admin(http.MethodGet, fmt.Sprintf("/credentials/%s/history?size=1000&page=%d", credA, page), nil, 200, &h)
			for _, e := range h.Entries {
				if e.Outcome == "success" {
					all += e.Signatures
				}
				switch {
				case e.Format == "P" && strings.HasPrefix(e.Document, "invoice-"):
					if e.Level != "Ades-B-T" || e.Signatures != 1 {
						t.Fatalf("document entry %+v", e)
					}
					docs++
				case e.Format == "P":
					// Unnamed documents are logged by their SHA-256.
					if len(e.Document) != 64 || e.Signatures != 1 || e.Level != "Ades-B-B" {
						t.Fatalf("unnamed document entry %+v", e)
					}
				}
			}
			if !h.More {
				break
			}
		}
		if all != made || docs != 200 {
			t.Fatalf("history lists %d signatures (%d documents), want %d (200)", all, docs, made)
		}
		// Outside the window: nothing.
		a.admin(http.MethodGet, "/credentials/"+credA+"/history?from=2020-01-01&to=2020-01-02", nil, 200, &h)
		if h.Matching != 0 || len(h.Entries) != 0 {
			t.Fatalf("old window: %+v", h)
		}
	})
}

// chain returns the credential's chain, leaf first.
func (a *api) chain(token, credID string) []*x509.Certificate {
	a.t.Helper()
	var out struct {
		Cert struct {
			Certificates []string `json:"certificates"`
		} `json:"cert"`
	}
	a.call("/csc/v2/credentials/info", token, map[string]any{"credentialID": credID, "certificates": "chain"}, http.StatusOK, &out)
	var chain []*x509.Certificate
	for _, s := range out.Cert.Certificates {
		der, _ := base64.StdEncoding.DecodeString(s)
		c, err := x509.ParseCertificate(der)
		if err != nil {
			a.t.Fatal(err)
		}
		chain = append(chain, c)
	}
	return chain
}
