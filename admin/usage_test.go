package admin_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/admin"
	"github.com/sigillo/sigillo/internal/httpx"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
)

func TestUsageRoutes(t *testing.T) {
	gin.SetMode(gin.TestMode)
	e := samtest.New(t)
	r := gin.New()
	g := r.Group("/admin/v1", httpx.RequireToken(token))
	admin.NewUsage(e.Service, nil).Register(g)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	u := e.User(t, "integ")
	cc := e.Credential(t, u, sam.NewCredential{Domain: "acme.example", Alias: "A1"})
	base := "/admin/v1/credentials/" + cc.CredentialID
	for _, tc := range []struct {
		name, method, path string
		body               any
		tok                string
		status             int
		want               string // in error_description, or a member of the answer
	}{
		{"usage_needs_the_operator_token", http.MethodGet, base + "/usage", nil, "wrong", http.StatusUnauthorized, ""},
		{"usage_of_a_fresh_credential", http.MethodGet, base + "/usage", nil, token, http.StatusOK, "totalSignatures"},
		{"usage_of_an_unknown_credential", http.MethodGet, "/admin/v1/credentials/nope/usage", nil, token, http.StatusNotFound, "Unknown credential"},
		{"limit_set", http.MethodPost, base + "/limit", map[string]any{"maxSignatures": 50}, token, http.StatusOK, "maxSignatures"},
		{"limit_as_string", http.MethodPost, base + "/limit", map[string]any{"maxSignatures": "60"}, token, http.StatusOK, "maxSignatures"},
		{"limit_missing", http.MethodPost, base + "/limit", map[string]any{}, token, http.StatusBadRequest, "maxSignatures"},
		{"limit_negative", http.MethodPost, base + "/limit", map[string]any{"maxSignatures": -1}, token, http.StatusBadRequest, "maxSignatures"},
		{"limit_not_a_number", http.MethodPost, base + "/limit", map[string]any{"maxSignatures": "many"}, token, http.StatusBadRequest, ""},
		{"history_empty", http.MethodGet, base + "/history", nil, token, http.StatusOK, "entries"},
		{"history_dates", http.MethodGet, base + "/history?from=2026-01-01&to=2026-12-31T00:00:00Z&page=0&size=10", nil, token, http.StatusOK, "entries"},
		{"history_bad_from", http.MethodGet, base + "/history?from=yesterday", nil, token, http.StatusBadRequest, "from"},
		{"history_bad_page", http.MethodGet, base + "/history?page=x", nil, token, http.StatusBadRequest, "page"},
		{"history_size_too_big", http.MethodGet, base + "/history?size=5000", nil, token, http.StatusBadRequest, "size"},
		{"history_to_before_from", http.MethodGet, base + "/history?from=2026-02-01&to=2026-01-01", nil, token, http.StatusBadRequest, "to must be after from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := call(t, srv, tc.method, tc.path, tc.body, tc.tok)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, out)
			}
			if tc.want == "" {
				return
			}
			if _, ok := out[tc.want]; ok {
				return
			}
			if d, _ := out["error_description"].(string); !strings.Contains(d, tc.want) {
				t.Fatalf("answer %v lacks %q", out, tc.want)
			}
		})
	}
	status, out := call(t, srv, http.MethodGet, base+"/usage", nil, token)
	if status != 200 || out["maxSignatures"] != float64(60) || out["totalSignatures"] != float64(0) {
		t.Fatalf("usage after limits: %d %v", status, out)
	}
}
