package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Setting returns the value stored under key, or ErrNotFound.
func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := s.QueryRow(ctx, "SELECT value FROM settings WHERE key = ?", key).Scan(&v)
	if err != nil {
		return "", fmt.Errorf("setting %s: %w", key, s.mapErr(err))
	}
	return v, nil
}

// SetSettingIfAbsent stores value under key unless a value is already
// there, and returns the value that is stored afterwards. Replicas starting
// together therefore agree on one value (e.g. a generated secret).
func (s *Store) SetSettingIfAbsent(ctx context.Context, key, value string) (string, error) {
	_, err := s.Exec(ctx, "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING",
		key, value, time.Now().UnixMilli())
	if err != nil && !errors.Is(err, ErrConflict) {
		return "", fmt.Errorf("setting %s: %w", key, err)
	}
	return s.Setting(ctx, key)
}

// PutSetting stores value under key, replacing any earlier value.
func (s *Store) PutSetting(ctx context.Context, key, value string) error {
	_, err := s.Exec(ctx, `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		key, value, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("setting %s: %w", key, err)
	}
	return nil
}
