package store

// OAuth2 for CSC: registered clients, pending authorization requests
// (PAR and browser flows), authorization codes and grants. Tokens issued
// under a grant are rows of access_tokens with that grant_id; a
// credential-scope access token is also a SAD (a row of sads under the
// same hash), so signHash consumes it like any SAD. Single use of requests
// and codes is one conditional UPDATE each.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrOAuthCodeUsed is TakeOAuthCode's answer for a code redeemed before;
// the code is returned with it so that the caller can revoke its grant.
var ErrOAuthCodeUsed = errors.New("store: authorization code already used")

// OAuthClient is a registered OAuth client. SecretHash is the hex SHA-256
// of the secret.
type OAuthClient struct {
	ID, Name, SecretHash string
	RedirectURIs         []string
	// Domain binds a client_credentials client to an automatic-signature
	// domain ("" = none; stored NULL).
	Domain             string
	GrantTypes, Scopes []string
	CreatedAt          time.Time
}

// CreateOAuthClient inserts a client; a taken id gives ErrConflict.
func (s *Store) CreateOAuthClient(ctx context.Context, c OAuthClient) error {
	_, err := s.Exec(ctx, `INSERT INTO oauth_clients (id, name, secret_hash, redirect_uris, domain, grant_types, scopes, created_at)
		VALUES (?,?,?,?,?,?,?,?)`, c.ID, c.Name, c.SecretHash, strings.Join(c.RedirectURIs, "\n"), nullable(c.Domain),
		strings.Join(c.GrantTypes, " "), strings.Join(c.Scopes, " "), Millis(c.CreatedAt))
	if err != nil {
		return fmt.Errorf("create oauth client %s: %w", c.ID, err)
	}
	return nil
}

// OAuthClient returns the client with the given id or ErrNotFound.
func (s *Store) OAuthClient(ctx context.Context, id string) (*OAuthClient, error) {
	var c OAuthClient
	var uris, grants, scopes string
	var domain sql.NullString
	var created int64
	err := s.QueryRow(ctx, `SELECT id, name, secret_hash, redirect_uris, domain, grant_types, scopes, created_at
		FROM oauth_clients WHERE id = ?`, id).Scan(&c.ID, &c.Name, &c.SecretHash, &uris, &domain, &grants, &scopes, &created)
	if err != nil {
		return nil, fmt.Errorf("oauth client %s: %w", id, s.mapErr(err))
	}
	c.RedirectURIs, c.GrantTypes, c.Scopes = splitNonEmpty(uris, "\n"), strings.Fields(grants), strings.Fields(scopes)
	c.Domain, c.CreatedAt = domain.String, FromMillis(created)
	return &c, nil
}

func splitNonEmpty(s, sep string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, sep)
}

// OAuthRequest is a pending authorization request, stored under the
// SHA-256 of its handle.
type OAuthRequest struct {
	Hash, ClientID string
	// Params is the validated request, encoded by its owner (JSON).
	Params []byte
	// Pushed marks a PAR request (used once by authorize); otherwise the
	// row is a browser flow bound to BrowserHash and, after login, UserID.
	Pushed      bool
	BrowserHash string
	CSRF        string
	UserID      string
	Used        bool
	ExpiresAt   time.Time
	CreatedAt   time.Time
}

// PutOAuthRequest stores a pending authorization request.
func (s *Store) PutOAuthRequest(ctx context.Context, r OAuthRequest) error {
	_, err := s.Exec(ctx, `INSERT INTO oauth_requests (hash, client_id, params, pushed, browser_hash, csrf, user_id, used, expires_at, created_at)
		VALUES (?,?,?,?,?,?,?,0,?,?)`, r.Hash, r.ClientID, string(r.Params), Bool(r.Pushed), r.BrowserHash, r.CSRF, r.UserID,
		Millis(r.ExpiresAt), Millis(r.CreatedAt))
	if err != nil {
		return fmt.Errorf("put oauth request: %w", err)
	}
	return nil
}

// OAuthRequest returns the live (unused, unexpired at now) request with
// the given hash, or ErrNotFound.
func (s *Store) OAuthRequest(ctx context.Context, hash string, now time.Time) (*OAuthRequest, error) {
	var r OAuthRequest
	var params string
	var pushed, used int
	var exp, created int64
	err := s.QueryRow(ctx, `SELECT hash, client_id, params, pushed, browser_hash, csrf, user_id, used, expires_at, created_at
		FROM oauth_requests WHERE hash = ? AND used = 0 AND expires_at > ?`, hash, Millis(now)).
		Scan(&r.Hash, &r.ClientID, &params, &pushed, &r.BrowserHash, &r.CSRF, &r.UserID, &used, &exp, &created)
	if err != nil {
		return nil, fmt.Errorf("oauth request: %w", s.mapErr(err))
	}
	r.Params, r.Pushed, r.Used = []byte(params), pushed != 0, used != 0
	r.ExpiresAt, r.CreatedAt = FromMillis(exp), FromMillis(created)
	return &r, nil
}

// LoginOAuthRequest binds a live browser flow to the user who logged in
// and replaces its CSRF token. It fails with ErrNotFound unless the flow
// is live and nobody logged in yet (one conditional UPDATE).
func (s *Store) LoginOAuthRequest(ctx context.Context, hash, userID, csrf string, now time.Time) error {
	res, err := s.Exec(ctx, `UPDATE oauth_requests SET user_id = ?, csrf = ?
		WHERE hash = ? AND pushed = 0 AND used = 0 AND user_id = '' AND expires_at > ?`, userID, csrf, hash, Millis(now))
	if err != nil {
		return fmt.Errorf("login oauth request: %w", err)
	}
	return oneRow(res, "login oauth request")
}

// UseOAuthRequest marks a live request used; ErrNotFound when it is not
// live (already used, expired or unknown). One conditional UPDATE, so a
// request is used at most once across replicas.
func (s *Store) UseOAuthRequest(ctx context.Context, hash string, now time.Time) error {
	res, err := s.Exec(ctx, `UPDATE oauth_requests SET used = 1 WHERE hash = ? AND used = 0 AND expires_at > ?`, hash, Millis(now))
	if err != nil {
		return fmt.Errorf("use oauth request: %w", err)
	}
	return oneRow(res, "use oauth request")
}

// OAuthCode is an authorization code (stored under its SHA-256).
type OAuthCode struct {
	Hash, ClientID, RedirectURI, CodeChallenge string
	UserID, Scope, CredentialID                string
	NumSignatures                              int
	// HashAlgo names the algorithm of Hashes ("" when none).
	HashAlgo  string
	Hashes    [][]byte
	GrantID   string
	ExpiresAt time.Time
	CreatedAt time.Time
}

// PutOAuthCode stores a new authorization code.
func (s *Store) PutOAuthCode(ctx context.Context, c OAuthCode) error {
	_, err := s.Exec(ctx, `INSERT INTO oauth_codes (hash, client_id, redirect_uri, code_challenge, user_id, scope, credential_id,
		num_signatures, hash_algo, hashes, grant_id, used, issued, reused, expires_at, created_at)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,0,0,0,?,?)`, c.Hash, c.ClientID, c.RedirectURI, c.CodeChallenge, c.UserID, c.Scope,
		c.CredentialID, c.NumSignatures, c.HashAlgo, joinDigests(c.Hashes), c.GrantID, Millis(c.ExpiresAt), Millis(c.CreatedAt))
	if err != nil {
		return fmt.Errorf("put oauth code: %w", err)
	}
	return nil
}

const oauthCodeColumns = `hash, client_id, redirect_uri, code_challenge, user_id, scope, credential_id, num_signatures,
	hash_algo, hashes, grant_id, expires_at, created_at`

func scanOAuthCode(r scanner) (*OAuthCode, error) {
	var c OAuthCode
	var blob []byte
	var exp, created int64
	err := r.Scan(&c.Hash, &c.ClientID, &c.RedirectURI, &c.CodeChallenge, &c.UserID, &c.Scope, &c.CredentialID,
		&c.NumSignatures, &c.HashAlgo, &blob, &c.GrantID, &exp, &created)
	if err != nil {
		return nil, err
	}
	c.ExpiresAt, c.CreatedAt = FromMillis(exp), FromMillis(created)
	return &c, splitInto(&c, blob)
}

// splitInto decodes the stored digests, split by the size the hash
// algorithm fixes.
func splitInto(c *OAuthCode, blob []byte) error {
	if len(blob) == 0 {
		return nil
	}
	size := digestSize(c.HashAlgo)
	if size == 0 || len(blob)%size != 0 {
		return fmt.Errorf("stored digests: %d bytes of %q", len(blob), c.HashAlgo)
	}
	c.Hashes = splitDigests(blob, len(blob)/size)
	return nil
}

func digestSize(algo string) int {
	switch algo {
	case "SHA-256":
		return 32
	case "SHA-384":
		return 48
	case "SHA-512":
		return 64
	}
	return 0
}

// TakeOAuthCode redeems a code: one conditional UPDATE marks it used and
// returns it (expired codes too: the caller refuses them, and the code is
// burnt either way). A code redeemed before gives the code and
// ErrOAuthCodeUsed; an unknown one ErrNotFound.
func (s *Store) TakeOAuthCode(ctx context.Context, hash string) (*OAuthCode, error) {
	var c *OAuthCode
	err := s.InTx(ctx, func(tx *Tx) error {
		var err error
		c, err = scanOAuthCode(tx.QueryRow(ctx, `UPDATE oauth_codes SET used = 1 WHERE hash = ? AND used = 0 RETURNING `+oauthCodeColumns, hash))
		return err
	})
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("take oauth code: %w", s.mapErr(err))
	}
	c, err = scanOAuthCode(s.QueryRow(ctx, `SELECT `+oauthCodeColumns+` FROM oauth_codes WHERE hash = ?`, hash))
	if err != nil {
		return nil, fmt.Errorf("take oauth code: %w", s.mapErr(err))
	}
	return c, fmt.Errorf("take oauth code: %w", ErrOAuthCodeUsed)
}

// ReuseOAuthCode records a second redemption of a code and revokes its
// grant (tokens and credential SADs), in one transaction. Tokens being
// issued concurrently for the code are refused by IssueOAuthTokens.
func (s *Store) ReuseOAuthCode(ctx context.Context, hash string) error {
	return s.InTx(ctx, func(tx *Tx) error {
		var grant string
		err := tx.QueryRow(ctx, `UPDATE oauth_codes SET reused = 1 WHERE hash = ? RETURNING grant_id`, hash).Scan(&grant)
		if err != nil {
			return fmt.Errorf("reuse oauth code: %w", s.mapErr(err))
		}
		return revokeGrant(ctx, tx, grant)
	})
}

// OAuthGrant is what the tokens of one grant may do.
type OAuthGrant struct {
	ID, ClientID, UserID string
	// Scope is "service" or "credential".
	Scope        string
	CredentialID string
	Domain       string
	CreatedAt    time.Time
}

// OAuthIssue is one issuance of tokens: the grant (new, or nil to add to
// an existing one, e.g. a refresh), the tokens, the SAD of a
// credential-scope access token, and the code they are issued for.
type OAuthIssue struct {
	Grant    *OAuthGrant
	Tokens   []Token
	SAD      *SADRecord
	CodeHash string
}

// IssueOAuthTokens stores a grant's tokens (and SAD) in one transaction.
// With CodeHash, the code must not have been reused meanwhile
// (ErrConflict otherwise), so a reuse never leaves live tokens behind.
func (s *Store) IssueOAuthTokens(ctx context.Context, in OAuthIssue) error {
	return s.InTx(ctx, func(tx *Tx) error {
		if in.CodeHash != "" {
			res, err := tx.Exec(ctx, `UPDATE oauth_codes SET issued = 1 WHERE hash = ? AND reused = 0 AND issued = 0`, in.CodeHash)
			if err != nil {
				return fmt.Errorf("issue oauth tokens: %w", err)
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return fmt.Errorf("issue oauth tokens: code reused: %w", ErrConflict)
			}
		}
		if g := in.Grant; g != nil {
			if _, err := tx.Exec(ctx, `INSERT INTO oauth_grants (id, client_id, user_id, scope, credential_id, domain, created_at)
				VALUES (?,?,?,?,?,?,?)`, g.ID, g.ClientID, g.UserID, g.Scope, g.CredentialID, g.Domain, Millis(g.CreatedAt)); err != nil {
				return fmt.Errorf("put oauth grant: %w", err)
			}
		}
		for _, t := range in.Tokens {
			if _, err := tx.Exec(ctx, `INSERT INTO access_tokens (hash, kind, user_id, client_id, grant_id, expires_at, revoked, created_at)
				VALUES (?,?,?,?,?,?,?,?)`, t.Hash, t.Kind, t.UserID, t.ClientID, t.GrantID, Millis(t.ExpiresAt), Bool(t.Revoked), Millis(t.CreatedAt)); err != nil {
				return fmt.Errorf("put token: %w", err)
			}
		}
		if in.SAD != nil {
			return putSAD(ctx, tx, *in.SAD)
		}
		return nil
	})
}

// OAuthGrant returns the grant with the given id or ErrNotFound.
func (s *Store) OAuthGrant(ctx context.Context, id string) (*OAuthGrant, error) {
	var g OAuthGrant
	var created int64
	err := s.QueryRow(ctx, `SELECT id, client_id, user_id, scope, credential_id, domain, created_at FROM oauth_grants WHERE id = ?`, id).
		Scan(&g.ID, &g.ClientID, &g.UserID, &g.Scope, &g.CredentialID, &g.Domain, &created)
	if err != nil {
		return nil, fmt.Errorf("oauth grant %s: %w", id, s.mapErr(err))
	}
	g.CreatedAt = FromMillis(created)
	return &g, nil
}

// RevokeOAuthGrant revokes every token of a grant and the SADs that are
// its credential-scope access tokens, in one transaction.
func (s *Store) RevokeOAuthGrant(ctx context.Context, grantID string) error {
	return s.InTx(ctx, func(tx *Tx) error { return revokeGrant(ctx, tx, grantID) })
}

func revokeGrant(ctx context.Context, tx *Tx, grantID string) error {
	if _, err := tx.Exec(ctx, `UPDATE sads SET revoked = 1 WHERE revoked = 0 AND hash IN
		(SELECT hash FROM access_tokens WHERE grant_id = ?)`, grantID); err != nil {
		return fmt.Errorf("revoke grant SADs: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE access_tokens SET revoked = 1 WHERE grant_id = ? AND revoked = 0`, grantID); err != nil {
		return fmt.Errorf("revoke grant: %w", err)
	}
	return nil
}

// RevokeOAuthAccessToken revokes one access token and the SAD it is (for
// a credential-scope token), in one transaction.
func (s *Store) RevokeOAuthAccessToken(ctx context.Context, hash string) error {
	return s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE sads SET revoked = 1 WHERE hash = ? AND revoked = 0`, hash); err != nil {
			return fmt.Errorf("revoke token SAD: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE access_tokens SET revoked = 1 WHERE hash = ? AND revoked = 0`, hash); err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
		return nil
	})
}
