package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadDefaultsWithNothingSet(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Listen != "127.0.0.1:8080" || c.Database != "./var/sigillo.db" || c.PublicURL != "http://127.0.0.1:8080" {
		t.Fatalf("defaults: listen %q database %q public %q", c.Listen, c.Database, c.PublicURL)
	}
	if c.Auth.SADTTL.D() != 5*time.Minute || c.PKCS11.MaxSessions != 16 {
		t.Fatalf("defaults: sad %v sessions %d", c.Auth.SADTTL, c.PKCS11.MaxSessions)
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	dir := t.TempDir()
	pinFile := filepath.Join(dir, "pin")
	os.WriteFile(pinFile, []byte("s3cret\n"), 0o600)
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte("listen: 127.0.0.1:9000\npkcs11:\n  token: fromfile\n  pin_file: "+pinFile+"\nauth:\n  sad_ttl: 2m\n"), 0o600)
	c, err := Load(file, []string{"SIGILLO_PKCS11_TOKEN=fromenv", "SIGILLO_DATABASE=postgres://u:pw@db:5432/x", "SIGILLO_PKCS11_MAX_SESSIONS=4", "SIGILLO_TEST_POSTGRES_URL=ignored"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Listen != "127.0.0.1:9000" || c.PKCS11.Token != "fromenv" || c.PKCS11.PIN.Value != "s3cret" || c.PKCS11.MaxSessions != 4 || c.Auth.SADTTL.D() != 2*time.Minute {
		t.Fatalf("got %+v", c)
	}
	red := c.Redacted()
	if strings.Contains(red, "s3cret") || strings.Contains(red, ":pw@") {
		t.Fatalf("secret leaked in redacted output:\n%s", red)
	}
}

func TestLoadListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte("listen: nonsense\nbogus: 1\npkcs11:\n  modul: x\n"), 0o600)
	tests := []struct {
		name    string
		file    string
		env     []string
		wantKey []string
	}{
		{"unknown keys, bad listen", file, nil, []string{"bogus", "pkcs11.modul", "listen"}},
		{"bad url and missing module", "", []string{"SIGILLO_PUBLIC_URL=ftp:/x", "SIGILLO_PKCS11_MODULE=/nonexistent/lib.so"}, []string{"public_url", "pkcs11.module"}},
		{"unknown variable and bad types", "", []string{"SIGILLO_LISTN=x", "SIGILLO_PKCS11_MAX_SESSIONS=many", "SIGILLO_AUTH_SAD_TTL=forever"}, []string{"SIGILLO_LISTN", "SIGILLO_PKCS11_MAX_SESSIONS", "SIGILLO_AUTH_SAD_TTL"}},
		{"production needs secrets", "", []string{"SIGILLO_MODE=production"}, []string{"pkcs11.module", "pkcs11.token", "pkcs11.pin", "admin_token", "auth.secret_key", "otp.sms_sender", "email.sender"}},
		{"smtp sender without a URL, bad from", "", []string{"SIGILLO_EMAIL_SENDER=smtp", "SIGILLO_EMAIL_FROM=nobody"}, []string{"email.smtp_url", "email.from"}},
		{"unknown email sender", "", []string{"SIGILLO_EMAIL_SENDER=pigeon", "SIGILLO_EMAIL_SMTP_URL=http://mail.example.com"}, []string{"email.sender"}},
		{"unknown database scheme", "", []string{"SIGILLO_DATABASE=mysql://x"}, []string{"database"}},
		{"bad trusted proxy", "", []string{"SIGILLO_TRUSTED_PROXIES=10.0.0.0/8, nonsense"}, []string{"trusted_proxies"}},
		{"bad callback host pattern", "", []string{"SIGILLO_ASYNC_CALLBACK_HOSTS=hooks.example.com, https://x/y"}, []string{"async.callback_hosts"}},
		{"callback wildcard in the middle", "", []string{"SIGILLO_ASYNC_CALLBACK_HOSTS=a.*.example.com"}, []string{"async.callback_hosts"}},
		{"callback private networks not a boolean", "", []string{"SIGILLO_ASYNC_CALLBACK_PRIVATE_NETWORKS=sometimes"}, []string{"SIGILLO_ASYNC_CALLBACK_PRIVATE_NETWORKS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.file, tt.env)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *Error, got %v", err)
			}
			for _, k := range tt.wantKey {
				found := false
				for _, p := range ce.Problems {
					found = found || p.Key == k
				}
				if !found {
					t.Errorf("problem for %q not reported; got:\n%v", k, err)
				}
			}
		})
	}
}

func TestCallbackHosts(t *testing.T) {
	c, err := Load("", []string{"SIGILLO_ASYNC_CALLBACK_HOSTS= Hooks.Example.com ,*.partner.example, 192.0.2.7", "SIGILLO_ASYNC_CALLBACK_PRIVATE_NETWORKS=true"})
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := c.Async.Hosts()
	if err != nil || strings.Join(hosts, " ") != "hooks.example.com *.partner.example 192.0.2.7" || !c.Async.CallbackPrivateNetworks {
		t.Fatalf("hosts %q, %v; private %v", hosts, err, c.Async.CallbackPrivateNetworks)
	}
}
