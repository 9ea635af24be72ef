package sam_test

import (
	"crypto"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
	"github.com/sigillo/sigillo/store"
)

func TestAutomaticCredentialMultisign(t *testing.T) {
	e := samtest.New(t)
	u := e.User(t, "integ")
	for _, tc := range []struct {
		name      string
		nc        sam.NewCredential
		want      int
		wantError bool
	}{
		{"automatic_default_is_100000", sam.NewCredential{Domain: "acme.example", Alias: "A1"}, sam.DefaultAutomaticMultisign, false},
		{"automatic_may_ask_100000", sam.NewCredential{Domain: "acme.example", Alias: "A2", Multisign: 100000}, 100000, false},
		{"automatic_above_cap_refused", sam.NewCredential{Domain: "acme.example", Alias: "A3", Multisign: 100001}, 0, true},
		{"personal_default_is_1", sam.NewCredential{}, 1, false},
		{"personal_keeps_the_1000_cap", sam.NewCredential{Multisign: 1001}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.nc.UserID, tc.nc.PIN, tc.nc.KeyAlgo, tc.nc.OTP = u, samtest.PIN, "ecdsa-p256", "none"
			cc, err := e.Service.CreateCredential(ctx, tc.nc)
			if tc.wantError {
				if errs.KindOf(err) != errs.Invalid || !strings.Contains(err.Error(), "multisign") {
					t.Fatalf("got %v, want a multisign refusal", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ci, err := e.Service.AdminCredential(ctx, cc.CredentialID)
			if err != nil || ci.Multisign != tc.want {
				t.Fatalf("multisign %d, want %d (%v)", ci.Multisign, tc.want, err)
			}
		})
	}
}

func TestCredentialsByAliasStaysInReach(t *testing.T) {
	e := samtest.New(t)
	a, b, plain := e.User(t, "integ-a"), e.User(t, "integ-b"), e.User(t, "person")
	ca := e.Credential(t, a, sam.NewCredential{Domain: "acme.example", Alias: "RSSMRA80A01H501U"})
	cb := e.Credential(t, b, sam.NewCredential{Domain: "beta.example", Alias: "RSSMRA80A01H501U"})
	e.Credential(t, plain, sam.NewCredential{})
	pa, pb, pp := e.Login(t, a), e.Login(t, b), e.Login(t, plain)
	ids := func(cs []sam.CredentialInfo) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		p     *sam.Principal
		alias string
		want  string // credential id, or "" for an error
		err   error
		kind  errs.Kind
	}{
		{"holder_finds_own_alias", pa, "RSSMRA80A01H501U", ca.CredentialID, nil, 0},
		{"same_alias_other_domain_is_theirs", pb, "RSSMRA80A01H501U", cb.CredentialID, nil, 0},
		{"unknown_alias_not_found", pa, "NOPE", "", nil, errs.NotFound},
		{"person_without_automatic_credentials_may_not_name_users", pp, "RSSMRA80A01H501U", "", sam.ErrNotDomainScoped, 0},
		{"domain_bound_principal_finds_in_its_domain", &sam.Principal{Domain: "acme.example", ClientID: "oauth-client"}, "RSSMRA80A01H501U", ca.CredentialID, nil, 0},
		{"domain_bound_principal_never_sees_another_domain", &sam.Principal{Domain: "gamma.example"}, "RSSMRA80A01H501U", "", nil, errs.NotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.Service.CredentialsByAlias(ctx, tc.p, tc.alias)
			switch {
			case tc.want != "":
				if err != nil || len(got) != 1 || got[0].ID != tc.want {
					t.Fatalf("got %v, %v; want [%s]", ids(got), err, tc.want)
				}
			case tc.err != nil:
				if !errors.Is(err, tc.err) {
					t.Fatalf("got %v, want %v", err, tc.err)
				}
			default:
				if errs.KindOf(err) != tc.kind {
					t.Fatalf("got %v (kind %v), want kind %v", err, errs.KindOf(err), tc.kind)
				}
			}
		})
	}
	// A domain-bound principal uses credentials of its domain only.
	if _, err := e.Service.Credential(ctx, &sam.Principal{Domain: "beta.example"}, ca.CredentialID); errs.KindOf(err) != errs.NotFound {
		t.Fatalf("another domain's credential: %v", err)
	}
	if _, err := e.Service.Credential(ctx, &sam.Principal{Domain: "acme.example"}, ca.CredentialID); err != nil {
		t.Fatalf("own domain's credential: %v", err)
	}
}

func TestUsageLimitStopsSigningWithAClearError(t *testing.T) {
	e := samtest.New(t)
	u := e.User(t, "integ")
	cc := e.Credential(t, u, sam.NewCredential{Domain: "acme.example", Alias: "A1", Multisign: 1000})
	p := e.Login(t, u)
	sad, err := e.Service.Authorize(ctx, p, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 100, PIN: samtest.PIN})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(n int) error {
		e.Clock.Advance(time.Second) // history is ordered by time
		_, err := e.Service.SignHash(ctx, p, sam.SignRequest{CredentialID: cc.CredentialID, SAD: sad.Value, Hashes: digests(n, "lim"), Opts: crypto.SHA256})
		return err
	}
	if err := sign(4); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Service.SetUsageLimit(ctx, cc.CredentialID, 6); err != nil {
		t.Fatal(err)
	}
	err = sign(3)
	if e, ok := errs.As(err); !ok || e.Kind != errs.Invalid || !strings.Contains(e.Msg, "Signature limit reached") || !errors.Is(err, store.ErrUsageLimit) {
		t.Fatalf("over the limit: %v", err)
	}
	if err := sign(2); err != nil {
		t.Fatalf("up to the limit: %v", err)
	}
	v, err := e.Service.Usage(ctx, p, cc.CredentialID)
	if err != nil || v.Total != 6 || v.Limit != 6 || v.Remaining != 0 || v.Today != 6 {
		t.Fatalf("usage %+v, %v", v, err)
	}
	h, err := e.Service.History(ctx, p, cc.CredentialID, sam.HistoryFilter{})
	if err != nil || h.Total != 6 || h.Last7Days != 6 || len(h.Entries) != 3 {
		t.Fatalf("history %+v, %v", h, err)
	}
	// Newest first: the second batch, the refused one, the first.
	if h.Entries[0].Count != 2 || len(h.Entries[0].Digests) != 2 || !strings.HasPrefix(h.Entries[1].Outcome, "failure:") || h.Entries[2].Count != 4 {
		t.Fatalf("entries %+v", h.Entries)
	}
	// Another user sees neither usage nor history.
	other := e.User(t, "other")
	po := e.Login(t, other)
	if _, err := e.Service.Usage(ctx, po, cc.CredentialID); errs.KindOf(err) != errs.NotFound {
		t.Fatalf("another user's usage: %v", err)
	}
	if _, err := e.Service.History(ctx, po, cc.CredentialID, sam.HistoryFilter{}); errs.KindOf(err) != errs.NotFound {
		t.Fatalf("another user's history: %v", err)
	}
	for _, f := range []sam.HistoryFilter{{Size: 1001}, {Page: -1}, {From: e.Clock.Now(), To: e.Clock.Now()}} {
		if _, err := e.Service.AdminHistory(ctx, cc.CredentialID, f); errs.KindOf(err) != errs.Invalid {
			t.Fatalf("filter %+v: %v", f, err)
		}
	}
	if _, err := e.Service.SetUsageLimit(ctx, cc.CredentialID, -1); errs.KindOf(err) != errs.Invalid {
		t.Fatalf("negative limit: %v", err)
	}
}
