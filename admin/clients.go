package admin

// The operator registers OAuth2 clients (package oauth): CSC client apps
// (authorization_code with PKCE) and integrations (client_credentials,
// bound to an automatic-signature domain). The secret is returned once,
// at registration; only its hash is kept.

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/internal/httpx"
	"github.com/sigillo/sigillo/sam"
)

// Clients is the part of sam the client registry calls.
type Clients interface {
	CreateOAuthClient(ctx context.Context, nc sam.NewOAuthClient) (*sam.OAuthClient, string, error)
	OAuthClient(ctx context.Context, id string) (*sam.OAuthClient, error)
}

var _ Clients = (*sam.Service)(nil)

// CreateClientRequest is the body of POST /clients.
type CreateClientRequest struct {
	Name         string   `json:"name"`
	RedirectURIs []string `json:"redirectURIs"`
	Domain       string   `json:"domain,omitempty"`
	GrantTypes   []string `json:"grantTypes"`
	Scopes       []string `json:"scopes"`
}

// CreateClientResponse is the answer to POST /clients: the secret is
// shown only here.
type CreateClientResponse struct {
	ClientID     string `json:"clientID"`
	ClientSecret string `json:"clientSecret"`
}

// ClientResponse is the body of GET /clients/{id} (no secret).
type ClientResponse struct {
	ClientID     string   `json:"clientID"`
	Name         string   `json:"name"`
	RedirectURIs []string `json:"redirectURIs"`
	Domain       string   `json:"domain,omitempty"`
	GrantTypes   []string `json:"grantTypes"`
	Scopes       []string `json:"scopes"`
	CreatedAt    string   `json:"createdAt"`
}

type clientsHandler struct {
	svc Clients
	log *slog.Logger
}

// RegisterClients mounts, on r (already /admin/v1 behind the operator
// token): POST /clients → 201 {clientID, clientSecret}, and
// GET /clients/{id}.
func RegisterClients(r gin.IRouter, svc Clients, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &clientsHandler{svc: svc, log: log}
	r.POST("/clients", h.create)
	r.GET("/clients/:id", h.get)
}

func (h *clientsHandler) fail(c *gin.Context, err error) { httpx.WriteError(c, h.log, httpx.REST, err) }

func (h *clientsHandler) create(c *gin.Context) {
	var req CreateClientRequest
	if err := httpx.DecodeJSON(c, 64<<10, &req); err != nil {
		h.fail(c, err)
		return
	}
	cl, secret, err := h.svc.CreateOAuthClient(c.Request.Context(), sam.NewOAuthClient{
		Name: req.Name, RedirectURIs: req.RedirectURIs, Domain: req.Domain, GrantTypes: req.GrantTypes, Scopes: req.Scopes,
	})
	if err != nil {
		h.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, CreateClientResponse{ClientID: cl.ID, ClientSecret: secret})
}

func (h *clientsHandler) get(c *gin.Context) {
	cl, err := h.svc.OAuthClient(c.Request.Context(), c.Param("id"))
	if err != nil {
		h.fail(c, err)
		return
	}
	uris := cl.RedirectURIs
	if uris == nil {
		uris = []string{}
	}
	c.JSON(http.StatusOK, ClientResponse{ClientID: cl.ID, Name: cl.Name, RedirectURIs: uris, Domain: cl.Domain,
		GrantTypes: cl.GrantTypes, Scopes: cl.Scopes, CreatedAt: cl.CreatedAt.UTC().Format(time.RFC3339)})
}
