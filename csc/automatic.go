package csc

// Automatic signature: credentials/list with userID = an alias, for
// domain-scoped principals (sam.Service.CredentialsByAlias says who is).
// Everyone else keeps CSC's answer "userID parameter MUST be null".

import (
	"context"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/sam"
)

// AliasLister resolves a domain alias; *sam.Service implements it.
type AliasLister interface {
	CredentialsByAlias(ctx context.Context, p *sam.Principal, alias string) ([]sam.CredentialInfo, error)
}

var _ AliasLister = (*sam.Service)(nil)

// aliasCredsKey is where aliasUserID leaves the resolved credentials.
const aliasCredsKey = "csc.aliasCredentials"

// aliasUserID is the front of credentials/list: a userID is resolved as
// an alias, and the request goes on without it.
func (a *API) aliasUserID(v *version) gin.HandlerFunc {
	return func(c *gin.Context) {
		body, err := a.readBody(c)
		if err != nil {
			c.Abort()
			v.fail(c, err)
			return
		}
		f, err := parseFields(body)
		if err != nil || !f.has("userID") {
			restoreBody(c, body)
			c.Next()
			return
		}
		alias, err := f.str("userID", true)
		if err != nil {
			c.Abort()
			v.fail(c, err)
			return
		}
		al, ok := a.svc.(AliasLister)
		if !ok {
			c.Abort()
			v.fail(c, sam.ErrNotDomainScoped)
			return
		}
		creds, err := al.CredentialsByAlias(c.Request.Context(), principal(c), alias)
		if err != nil {
			c.Abort()
			v.fail(c, err)
			return
		}
		rest, err := f.without("userID")
		if err != nil {
			c.Abort()
			v.fail(c, err)
			return
		}
		c.Set(aliasCredsKey, creds)
		restoreBody(c, rest)
		c.Next()
	}
}

// listCredentials is what credentials/list lists: the alias's
// credentials when aliasUserID resolved one, else the caller's.
func (v *version) listCredentials(c *gin.Context) ([]sam.CredentialInfo, error) {
	if creds, ok := c.Get(aliasCredsKey); ok {
		return creds.([]sam.CredentialInfo), nil
	}
	return v.a.svc.ListCredentials(c.Request.Context(), principal(c))
}
