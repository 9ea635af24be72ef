package sam

import (
	"context"
	"time"

	"github.com/sigillo/sigillo/otp"
	"github.com/sigillo/sigillo/store"
)

// Store is the persistence sam needs; *store.Store satisfies it.
type Store interface {
	otp.TOTPStore
	otp.SMSStore

	CreateUser(ctx context.Context, u store.User) error
	User(ctx context.Context, id string) (*store.User, error)
	SetPassword(ctx context.Context, id, hash string, mustChange bool, at time.Time) error

	CreateCredential(ctx context.Context, c store.Credential) error
	Credential(ctx context.Context, id string) (*store.Credential, error)
	CredentialsByUser(ctx context.Context, userID string) ([]store.Credential, error)
	SetKeyStatus(ctx context.Context, id, status string) error
	AddPINTry(ctx context.Context, id string, max int) (int, bool, error)
	ResetPINTries(ctx context.Context, id string, max int) (bool, error)
	AddOTPTry(ctx context.Context, id string, max int) (int, bool, error)
	ResetOTPTries(ctx context.Context, id string, max int) (bool, error)

	PutToken(ctx context.Context, t store.Token) error
	Token(ctx context.Context, hash string) (*store.Token, error)
	RevokeToken(ctx context.Context, hash string) (bool, error)
	RevokeGrant(ctx context.Context, grantID string) error

	PutSAD(ctx context.Context, r store.SADRecord) error
	ConsumeSAD(ctx context.Context, sadHash, userID, credentialID, hashAlgo string, hashes [][]byte, now time.Time) error
	ExtendSAD(ctx context.Context, oldHash, userID, credentialID string, check [][]byte, next store.SADRecord, now time.Time) (*store.SADRecord, error)

	AddHistory(ctx context.Context, h store.HistoryEntry) error
}

var _ Store = (*store.Store)(nil)
