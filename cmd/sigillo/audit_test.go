package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/store/sqlite"
)

// auditDB makes a SQLite database with n audit records, one per hour from
// 2026-01-01T01:00Z, optionally tampered with by the given statements, and
// returns its path and the head hash.
func auditDB(t *testing.T, n int, tamper ...string) (string, string) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sigillo.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l, err := audit.Open(ctx, st, audit.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		now = now.Add(time.Hour)
		err := l.Record(ctx, audit.Event{Actor: "user:1", Action: "signature.sign", Object: fmt.Sprintf("credential:%d", i), Outcome: "success"})
		if err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	head, _ := st.AuditHead(ctx)
	for _, q := range tamper {
		if _, err := st.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return path, hex.EncodeToString(head.Hash)
}

var dropAuditGuards = []string{"DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"}

func TestAuditVerifyCommand(t *testing.T) {
	tests := []struct {
		name     string
		records  int
		tamper   []string
		wantCode int
		want     string
	}{
		{"intact", 10, nil, 0, "audit chain intact: 10 records, head "},
		{"empty", 0, nil, 0, "audit chain intact: 0 records, head " + strings.Repeat("0", 64)},
		{"actor edited", 10, append(dropAuditGuards, "UPDATE audit_log SET actor = 'user:2' WHERE seq = 4"), 1,
			"audit chain BROKEN at sequence 4: hash mismatch"},
		{"row deleted", 10, append(dropAuditGuards, "DELETE FROM audit_log WHERE seq = 6"), 1,
			"audit chain BROKEN at sequence 6: missing sequence"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, head := auditDB(t, tt.records, tt.tamper...)
			var out, errOut bytes.Buffer
			code := runAudit(context.Background(), []string{"verify", "--database", path}, &out, &errOut)
			if code != tt.wantCode || !strings.Contains(out.String(), tt.want) {
				t.Fatalf("exit %d, want %d; stdout %q does not contain %q; stderr %q", code, tt.wantCode, out.String(), tt.want, errOut.String())
			}
			if tt.wantCode == 0 && tt.records > 0 && !strings.Contains(out.String(), head) {
				t.Fatalf("stdout %q does not name the head %s", out.String(), head)
			}
		})
	}
}

func TestAuditVerifyRefusesAMissingDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.db")
	var out, errOut bytes.Buffer
	if code := runAudit(context.Background(), []string{"verify", "--database", "sqlite://" + path}, &out, &errOut); code != 2 {
		t.Fatalf("exit %d, want 2 (stderr %q)", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "does not exist") {
		t.Fatalf("stderr %q does not say the database is missing", errOut.String())
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("verify created %s (stat: %v)", path, err)
	}
}

func TestAuditExportCommand(t *testing.T) {
	path, _ := auditDB(t, 5)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		seqs     []int64
	}{
		{"all", nil, 0, []int64{1, 2, 3, 4, 5}},
		{"since", []string{"--since", "2026-01-01T03:00:00Z"}, 0, []int64{3, 4, 5}},
		{"since with offset", []string{"--since", "2026-01-01T05:30:00+01:00"}, 0, []int64{5}},
		{"bad since", []string{"--since", "yesterday"}, 2, nil},
		{"bad format", []string{"--format", "csv"}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"export", "--database", path, "--format", "jsonl"}, tt.args...)
			code := runAudit(context.Background(), args, &out, &errOut)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tt.wantCode, errOut.String())
			}
			var seqs []int64
			sc := bufio.NewScanner(&out)
			for sc.Scan() {
				var r audit.ExportedRecord
				if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
					t.Fatalf("line %q: %v", sc.Text(), err)
				}
				seqs = append(seqs, r.Seq)
			}
			if fmt.Sprint(seqs) != fmt.Sprint(tt.seqs) {
				t.Fatalf("exported %v, want %v", seqs, tt.seqs)
			}
		})
	}
}

// TestAuditVerifyBinaryExitCodes runs the built binary, as an operator's
// script would, with the database from SIGILLO_DATABASE.
func TestAuditVerifyBinaryExitCodes(t *testing.T) {
	intact, _ := auditDB(t, 3)
	tampered, _ := auditDB(t, 3, append(dropAuditGuards, "UPDATE audit_log SET outcome = 'failure:x' WHERE seq = 2")...)
	tests := []struct {
		name string
		db   string
		code int
	}{
		{"intact", intact, 0},
		{"tampered", tampered, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binary, "audit", "verify")
			cmd.Env = cleanEnv("SIGILLO_DATABASE=" + tt.db)
			out, err := cmd.Output()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, out)
			}
		})
	}
}
