package sam

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/ratelimit"
	"github.com/sigillo/sigillo/store"
)

// randomToken returns 32 random bytes, base64url: opaque tokens and SADs.
func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", errs.Wrap(errs.Internal, "Internal error", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// tokenHash is how tokens and SADs are stored and looked up: a leak of the
// table gives nothing usable.
func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

func randomID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// seqID returns an id for a row that lists are ordered by (history, the
// signature log): the stores order by (at DESC, id DESC), and rows written
// in the same millisecond (an authorize and the sign that follows, a
// batch) must come back in the order they were written. The id is a
// fixed-width hex sequence, strictly increasing within the process and
// seeded from the wall clock so that it keeps growing across restarts,
// then random bytes for uniqueness across replicas. Fixed-width lowercase
// hex sorts the same in SQLite (BINARY) and PostgreSQL collations.
func (s *Service) seqID(prefix string) string {
	var v int64
	for {
		last := s.seq.Load()
		v = max(last+1, time.Now().UnixNano())
		if s.seq.CompareAndSwap(last, v) {
			break
		}
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s%016x%s", prefix, v, hex.EncodeToString(b[:]))
}

func storeErr(what string, err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return errs.Wrap(errs.Unavailable, "The service is temporarily unavailable", fmt.Errorf("%s: %w", what, err))
	}
	if _, ok := errs.As(err); ok {
		return err
	}
	return errs.Wrap(errs.Internal, "Internal error", fmt.Errorf("%s: %w", what, err))
}

// Login checks username and password and issues an access token (and a
// refresh token when rememberMe). A temporary or expired password gives
// ErrPasswordChange: CSC clients have no way to change a password, so the
// clearest thing for them is a 400 authentication_error that says where
// to change it (the self-care portal), rather than a token that works for
// nothing.
func (s *Service) Login(ctx context.Context, username, password string, rememberMe bool) (*Tokens, error) {
	// Before argon2: a flood of guesses must not reach it.
	if err := s.limit(ctx, ratelimit.Login, ratelimit.User(username)); err != nil {
		return nil, err
	}
	u, err := s.st.User(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		// Spend the same work as a real check so that timing does not
		// reveal which usernames exist.
		_, _ = s.verify(ctx, dummyHash(s.cfg.Argon2), password)
		s.record(ctx, audit.Event{Actor: "user:" + username, Action: "auth.login", Object: "user:" + username, Outcome: "failure:unknown_user"})
		return nil, ErrAuthentication
	}
	if err != nil {
		return nil, storeErr("login", err)
	}
	ok, err := s.verify(ctx, u.PasswordHash, password)
	if err != nil {
		return nil, err
	}
	if !ok {
		s.record(ctx, audit.Event{Actor: "user:" + u.ID, Action: "auth.login", Object: "user:" + u.ID, Outcome: "failure:bad_password"})
		return nil, ErrAuthentication
	}
	if u.Status != "active" {
		s.record(ctx, audit.Event{Actor: "user:" + u.ID, Action: "auth.login", Object: "user:" + u.ID, Outcome: "failure:disabled"})
		return nil, ErrUserDisabled
	}
	if u.MustChangePassword || s.now().Sub(u.PasswordChangedAt) > s.cfg.PasswordMaxAge {
		s.record(ctx, audit.Event{Actor: "user:" + u.ID, Action: "auth.login", Object: "user:" + u.ID, Outcome: "failure:password_change_required"})
		return nil, ErrPasswordChange
	}
	t, err := s.issueTokens(ctx, u.ID, randomID("g-"), rememberMe)
	if err != nil {
		return nil, err
	}
	s.record(ctx, audit.Event{Actor: "user:" + u.ID, Action: "auth.login", Object: "user:" + u.ID, Outcome: "success"})
	return t, nil
}

func (s *Service) issueTokens(ctx context.Context, userID, grant string, refresh bool) (*Tokens, error) {
	now := s.now()
	access, err := randomToken()
	if err != nil {
		return nil, err
	}
	if err := s.st.PutToken(ctx, store.Token{Hash: tokenHash(access), Kind: "access", UserID: userID, GrantID: grant,
		ExpiresAt: now.Add(s.cfg.TokenTTL), CreatedAt: now}); err != nil {
		return nil, storeErr("issue token", err)
	}
	t := &Tokens{AccessToken: access, ExpiresIn: int(s.cfg.TokenTTL.Seconds())}
	if refresh {
		r, err := randomToken()
		if err != nil {
			return nil, err
		}
		if err := s.st.PutToken(ctx, store.Token{Hash: tokenHash(r), Kind: "refresh", UserID: userID, GrantID: grant,
			ExpiresAt: now.Add(s.cfg.RefreshTTL), CreatedAt: now}); err != nil {
			return nil, storeErr("issue refresh token", err)
		}
		t.RefreshToken = r
	}
	return t, nil
}

// Refresh exchanges a refresh token for a new access token and a new
// refresh token (rotation: the old refresh token is revoked, and a reuse
// of it is refused).
func (s *Service) Refresh(ctx context.Context, refreshToken string) (*Tokens, error) {
	h := tokenHash(refreshToken)
	t, err := s.st.Token(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalidGrant
	}
	if err != nil {
		return nil, storeErr("refresh", err)
	}
	// An OAuth refresh token is bound to its client: it is refreshed only
	// at oauth2/token (RefreshOAuth), never turned into a clientless token.
	if t.Kind != "refresh" || t.Revoked || !s.now().Before(t.ExpiresAt) || t.ClientID != "" {
		return nil, ErrInvalidGrant
	}
	u, err := s.st.User(ctx, t.UserID)
	if err != nil {
		return nil, storeErr("refresh", err)
	}
	if u.Status != "active" {
		return nil, ErrUserDisabled
	}
	ok, err := s.st.RevokeToken(ctx, h)
	if err != nil {
		return nil, storeErr("refresh", err)
	}
	if !ok { // a concurrent refresh won
		return nil, ErrInvalidGrant
	}
	out, err := s.issueTokens(ctx, t.UserID, t.GrantID, true)
	if err != nil {
		return nil, err
	}
	s.record(ctx, audit.Event{Actor: "user:" + t.UserID, Action: "auth.refresh", Object: "user:" + t.UserID, Outcome: "success"})
	return out, nil
}

// Authenticate resolves an access token to its principal.
func (s *Service) Authenticate(ctx context.Context, accessToken string) (*Principal, error) {
	if accessToken == "" {
		return nil, ErrInvalidToken
	}
	h := tokenHash(accessToken)
	t, err := s.st.Token(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, storeErr("authenticate", err)
	}
	if t.Kind != "access" || t.Revoked {
		return nil, ErrInvalidToken
	}
	if !s.now().Before(t.ExpiresAt) {
		return nil, ErrExpiredToken
	}
	p := &Principal{UserID: t.UserID, ClientID: t.ClientID, TokenID: h}
	if t.ClientID != "" {
		return s.oauthPrincipal(ctx, t, accessToken, p)
	}
	return p, nil
}

// revokeToken voids a token: a refresh token with its grant, an access token
// alone. A token an OAuth client got (ClientID set) goes through the
// OAuth store, which also voids the SADs it carries: a credential-scope
// access token is stored as a SAD under the same hash, and revoking the
// token must stop its signatures too.
func (s *Service) revokeToken(ctx context.Context, t *store.Token, h string) error {
	if t.ClientID != "" {
		if st, ok := s.st.(oauthStore); ok {
			if t.Kind == "refresh" {
				return st.RevokeOAuthGrant(ctx, t.GrantID)
			}
			return st.RevokeOAuthAccessToken(ctx, h)
		}
	}
	if t.Kind == "refresh" {
		return s.st.RevokeGrant(ctx, t.GrantID)
	}
	_, err := s.st.RevokeToken(ctx, h)
	return err
}

// RevokeToken revokes token (hint "access_token" or "refresh_token", or
// ""). Revoking a refresh token revokes its whole grant, access tokens
// included; revoking an access token keeps the refresh token. Tokens that
// are unknown or another user's are ignored (RFC 7009: no oracle).
func (s *Service) RevokeToken(ctx context.Context, p *Principal, token, hint string) error {
	if token == "" {
		return errs.Invalidf("Missing (or invalid type) string parameter token")
	}
	switch hint {
	case "", "access_token", "refresh_token":
	default:
		return errs.New(errs.Invalid, "unsupported_token_type", "Invalid parameter token_type_hint")
	}
	h := tokenHash(token)
	t, err := s.st.Token(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return storeErr("revoke", err)
	}
	if p == nil || t.UserID != p.UserID {
		return nil
	}
	err = s.revokeToken(ctx, t, h)
	if err != nil {
		return storeErr("revoke", err)
	}
	s.record(ctx, audit.Event{Actor: "user:" + p.UserID, Action: "auth.revoke", Object: "user:" + p.UserID, Outcome: "success",
		Detail: map[string]string{"kind": t.Kind}})
	return nil
}
