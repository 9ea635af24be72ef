package admin_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/admin"
	"github.com/sigillo/sigillo/internal/httpx"
	"github.com/sigillo/sigillo/sam/samtest"
)

func TestClients_registerShowsSecretOnceAndValidates(t *testing.T) {
	gin.SetMode(gin.TestMode)
	e := samtest.New(t)
	r := gin.New()
	admin.RegisterClients(r.Group("/admin/v1", httpx.RequireToken(token)), e.Service, nil)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	body := map[string]any{"name": "ACME batch", "domain": "acme.example", "redirectURIs": []string{"https://app.example/cb"},
		"grantTypes": []string{"authorization_code", "client_credentials"}, "scopes": []string{"service", "credential"}}
	if st, _ := call(t, srv, "POST", "/admin/v1/clients", body, ""); st != 401 {
		t.Fatalf("without the operator token: %d", st)
	}
	st, m := call(t, srv, "POST", "/admin/v1/clients", body, token)
	if st != 201 || m["clientID"] == "" || len(m["clientSecret"].(string)) < 40 {
		t.Fatalf("register: %d %v", st, m)
	}
	id := m["clientID"].(string)
	st, got := call(t, srv, "GET", "/admin/v1/clients/"+id, nil, token)
	if st != 200 || got["domain"] != "acme.example" || got["name"] != "ACME batch" || got["clientSecret"] != nil ||
		len(got["grantTypes"].([]any)) != 2 || len(got["redirectURIs"].([]any)) != 1 {
		t.Fatalf("get: %d %v", st, got)
	}
	if st, _ := call(t, srv, "GET", "/admin/v1/clients/cl-nobody", nil, token); st != 404 {
		t.Fatalf("unknown client: %d", st)
	}
	cases := []struct {
		name string
		body map[string]any
		want string
	}{
		{"no_name", map[string]any{"redirectURIs": []string{"https://a.example/cb"}}, "name"},
		{"http_redirect_off_loopback", map[string]any{"name": "x", "redirectURIs": []string{"http://a.example/cb"}}, "https"},
		{"redirect_with_fragment", map[string]any{"name": "x", "redirectURIs": []string{"https://a.example/cb#f"}}, "fragment"},
		{"code_without_redirect", map[string]any{"name": "x"}, "redirectURIs"},
		{"client_credentials_without_domain", map[string]any{"name": "x", "grantTypes": []string{"client_credentials"}}, "domain"},
		{"unknown_grant", map[string]any{"name": "x", "grantTypes": []string{"password"}}, "grantTypes"},
		{"unknown_scope", map[string]any{"name": "x", "redirectURIs": []string{"https://a.example/cb"}, "scopes": []string{"admin"}}, "scopes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, m := call(t, srv, "POST", "/admin/v1/clients", tc.body, token)
			if st != 400 || !strings.Contains(m["error_description"].(string), tc.want) {
				t.Fatalf("got %d %v, want 400 mentioning %q", st, m, tc.want)
			}
		})
	}
}
