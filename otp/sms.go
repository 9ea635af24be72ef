package otp

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"time"

	"github.com/sigillo/sigillo/store"
)

// RateLimitError says that too many codes were sent to a credential.
type RateLimitError struct{ RetryAfter time.Duration }

// Error describes the limit.
func (e *RateLimitError) Error() string {
	return fmt.Sprintf("otp: too many codes sent, retry after %s", e.RetryAfter)
}

// ErrNoSender is returned when SMS codes are requested but no Sender is configured.
var ErrNoSender = errors.New("otp: no SMS sender configured")

// SMSStore is the state online OTP needs from the store.
type SMSStore interface {
	PutSMSChallenge(ctx context.Context, c store.SMSChallenge) error
	ActiveSMSChallenge(ctx context.Context, credentialID string, now time.Time) (*store.SMSChallenge, error)
	SMSAttempt(ctx context.Context, id string, max int, now time.Time) (bool, error)
	UseSMSChallenge(ctx context.Context, id string) (bool, error)
	TakeSendToken(ctx context.Context, key string, window time.Duration, max int, now time.Time) (bool, time.Duration, error)
}

// SMS sends and verifies online one-time codes.
type SMS struct {
	cfg    Config
	st     SMSStore
	sender Sender
	now    func() time.Time
}

// NewSMS returns the online OTP service; now nil means time.Now.
func NewSMS(cfg Config, st SMSStore, sender Sender, now func() time.Time) *SMS {
	if now == nil {
		now = time.Now
	}
	return &SMS{cfg: cfg.WithDefaults(), st: st, sender: sender, now: now}
}

// Binding is the value an SMS code is bound to for a set of hashes: a
// SHA-256 over the sorted hashes, so order does not matter. No hashes
// gives nil (an unbound code).
func Binding(hashes [][]byte) []byte {
	if len(hashes) == 0 {
		return nil
	}
	sorted := make([][]byte, len(hashes))
	copy(sorted, hashes)
	sort.Slice(sorted, func(i, j int) bool { return bytes.Compare(sorted[i], sorted[j]) < 0 })
	h := sha256.New()
	for _, d := range sorted {
		var l [4]byte
		l[0], l[1], l[2], l[3] = byte(len(d)>>24), byte(len(d)>>16), byte(len(d)>>8), byte(len(d))
		h.Write(l[:])
		h.Write(d)
	}
	return h.Sum(nil)
}

// codeHash salts the code with the challenge's random id: the codes are
// short, so the hash guards only against casual reading of the table;
// expiry and the attempt limit are what make guessing useless.
func codeHash(id, code string) []byte {
	m := hmac.New(sha256.New, []byte(id))
	m.Write([]byte(code))
	return m.Sum(nil)
}

func randomDigits(n int) (string, error) {
	b := make([]byte, n)
	for i := range b {
		v, err := rand.Int(rand.Reader, big.NewInt(10))
		if err != nil {
			return "", err
		}
		b[i] = byte('0' + v.Int64())
	}
	return string(b), nil
}

// Send generates a code for the credential, stores its hash (voiding any
// earlier code) and texts it to phone. binding, if not nil, ties the code
// to the hashes being authorized (see Binding). Too many sends give a
// *RateLimitError.
func (s *SMS) Send(ctx context.Context, credentialID, phone string, binding []byte) error {
	if s.sender == nil {
		return ErrNoSender
	}
	now := s.now()
	ok, wait, err := s.st.TakeSendToken(ctx, "sms:"+credentialID, s.cfg.SendWindow, s.cfg.SendMax, now)
	if err != nil {
		return fmt.Errorf("sms otp: %w", err)
	}
	if !ok {
		return &RateLimitError{RetryAfter: wait}
	}
	code, err := randomDigits(s.cfg.Digits)
	if err != nil {
		return fmt.Errorf("sms otp: %w", err)
	}
	var idb [16]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return fmt.Errorf("sms otp: %w", err)
	}
	id := hex.EncodeToString(idb[:])
	c := store.SMSChallenge{
		ID: id, CredentialID: credentialID, CodeHash: codeHash(id, code), Binding: binding,
		ExpiresAt: now.Add(s.cfg.SMSTTL), CreatedAt: now,
	}
	if err := s.st.PutSMSChallenge(ctx, c); err != nil {
		return fmt.Errorf("sms otp: %w", err)
	}
	msg := fmt.Sprintf("%s: your signing code is %s (valid %d s)", s.cfg.Issuer, code, int(s.cfg.SMSTTL/time.Second))
	if err := s.sender.Send(ctx, phone, msg); err != nil {
		return fmt.Errorf("sms otp: send: %w", err)
	}
	return nil
}

// Verify checks code against the credential's pending code. Every call
// counts as an attempt; after SMSMaxAttempts the code is void even if the
// right one comes next. A correct code is used up. binding must equal the
// one given at Send when that was not nil.
func (s *SMS) Verify(ctx context.Context, credentialID, code string, binding []byte) error {
	now := s.now()
	c, err := s.st.ActiveSMSChallenge(ctx, credentialID, now)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNoChallenge
	}
	if err != nil {
		return fmt.Errorf("sms otp: %w", err)
	}
	ok, err := s.st.SMSAttempt(ctx, c.ID, s.cfg.SMSMaxAttempts, now)
	if err != nil {
		return fmt.Errorf("sms otp: %w", err)
	}
	if !ok {
		return ErrNoChallenge
	}
	if !hmac.Equal(codeHash(c.ID, code), c.CodeHash) {
		return ErrInvalid
	}
	if c.Binding != nil && !hmac.Equal(c.Binding, binding) {
		return ErrBinding
	}
	used, err := s.st.UseSMSChallenge(ctx, c.ID)
	if err != nil {
		return fmt.Errorf("sms otp: %w", err)
	}
	if !used {
		return ErrReplayed
	}
	return nil
}

// OutboxStore is where the dev sender writes.
type OutboxStore interface {
	PutOutbox(ctx context.Context, m store.OutboxMessage) error
}

// Outbox is the development Sender: it "sends" by writing to the store's
// outbox, which the operator API lists (GET /admin/v1/outbox).
type Outbox struct {
	st  OutboxStore
	now func() time.Time
}

// NewOutbox returns the dev sender; now nil means time.Now.
func NewOutbox(st OutboxStore, now func() time.Time) *Outbox {
	if now == nil {
		now = time.Now
	}
	return &Outbox{st: st, now: now}
}

var _ Sender = (*Outbox)(nil)

// Send stores the message in the outbox.
func (o *Outbox) Send(ctx context.Context, phone, message string) error {
	var idb [16]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return err
	}
	return o.st.PutOutbox(ctx, store.OutboxMessage{ID: hex.EncodeToString(idb[:]), To: phone, Body: message, CreatedAt: o.now()})
}
