package csc

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/internal/httpx"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
)

// Every decoder we own has a fuzz target. Each asserts the decoder's
// contract: it never panics, a refusal is a 400 (Invalid) with a message,
// and an acceptance satisfies the invariants the handlers rely on.
// Seeds live in testdata/fuzz/<Target>/ and are replayed through the
// router by TestSeedCorpusThroughRouter.

func fuzzBodies(f *testing.F) {
	for _, s := range []string{
		`{}`, ``, `null`, `[]`, `{"credentialID":"cred-ec"}`,
		`{"credentialID":"cred-ec","SAD":"sad-cred-ec","hashes":["` + b256 + `"],"signAlgo":"1.2.840.10045.4.3.2"}`,
		`{"credentialID":"cred-rsa","SAD":"s","hash":["` + b384 + `"],"hashAlgo":"2.16.840.1.101.3.4.2.2","signAlgo":"1.2.840.113549.1.1.1"}`,
		`{"credentialID":"cred-rsa","SAD":"s","hashes":["` + b256 + `"],"signAlgo":"1.2.840.113549.1.1.10","signAlgoParams":"` + pssGood + `"}`,
		`{"credentialID":"cred-ec","numSignatures":"2","hashes":["` + b256 + `"],"hashAlgorithmOID":"2.16.840.1.101.3.4.2.1","authData":[{"id":"PIN","value":"12345678"}]}`,
		`{"credentialID":"cred-ec","numSignatures":1,"hash":["` + b256 + `"],"PIN":"12345678","OTP":"123456"}`,
		`{"credentialInfo":true,"certificates":"chain","certInfo":true,"authInfo":true,"maxResults":1}`,
		`{"hash":"` + b256 + `","hashAlgo":"2.16.840.1.101.3.4.2.1","nonce":"01ff"}`,
	} {
		f.Add([]byte(s))
	}
}

// checkRefusal fails unless err is a client error rendered as 400.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	if errs.KindOf(err) != errs.Invalid {
		t.Fatalf("refusal of kind %v, want Invalid: %v", errs.KindOf(err), err)
	}
	if st, body := httpx.Status(err, httpx.CSC); st != 400 || body.Description == "" {
		t.Fatalf("refusal renders as %d %+v", st, body)
	}
}

func FuzzDecodeSignHash(f *testing.F) {
	fuzzBodies(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, d := range []*dialect{dialectV1, dialectV2} {
			r, err := decodeSignHash(d, body, 10)
			if err != nil {
				checkRefusal(t, err)
				continue
			}
			if r.CredentialID == "" || len(r.Hashes) == 0 || len(r.Hashes) > 10 || r.Scheme == nil {
				t.Fatalf("accepted incomplete request %+v", r)
			}
			if d.version == 1 && r.SAD == "" {
				t.Fatal("v1 accepted without SAD")
			}
			for _, h := range r.Hashes {
				if len(h) != r.Scheme.Hash.Size() {
					t.Fatalf("digest of %d bytes accepted for %v", len(h), r.Scheme.Hash)
				}
			}
			if r.Scheme.Opts.HashFunc() != r.Scheme.Hash {
				t.Fatal("opts hash differs from scheme hash")
			}
			if p, ok := r.Scheme.Opts.(*rsa.PSSOptions); ok && (p.SaltLength <= 0 || r.Scheme.Key != keyRSA) {
				t.Fatalf("bad PSS options %+v", p)
			}
		}
	})
}

func FuzzDecodeAuthorize(f *testing.F) {
	fuzzBodies(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, d := range []*dialect{dialectV1, dialectV2} {
			r, err := decodeAuthorize(d, body, 10)
			if err != nil {
				checkRefusal(t, err)
				continue
			}
			if r.CredentialID == "" || r.NumSignatures < 1 || len(r.Hashes) > 10 {
				t.Fatalf("accepted bad request %+v", r)
			}
			if len(r.Hashes) > 0 {
				if r.Hash != crypto.SHA256 && r.Hash != crypto.SHA384 && r.Hash != crypto.SHA512 {
					t.Fatalf("hashes without a hash algorithm: %v", r.Hash)
				}
				for _, h := range r.Hashes {
					if len(h) != r.Hash.Size() {
						t.Fatal("digest length not checked")
					}
				}
			}
		}
	})
}

func FuzzDecodeExtendTransaction(f *testing.F) {
	fuzzBodies(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, d := range []*dialect{dialectV1, dialectV2} {
			r, err := decodeExtend(d, body, 10)
			if err != nil {
				checkRefusal(t, err)
				continue
			}
			if r.CredentialID == "" || r.SAD == "" {
				t.Fatalf("accepted bad request %+v", r)
			}
			for _, h := range r.Hashes {
				if len(h) != r.Hash.Size() {
					t.Fatal("digest length not checked")
				}
			}
		}
	})
}

func FuzzDecodeListInfo(f *testing.F) {
	fuzzBodies(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, d := range []*dialect{dialectV1, dialectV2} {
			if r, err := decodeList(d, body); err != nil {
				checkRefusal(t, err)
			} else if d.version == 2 && r.Certificates != certsNone && r.Certificates != certsSingle && r.Certificates != certsChain {
				t.Fatalf("certificates %q accepted", r.Certificates)
			}
		}
		if r, err := decodeInfo(body); err != nil {
			checkRefusal(t, err)
		} else if r.CredentialID == "" {
			t.Fatal("info accepted without credentialID")
		}
		for _, d := range []*dialect{dialectV1, dialectV2} {
			if _, err := decodeChallenge(d, body); err != nil {
				checkRefusal(t, err)
			}
		}
		if _, err := decodeLogin(body); err != nil {
			checkRefusal(t, err)
		}
		if _, err := decodeRevoke(body); err != nil {
			// unsupported_token_type is Invalid too.
			checkRefusal(t, err)
		}
	})
}

func FuzzDecodeTimestamp(f *testing.F) {
	fuzzBodies(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeTimestamp(body)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if len(r.Hash) != r.Algo.Size() {
			t.Fatal("digest length not checked")
		}
	})
}

func FuzzParsePSSParams(f *testing.F) {
	f.Add(pssParamsDER(crypto.SHA256, 32, crypto.SHA256))
	f.Add(pssParamsDER(crypto.SHA512, 64, crypto.SHA256))
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		p, err := parsePSSParams(der)
		if err != nil {
			return
		}
		if p.SaltLength <= 0 || p.SaltLength > maxPSSSalt {
			t.Fatalf("salt %d accepted", p.SaltLength)
		}
		if p.Hash != crypto.SHA256 && p.Hash != crypto.SHA384 && p.Hash != crypto.SHA512 {
			t.Fatalf("hash %v accepted", p.Hash)
		}
	})
}

func FuzzDecodeB64(f *testing.F) {
	f.Add(b256)
	f.Add("-_-_")
	f.Add("ab==")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := decodeB64(s)
		if err != nil {
			return
		}
		// Every accepted character carries 6 bits; padding carries none.
		if n := len(strings.TrimRight(s, "=")); len(b) != n*6/8 {
			t.Fatalf("%q (%d symbols) decoded to %d bytes", s, n, len(b))
		}
	})
}

// seedRoutes maps each fuzz target to the routes its bodies are sent to
// when replaying the seed corpus through the router.
var seedRoutes = map[string][]string{
	"FuzzDecodeSignHash":          {"/csc/v1/signatures/signHash", "/csc/v2/signatures/signHash"},
	"FuzzDecodeAuthorize":         {"/csc/v1/credentials/authorize", "/csc/v2/credentials/authorize"},
	"FuzzDecodeExtendTransaction": {"/csc/v1/credentials/extendTransaction", "/csc/v2/credentials/extendTransaction"},
	"FuzzDecodeListInfo":          {"/csc/v1/credentials/list", "/csc/v2/credentials/list", "/csc/v1/credentials/info", "/csc/v2/credentials/info", "/csc/v2/credentials/getChallenge", "/csc/v1/credentials/sendOTP", "/csc/v2/auth/login", "/csc/v1/auth/revoke", "/csc/v2/info"},
	"FuzzDecodeTimestamp":         {"/csc/v1/signatures/timestamp", "/csc/v2/signatures/timestamp"},
}

// TestSeedCorpusThroughRouter replays every committed seed through the
// real gin router (over the fake service) and asserts that no handler
// answers 5xx, an empty 200 or a non-JSON error.
func TestSeedCorpusThroughRouter(t *testing.T) {
	t.Run("fake service", func(t *testing.T) {
		h, _ := newRouter(t, newFakeService(t), Options{MaxHashes: 10, TSA: fakeTSA{}})
		replaySeeds(t, h, []string{bearer, basic(fakeUser, fakePass), "Bearer x y", ""})
	})
	t.Run("real sam", func(t *testing.T) {
		env := samtest.New(t, samtest.WithKeys(&samtest.MemKeys{}))
		uid := env.User(t, "alice")
		// IDs the seeds name do not exist here; one real credential makes
		// list/info answer with content.
		env.Credential(t, uid, sam.NewCredential{KeyAlgo: "ecdsa-p256", OTP: "totp", SCAL: 2})
		tok, err := env.Service.Login(context.Background(), "alice", samtest.Password, false)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := newRouter(t, env.Service, Options{MaxHashes: 10, TSA: fakeTSA{}})
		replaySeeds(t, h, []string{"Bearer " + tok.AccessToken, basic("alice", samtest.Password)})
	})
}

func replaySeeds(t *testing.T, h http.Handler, auths []string) {
	total := 0
	for target, routes := range seedRoutes {
		dir := filepath.Join("testdata", "fuzz", target)
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) == 0 {
			t.Fatalf("no seed corpus for %s in %s: %v", target, dir, err)
		}
		for _, e := range entries {
			body, err := readSeed(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatalf("%s: %v", e.Name(), err)
			}
			for _, route := range routes {
				for _, auth := range auths {
					req := httptest.NewRequest(http.MethodPost, route, bytes.NewReader(body))
					if auth != "" {
						req.Header.Set("Authorization", auth)
					}
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					total++
					if w.Code >= 500 {
						t.Errorf("%s %s → %d %s", route, e.Name(), w.Code, w.Body.String())
					}
					if w.Code == 200 && w.Body.Len() <= 2 {
						t.Errorf("%s %s → empty 200", route, e.Name())
					}
					if w.Code >= 400 && !bytes.Contains(w.Body.Bytes(), []byte(`"error"`)) && w.Code != 404 {
						t.Errorf("%s %s → %d without CSC error body: %s", route, e.Name(), w.Code, w.Body.String())
					}
				}
			}
		}
	}
	t.Logf("replayed %d requests", total)
}

// readSeed reads a "go test fuzz v1" file holding one []byte value.
func readSeed(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	if !sc.Scan() || sc.Text() != "go test fuzz v1" {
		return nil, errBadSeed
	}
	if !sc.Scan() {
		return nil, errBadSeed
	}
	line := sc.Text()
	if !strings.HasPrefix(line, "[]byte(") || !strings.HasSuffix(line, ")") {
		return nil, errBadSeed
	}
	s, err := strconv.Unquote(line[len("[]byte(") : len(line)-1])
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}

var errBadSeed = errs.Invalidf("not a one-[]byte go fuzz corpus file")

// TestWriteSeedCorpus regenerates testdata/fuzz from seedBodies when
// CSC_WRITE_SEEDS=1 (go test ./csc -run TestWriteSeedCorpus). The files
// are committed; this only keeps them reproducible.
func TestWriteSeedCorpus(t *testing.T) {
	if os.Getenv("CSC_WRITE_SEEDS") != "1" {
		t.Skip("set CSC_WRITE_SEEDS=1 to regenerate the seed corpus")
	}
	for target := range seedRoutes {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, b := range seedBodies() {
			data := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
			if err := os.WriteFile(filepath.Join(dir, "seed-"+strconv.Itoa(i)), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
