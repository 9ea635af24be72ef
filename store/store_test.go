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
