package sam_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
	"github.com/sigillo/sigillo/store"
	"github.com/sigillo/sigillo/store/storetest"
)

// signPath is one public signing entry point driven the same way: sign
// the documents (authorized by their own digest) with the given options.
type signPath struct {
	name string
	sign func(e *samtest.Env, p *sam.Principal, credID, sad string, docs [][]byte, opts crypto.SignerOpts) ([][]byte, error)
	// signed returns what the key signed for doc i (to verify).
	signed func(doc []byte) []byte
}

var signPaths = []signPath{
	{"signHash", func(e *samtest.Env, p *sam.Principal, credID, sad string, docs [][]byte, opts crypto.SignerOpts) ([][]byte, error) {
		return e.Service.SignHash(context.Background(), p, sam.SignRequest{CredentialID: credID, SAD: sad, Hashes: docs, Opts: opts})
	}, func(doc []byte) []byte { return doc }},
	{"signDoc", func(e *samtest.Env, p *sam.Principal, credID, sad string, docs [][]byte, opts crypto.SignerOpts) ([][]byte, error) {
		items := make([]sam.DerivedItem, len(docs))
		for i, d := range docs {
			items[i] = sam.DerivedItem{Authorized: d, Digest: attrsOf(d)}
		}
		return e.Service.SignDerived(context.Background(), p, sam.DerivedRequest{CredentialID: credID, SAD: sad,
			AuthorizedHash: crypto.SHA256, Items: items, Opts: opts})
	}, attrsOf},
}

// attrsOf stands for the digest of CMS signed attributes embedding doc.
func attrsOf(doc []byte) []byte { return sum("signed attributes of " + string(doc)) }

func verifies(t *testing.T, cert []byte, digest, sig []byte, opts crypto.SignerOpts) bool {
	t.Helper()
	leaf, err := x509.ParseCertificate(cert)
	if err != nil {
		t.Fatal(err)
	}
	switch k := leaf.PublicKey.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, digest, sig)
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			return rsa.VerifyPSS(k, pss.Hash, digest, sig, pss) == nil
		}
		return rsa.VerifyPKCS1v15(k, opts.HashFunc(), digest, sig) == nil
	}
	return false
}

// Every synchronous signing path counts, limits and records its
// signatures the same way: usage counter, history, signature log, audit.
func TestSigningPaths_countLimitAndRecord(t *testing.T) {
	for _, sp := range signPaths {
		t.Run(sp.name, func(t *testing.T) {
			e := samtest.New(t)
			ctx := context.Background()
			uid := e.User(t, "paths")
			p := e.Login(t, uid)
			cc := e.Credential(t, uid, sam.NewCredential{SCAL: 2, Multisign: 10})
			docs := [][]byte{sum(sp.name + " 1"), sum(sp.name + " 2")}
			sad, err := e.Service.Authorize(ctx, p, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 2,
				Hashes: docs, HashAlgo: crypto.SHA256, PIN: samtest.PIN})
			if err != nil {
				t.Fatal(err)
			}
			sigs, err := sp.sign(e, p, cc.CredentialID, sad.Value, docs, crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			for i := range docs {
				if !verifies(t, cc.Certificates[0], sp.signed(docs[i]), sigs[i], crypto.SHA256) {
					t.Fatalf("signature %d does not verify", i)
				}
			}
			u, err := e.Service.Usage(ctx, p, cc.CredentialID)
			if err != nil || u.Total != 2 || u.Today != 2 {
				t.Fatalf("usage after 2 signatures: %+v, %v", u, err)
			}
			h, err := e.Service.History(ctx, p, cc.CredentialID, sam.HistoryFilter{})
			if err != nil || h.Total != 2 || len(h.Entries) != 1 || h.Entries[0].Count != 2 || len(h.Entries[0].Digests) != 2 ||
				string(h.Entries[0].Digests[1]) != string(docs[1]) {
				t.Fatalf("signature log: %+v, %v", h, err)
			}
			page, err := e.Service.CredentialHistory(ctx, p, cc.CredentialID, 0, 10)
			if err != nil || len(page.Entries) != 2 || page.Entries[0].Action != "sign" || page.Entries[0].Outcome != "success" ||
				page.Entries[0].Count != 2 || page.Entries[1].Action != "authorize" {
				t.Fatalf("history: %+v, %v", page, err)
			}
			if n := e.Audit.Count("signature.sign", "success"); n != 1 {
				t.Fatalf("%d success audit events, want 1", n)
			}

			// The limit stops this path too, before anything is consumed.
			if _, err := e.Service.SetUsageLimit(ctx, cc.CredentialID, 3); err != nil {
				t.Fatal(err)
			}
			more := [][]byte{sum(sp.name + " 3"), sum(sp.name + " 4")}
			sad, err = e.Service.Authorize(ctx, p, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 2,
				Hashes: more, HashAlgo: crypto.SHA256, PIN: samtest.PIN})
			if err != nil {
				t.Fatal(err)
			}
			_, err = sp.sign(e, p, cc.CredentialID, sad.Value, more, crypto.SHA256)
			if !errors.Is(err, store.ErrUsageLimit) || errs.KindOf(err) != errs.Invalid {
				t.Fatalf("over the limit: %v", err)
			}
			if _, err := sp.sign(e, p, cc.CredentialID, sad.Value, more[:1], crypto.SHA256); err != nil {
				t.Fatalf("up to the limit (SAD not consumed by the refusal): %v", err)
			}
			if u, err := e.Service.Usage(ctx, p, cc.CredentialID); err != nil || u.Total != 3 || u.Remaining != 0 {
				t.Fatalf("usage at the limit: %+v, %v", u, err)
			}
		})
	}
}

// sam refuses signer options that do not fit the credential's key, on
// every path, before the SAD is consumed.
func TestSigningPaths_refuseOptionsThatDoNotFitTheKey(t *testing.T) {
	e := samtest.New(t)
	ctx := context.Background()
	uid := e.User(t, "family")
	p := e.Login(t, uid)
	ec := e.Credential(t, uid, sam.NewCredential{KeyAlgo: "ecdsa-p256", Multisign: 100})
	rsaCred := e.Credential(t, uid, sam.NewCredential{KeyAlgo: "rsa-2048", Multisign: 100})
	pss := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	tests := []struct {
		name string
		cred *sam.CreatedCredential
		opts crypto.SignerOpts
		ok   bool
	}{
		{"EC key, plain hash (ECDSA)", ec, crypto.SHA256, true},
		{"EC key, PSS refused", ec, pss, false},
		{"EC key, Ed25519 options refused", ec, &ed25519.Options{Hash: crypto.SHA256}, false},
		{"RSA key, plain hash (PKCS#1 v1.5)", rsaCred, crypto.SHA256, true},
		{"RSA key, PSS", rsaCred, pss, true},
		{"RSA key, Ed25519 options refused", rsaCred, &ed25519.Options{Hash: crypto.SHA256}, false},
	}
	for _, sp := range signPaths {
		for _, tt := range tests {
			t.Run(sp.name+"/"+tt.name, func(t *testing.T) {
				doc := sum(sp.name + tt.name)
				sad, err := e.Service.Authorize(ctx, p, sam.AuthorizeRequest{CredentialID: tt.cred.CredentialID, NumSignatures: 1, PIN: samtest.PIN})
				if err != nil {
					t.Fatal(err)
				}
				sigs, err := sp.sign(e, p, tt.cred.CredentialID, sad.Value, [][]byte{doc}, tt.opts)
				if tt.ok {
					if err != nil || !verifies(t, tt.cred.Certificates[0], sp.signed(doc), sigs[0], tt.opts) {
						t.Fatalf("fitting options: %v", err)
					}
					return
				}
				var ee *errs.Error
				if !errors.As(err, &ee) || ee.Kind != errs.Invalid || !strings.Contains(ee.Msg, "signAlgo") || sigs != nil {
					t.Fatalf("options that do not fit: %v", err)
				}
				// Nothing consumed: the SAD still signs with fitting options.
				if _, err := sp.sign(e, p, tt.cred.CredentialID, sad.Value, [][]byte{doc}, crypto.SHA256); err != nil {
					t.Fatalf("SAD consumed by the refusal: %v", err)
				}
			})
		}
	}
}

// An HSM outage after the budget was taken gives the budget back (SAD and
// usage counters), so the client retries with the same SAD once the HSM
// is back; never more than was taken.
// It runs on SQLite and PostgreSQL (the refund is one conditional UPDATE
// per table, checked on both dialects).
func TestSigningPaths_HSMOutageGivesTheBudgetBack(t *testing.T) {
	stores := []struct {
		name string
		open func(t *testing.T) *store.Store
	}{
		{"sqlite", func(t *testing.T) *store.Store { return storetest.NewSQLite(t) }},
		{"postgres", func(t *testing.T) *store.Store { return storetest.NewPostgres(t) }},
	}
	for _, db := range stores {
		for _, sp := range signPaths {
			for _, bound := range []bool{true, false} {
				name := db.name + "/" + sp.name + "/unbound"
				if bound {
					name = db.name + "/" + sp.name + "/bound"
				}
				t.Run(name, func(t *testing.T) { outageGivesBudgetBack(t, db.open(t), sp, bound, name) })
			}
		}
	}
}

func outageGivesBudgetBack(t *testing.T, st *store.Store, sp signPath, bound bool, name string) {
	keys := &samtest.FailingKeys{}
	e := samtest.New(t, samtest.WithKeys(keys), samtest.WithStore(st))
	ctx := context.Background()
	uid := e.User(t, "outage")
	p := e.Login(t, uid)
	cc := e.Credential(t, uid, sam.NewCredential{SCAL: 1, Multisign: 3})
	docs := [][]byte{sum(name + " 1"), sum(name + " 2")}
	ar := sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 2, PIN: samtest.PIN}
	if bound {
		ar.Hashes, ar.HashAlgo = docs, crypto.SHA256
	}
	sad, err := e.Service.Authorize(ctx, p, ar)
	if err != nil {
		t.Fatal(err)
	}
	keys.Fail.Store(true)
	if _, err := sp.sign(e, p, cc.CredentialID, sad.Value, docs, crypto.SHA256); errs.KindOf(err) != errs.Unavailable {
		t.Fatalf("during the outage: %v", err)
	}
	if u, err := e.Service.Usage(ctx, p, cc.CredentialID); err != nil || u.Total != 0 {
		t.Fatalf("usage after the outage: %+v, %v", u, err)
	}
	keys.Fail.Store(false)
	sigs, err := sp.sign(e, p, cc.CredentialID, sad.Value, docs, crypto.SHA256)
	if err != nil || len(sigs) != 2 {
		t.Fatalf("retry after the outage: %v", err)
	}
	if u, err := e.Service.Usage(ctx, p, cc.CredentialID); err != nil || u.Total != 2 {
		t.Fatalf("usage after the retry: %+v, %v", u, err)
	}
	// Used up now; a refund of what was not taken is refused.
	if _, err := sp.sign(e, p, cc.CredentialID, sad.Value, docs[:1], crypto.SHA256); err == nil {
		t.Fatal("the SAD signed more than it authorized")
	}
	fresh, err := e.Service.Authorize(ctx, p, ar)
	if err != nil {
		t.Fatal(err)
	}
	// One more than the credential's multisign (3) / the bound hashes.
	extra := append(docs, sum("extra"))
	if bound {
		extra = docs
	}
	if err := e.Store.RefundSAD(ctx, sha256hex(fresh.Value), uid, cc.CredentialID, extra, e.Clock.Now()); err == nil {
		t.Fatal("refund of an unused SAD accepted")
	}
	sigs, err = sp.sign(e, p, cc.CredentialID, fresh.Value, docs, crypto.SHA256)
	if err != nil || len(sigs) != 2 {
		t.Fatalf("fresh SAD after a refused refund: %v", err)
	}
	if _, err := sp.sign(e, p, cc.CredentialID, fresh.Value, docs[:1], crypto.SHA256); err == nil {
		t.Fatal("the refused refund added budget")
	}
}

// sha256hex is how the store names a SAD (hex SHA-256 of its value).
func sha256hex(v string) string {
	d := sha256.Sum256([]byte(v))
	return hex.EncodeToString(d[:])
}

// Rows written in the same millisecond come back newest first, in the
// order they were written, on both stores (the clock does not move here).
func TestHistory_sameMillisecondKeepsWriteOrder(t *testing.T) {
	for _, db := range []struct {
		name string
		open func(t *testing.T) *store.Store
	}{
		{"sqlite", func(t *testing.T) *store.Store { return storetest.NewSQLite(t) }},
		{"postgres", func(t *testing.T) *store.Store { return storetest.NewPostgres(t) }},
	} {
		t.Run(db.name, func(t *testing.T) {
			e := samtest.New(t, samtest.WithStore(db.open(t)))
			ctx := context.Background()
			uid := e.User(t, "order")
			p := e.Login(t, uid)
			cc := e.Credential(t, uid, sam.NewCredential{Multisign: 10})
			for i := 1; i <= 5; i++ {
				sad, err := e.Service.Authorize(ctx, p, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: i, PIN: samtest.PIN})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := e.Service.SignHash(ctx, p, sam.SignRequest{CredentialID: cc.CredentialID, SAD: sad.Value,
					Hashes: digests(i, "order"), Opts: crypto.SHA256}); err != nil {
					t.Fatal(err)
				}
			}
			page, err := e.Service.CredentialHistory(ctx, p, cc.CredentialID, 0, 10)
			if err != nil || len(page.Entries) != 10 {
				t.Fatalf("history: %+v, %v", page, err)
			}
			for k, h := range page.Entries {
				wantAction, wantCount := "sign", 5-k/2
				if k%2 == 1 {
					wantAction = "authorize"
				}
				if h.Action != wantAction || (h.Action == "sign" && h.Count != wantCount) {
					t.Fatalf("row %d: %s of %d, want %s of %d (%+v)", k, h.Action, h.Count, wantAction, wantCount, page.Entries)
				}
			}
			log, err := e.Service.History(ctx, p, cc.CredentialID, sam.HistoryFilter{})
			if err != nil || len(log.Entries) != 5 {
				t.Fatalf("signature log: %+v, %v", log, err)
			}
			for k, r := range log.Entries {
				if r.Count != 5-k {
					t.Fatalf("log row %d has %d signatures, want %d", k, r.Count, 5-k)
				}
			}
		})
	}
}

// A client that goes away mid-batch (its context cancelled between two
// HSM signatures) gets nothing, and the budget still goes back: the
// refund does not run on the caller's context.
func TestSignHash_cancelledMidBatchGivesTheBudgetBack(t *testing.T) {
	keys := &samtest.FailingKeys{}
	e := samtest.New(t, samtest.WithKeys(keys), samtest.WithConfig(func(c *sam.Config) { c.SignParallelism = 1 }))
	uid := e.User(t, "cancel")
	p := e.Login(t, uid)
	cc := e.Credential(t, uid, sam.NewCredential{Multisign: 2})
	sad, err := e.Service.Authorize(context.Background(), p, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 2, PIN: samtest.PIN})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	keys.BeforeSign = cancel
	docs := digests(2, "cancel")
	if _, err := e.Service.SignHash(ctx, p, sam.SignRequest{CredentialID: cc.CredentialID, SAD: sad.Value, Hashes: docs, Opts: crypto.SHA256}); err == nil {
		t.Fatal("a cancelled batch returned signatures")
	}
	keys.BeforeSign = nil
	sigs, err := e.Service.SignHash(context.Background(), p, sam.SignRequest{CredentialID: cc.CredentialID, SAD: sad.Value, Hashes: docs, Opts: crypto.SHA256})
	if err != nil || len(sigs) != 2 {
		t.Fatalf("retry after the cancelled batch: %v", err)
	}
	if u, err := e.Service.Usage(context.Background(), p, cc.CredentialID); err != nil || u.Total != 2 {
		t.Fatalf("usage: %+v, %v", u, err)
	}
}
