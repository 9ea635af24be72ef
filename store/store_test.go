package store

import "testing"

func TestRebind(t *testing.T) {
	tests := []struct {
		name  string
		d     Dialect
		query string
		want  string
	}{
		{"sqlite keeps question marks", SQLite, "SELECT ? , ?", "SELECT ? , ?"},
		{"postgres numbers them", Postgres, "UPDATE t SET a = ? WHERE b = ? AND c = ?", "UPDATE t SET a = $1 WHERE b = $2 AND c = $3"},
		{"postgres without placeholders", Postgres, "SELECT 1", "SELECT 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Rebind(tt.d, tt.query); got != tt.want {
				t.Errorf("Rebind = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIsWrite(t *testing.T) {
	tests := []struct {
		query string
		want  bool
	}{
		{"SELECT 1", false},
		{"  select * from t", false},
		{"WITH x AS (SELECT 1) SELECT * FROM x", false},
		{"INSERT INTO t VALUES (1)", true},
		{"\n\t\tUPDATE t SET a = 1 RETURNING a", true},
		{"delete from t", true},
		{"REPLACE INTO t VALUES (1)", true},
		{"(UPDATE", true},
		{"", false},
		{"UPD", false},
	}
	for _, tt := range tests {
		if got := isWrite(tt.query); got != tt.want {
			t.Errorf("isWrite(%q) = %v, want %v", tt.query, got, tt.want)
		}
	}
}
