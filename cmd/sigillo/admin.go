package main

// `sigillo admin ...`: the operator CLI. It is a thin client of the
// operator HTTP API (/admin/v1), so it works against any replica and needs
// no database or HSM access of its own.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

func init() {
	commands["admin"] = command{summary: "operator commands: users, credentials, certificates, SMS outbox, mail queue (via the admin API)", run: adminMain}
}

const adminUsage = `usage: sigillo admin [--server URL] [--token TOKEN] <command> [flags]

commands:
  user create --username U --password P|- --email E --phone N --given-name G --surname S [--fiscal-code F] [--temporary]
  user get ID
  credential create --user U (--pin 12345678 | --activation puk) [--key-algo ecdsa-p256] [--otp totp|sms|none]
                    [--scal 1|2] [--multisign N] [--domain D --alias A] [--description TEXT]
  credential get ID
  credential enable ID
  credential disable ID
  credential usage ID
  credential limit ID --max N                (0 removes the limit)
  credential history ID [--from T] [--to T] [--page N] [--size N]
  identification list [--status pending|approved|rejected|issued] [--limit N]
  identification get ID
  identification approve ID [--operator NAME]
  identification reject ID --reason TEXT [--operator NAME]
  client create --name N [--redirect-uri URI ...] [--domain D] [--grant G ...] [--scope S ...]
  client get ID
  outbox [--to PHONE] [--limit N]
  emails [--to ADDRESS] [--limit N]          (the dev e-mail outbox)
  mail-queue [--state pending|sent|failed] [--limit N]
  cert issue --csr FILE.pem [--owner ID] [--qualified]
  cert get SERIAL
  cert suspend|reactivate SERIAL
  cert revoke SERIAL [--reason keyCompromise|cessationOfOperation|superseded|affiliationChanged|unspecified]

The token comes from --token or SIGILLO_ADMIN_TOKEN; the server from
--server or SIGILLO_ADMIN_SERVER (default http://127.0.0.1:8080).
`

type adminClient struct {
	server, token string
	http          *http.Client
	out           io.Writer
}

func adminMain(args []string) int {
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, adminUsage) }
	server := fs.String("server", envOr("SIGILLO_ADMIN_SERVER", "http://127.0.0.1:8080"), "sigillo base URL")
	token := fs.String("token", os.Getenv("SIGILLO_ADMIN_TOKEN"), "operator token (default $SIGILLO_ADMIN_TOKEN)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return 2
	}
	if *token == "" {
		fmt.Fprintln(os.Stderr, "sigillo admin: no operator token (--token or SIGILLO_ADMIN_TOKEN)")
		return 2
	}
	c := &adminClient{server: strings.TrimRight(*server, "/"), token: *token, http: &http.Client{Timeout: 60 * time.Second}, out: os.Stdout}
	return c.run(rest)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func (c *adminClient) run(args []string) int {
	usage := func() int { fmt.Fprint(os.Stderr, adminUsage); return 2 }
	switch {
	case len(args) >= 2 && args[0] == "user" && args[1] == "create":
		return c.userCreate(args[2:])
	case len(args) == 3 && args[0] == "user" && args[1] == "get":
		return c.do(http.MethodGet, "/users/"+url.PathEscape(args[2]), nil)
	case len(args) >= 2 && args[0] == "credential" && args[1] == "create":
		return c.credentialCreate(args[2:])
	case len(args) == 3 && args[0] == "credential" && args[1] == "get":
		return c.do(http.MethodGet, "/credentials/"+url.PathEscape(args[2]), nil)
	case len(args) == 3 && args[0] == "credential" && (args[1] == "enable" || args[1] == "disable"):
		return c.do(http.MethodPost, "/credentials/"+url.PathEscape(args[2])+"/"+args[1], nil)
	case len(args) == 3 && args[0] == "cert" && args[1] == "get":
		return c.do(http.MethodGet, "/certificates/"+url.PathEscape(args[2]), nil)
	case len(args) == 3 && args[0] == "cert" && (args[1] == "suspend" || args[1] == "reactivate"):
		return c.do(http.MethodPost, "/certificates/"+url.PathEscape(args[2])+"/"+args[1], nil)
	case len(args) >= 3 && args[0] == "cert" && args[1] == "revoke":
		fs := flag.NewFlagSet("cert revoke", flag.ContinueOnError)
		reason := fs.String("reason", "unspecified", "CRL reason")
		if err := fs.Parse(args[3:]); err != nil {
			return 2
		}
		return c.do(http.MethodPost, "/certificates/"+url.PathEscape(args[2])+"/revoke", map[string]string{"reason": *reason})
	case len(args) >= 1 && args[0] == "outbox":
		fs := flag.NewFlagSet("outbox", flag.ContinueOnError)
		to := fs.String("to", "", "phone number")
		limit := fs.Int("limit", 0, "at most this many messages")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		q := url.Values{}
		if *to != "" {
			q.Set("to", *to)
		}
		if *limit > 0 {
			q.Set("limit", fmt.Sprint(*limit))
		}
		path := "/outbox"
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		return c.do(http.MethodGet, path, nil)
	case len(args) == 3 && args[0] == "credential" && args[1] == "usage":
		return c.do(http.MethodGet, "/credentials/"+url.PathEscape(args[2])+"/usage", nil)
	case len(args) >= 3 && args[0] == "credential" && args[1] == "limit":
		fs := flag.NewFlagSet("credential limit", flag.ContinueOnError)
		max := fs.Int64("max", -1, "signatures allowed in total (0 removes the limit)")
		if err := fs.Parse(args[3:]); err != nil {
			return 2
		}
		if *max < 0 {
			fmt.Fprintln(os.Stderr, "sigillo admin: credential limit needs --max N")
			return 2
		}
		return c.do(http.MethodPost, "/credentials/"+url.PathEscape(args[2])+"/limit", map[string]int64{"maxSignatures": *max})
	case len(args) >= 3 && args[0] == "credential" && args[1] == "history":
		return c.query("credential history", "/credentials/"+url.PathEscape(args[2])+"/history", args[3:], "from", "to", "page", "size")
	case len(args) >= 2 && args[0] == "identification" && args[1] == "list":
		return c.query("identification list", "/identifications", args[2:], "status", "limit")
	case len(args) == 3 && args[0] == "identification" && args[1] == "get":
		return c.do(http.MethodGet, "/identifications/"+url.PathEscape(args[2]), nil)
	case len(args) >= 3 && args[0] == "identification" && (args[1] == "approve" || args[1] == "reject"):
		fs := flag.NewFlagSet("identification "+args[1], flag.ContinueOnError)
		reason := fs.String("reason", "", "why (required to reject)")
		operator := fs.String("operator", "", "who decides (default: admin)")
		if err := fs.Parse(args[3:]); err != nil {
			return 2
		}
		return c.do(http.MethodPost, "/identifications/"+url.PathEscape(args[2])+"/"+args[1], map[string]string{"reason": *reason, "operator": *operator})
	case len(args) >= 2 && args[0] == "client" && args[1] == "create":
		return c.clientCreate(args[2:])
	case len(args) == 3 && args[0] == "client" && args[1] == "get":
		return c.do(http.MethodGet, "/clients/"+url.PathEscape(args[2]), nil)
	case len(args) >= 1 && args[0] == "emails":
		return c.query("emails", "/emails", args[1:], "to", "limit")
	case len(args) >= 2 && args[0] == "cert" && args[1] == "issue":
		fs := flag.NewFlagSet("cert issue", flag.ContinueOnError)
		csr := fs.String("csr", "", "PKCS#10 request, PEM")
		owner := fs.String("owner", "", "who the certificate is for (recorded with it)")
		qualified := fs.Bool("qualified", false, "qualified certificate (QC statements, QCP-n-qscd)")
		if err := fs.Parse(args[2:]); err != nil {
			return 2
		}
		pem, err := os.ReadFile(*csr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sigillo admin: --csr:", err)
			return 2
		}
		return c.do(http.MethodPost, "/certificates", map[string]any{"csr": string(pem), "owner": *owner, "qualified": *qualified})
	case len(args) >= 1 && args[0] == "mail-queue":
		fs := flag.NewFlagSet("mail-queue", flag.ContinueOnError)
		state := fs.String("state", "pending", "pending, sent or failed")
		limit := fs.Int("limit", 0, "at most this many messages")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		q := url.Values{"state": {*state}}
		if *limit > 0 {
			q.Set("limit", fmt.Sprint(*limit))
		}
		return c.do(http.MethodGet, "/mail-queue?"+q.Encode(), nil)
	}
	return usage()
}

// query GETs path with the named string flags as query parameters.
func (c *adminClient) query(name, path string, args []string, params ...string) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	vals := map[string]*string{}
	for _, p := range params {
		vals[p] = fs.String(p, "", p)
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	q := url.Values{}
	for _, p := range params {
		if v := *vals[p]; v != "" {
			q.Set(p, v)
		}
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return c.do(http.MethodGet, path, nil)
}

// repeated is a flag that may be given several times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func (c *adminClient) clientCreate(args []string) int {
	fs := flag.NewFlagSet("client create", flag.ContinueOnError)
	name := fs.String("name", "", "the application's name, shown on the consent page")
	domain := fs.String("domain", "", "automatic-signature domain the client acts for (client_credentials)")
	var uris, grants, scopes repeated
	fs.Var(&uris, "redirect-uri", "redirect URI (repeat for several)")
	fs.Var(&grants, "grant", "grant type: authorization_code, client_credentials, refresh_token (repeat)")
	fs.Var(&scopes, "scope", "scope: service, credential (repeat)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	body := map[string]any{"name": *name, "redirectURIs": []string(uris), "grantTypes": []string(grants), "scopes": []string(scopes)}
	if *domain != "" {
		body["domain"] = *domain
	}
	return c.do(http.MethodPost, "/clients", body)
}

func (c *adminClient) userCreate(args []string) int {
	fs := flag.NewFlagSet("user create", flag.ContinueOnError)
	body := map[string]any{}
	username := fs.String("username", "", "username (the CSC userID)")
	password := fs.String("password", "", `initial password ("-" reads one line from stdin, keeping it out of ps)`)
	email := fs.String("email", "", "e-mail address")
	phone := fs.String("phone", "", "mobile phone (E.164)")
	given := fs.String("given-name", "", "given name")
	surname := fs.String("surname", "", "surname")
	fiscal := fs.String("fiscal-code", "", "fiscal code (optional)")
	temporary := fs.Bool("temporary", false, "the user must change the password at first login")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *password == "-" {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			fmt.Fprintln(os.Stderr, "sigillo admin: reading the password from stdin:", err)
			return 2
		}
		*password = strings.TrimRight(line, "\r\n")
	}
	body["username"], body["password"], body["email"], body["phone"] = *username, *password, *email, *phone
	body["givenName"], body["surname"] = *given, *surname
	if *fiscal != "" {
		body["fiscalCode"] = *fiscal
	}
	if *temporary {
		body["temporary"] = true
	}
	return c.do(http.MethodPost, "/users", body)
}

func (c *adminClient) credentialCreate(args []string) int {
	fs := flag.NewFlagSet("credential create", flag.ContinueOnError)
	user := fs.String("user", "", "owner's userID")
	pin := fs.String("pin", "", "PIN (8 digits): the credential is active at once")
	activation := fs.String("activation", "", `"puk": issued, not activated (no --pin)`)
	algo := fs.String("key-algo", "ecdsa-p256", "rsa-2048|rsa-3072|ecdsa-p256|ecdsa-p384")
	otpType := fs.String("otp", "none", "totp|sms|none")
	scal := fs.Int("scal", 1, "1 or 2")
	multisign := fs.Int("multisign", 1, "maximum signatures per SAD")
	domain := fs.String("domain", "", "automatic-signature domain")
	alias := fs.String("alias", "", "automatic-signature alias")
	desc := fs.String("description", "", "description")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	body := map[string]any{"userID": *user, "keyAlgo": *algo, "otp": *otpType, "scal": *scal, "multisign": *multisign}
	for k, v := range map[string]string{"pin": *pin, "activation": *activation, "domain": *domain, "alias": *alias, "description": *desc} {
		if v != "" {
			body[k] = v
		}
	}
	return c.do(http.MethodPost, "/credentials", body)
}

// do calls the API and prints the JSON answer (indented) on stdout, or
// the error on stderr; the exit code is 0 for 2xx, 1 otherwise.
func (c *adminClient) do(method, path string, body any) int {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sigillo admin:", err)
			return 1
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, c.server+"/admin/v1"+path, rd)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sigillo admin:", err)
		return 2
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sigillo admin:", err)
		return 1
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		fmt.Fprintln(os.Stderr, "sigillo admin:", err)
		return 1
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, data, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(data)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			fmt.Fprintf(os.Stderr, "sigillo admin: %s: %s (HTTP %d)\n", e.Error, e.Description, resp.StatusCode)
		} else {
			fmt.Fprintf(os.Stderr, "sigillo admin: HTTP %d: %s\n", resp.StatusCode, pretty.String())
		}
		return 1
	}
	fmt.Fprintln(c.out, pretty.String())
	return 0
}
