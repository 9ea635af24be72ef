package softhsmtest_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigillo/sigillo/hsm"
	softhsmtest "github.com/sigillo/sigillo/softhsm-test"
)

func TestNew_givesIndependentWorkingTokens(t *testing.T) {
	ctx := context.Background()
	a, b := softhsmtest.New(t), softhsmtest.New(t)
	if a.Config.TokenLabel == b.Config.TokenLabel {
		t.Fatalf("two tokens share the label %q", a.Config.TokenLabel)
	}
	if a.ConfPath == "" || a.ConfPath != os.Getenv("SOFTHSM2_CONF") {
		t.Errorf("ConfPath %q, SOFTHSM2_CONF %q", a.ConfPath, os.Getenv("SOFTHSM2_CONF"))
	}
	pub, err := a.Manager.GenerateKey(ctx, "k", "ecdsa-p256")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Manager.Signer(ctx, "k"); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("key of token a visible in token b: %v", err)
	}
	s, err := a.Manager.Signer(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("hello"))
	sig, err := s.Sign(nil, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), d[:], sig) {
		t.Fatal("signature does not verify")
	}
	if err := a.Manager.Ready(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestMktoken checks the script end to end: the token it makes is usable
// through its conf, and hsm.ProvisionSoftHSM adopts the same DIR (conf,
// token and PINs) in a fresh process.
func TestMktoken(t *testing.T) {
	softhsmtest.Require(t)
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("softhsm2-util is required in CI")
		}
		t.Skip("!!! SKIPPING: softhsm2-util not installed !!!")
	}
	dir := filepath.Join(t.TempDir(), "tok")
	out, err := exec.Command("sh", "mktoken.sh", dir, "mk").Output()
	if err != nil {
		t.Fatalf("mktoken.sh: %v", err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	for _, want := range []string{"export SOFTHSM2_CONF='" + conf + "'", "SIGILLO_PKCS11_PIN='", "SO PIN: "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	again, err := exec.Command("sh", "mktoken.sh", dir, "mk").Output()
	if err != nil || string(again) != string(out) {
		t.Errorf("second run differs (err %v):\n%s\nvs\n%s", err, again, out)
	}
	show := exec.Command("softhsm2-util", "--show-slots")
	show.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
	slots, err := show.Output()
	if err != nil || strings.Count(string(slots), "Label:            mk ") != 1 {
		t.Fatalf("softhsm2-util --show-slots (%v):\n%s", err, slots)
	}

	child := exec.Command(os.Args[0], "-test.run=^TestMktokenChild$", "-test.v")
	child.Env = append(os.Environ(), "SOFTHSMTEST_MKTOKEN_DIR="+dir)
	cout, err := child.CombinedOutput()
	if err != nil || !strings.Contains(string(cout), "--- PASS: TestMktokenChild") {
		t.Fatalf("ProvisionSoftHSM on the script's DIR: %v\n%s", err, cout)
	}
}

// TestMktokenChild is TestMktoken's fresh process.
func TestMktokenChild(t *testing.T) {
	dir := os.Getenv("SOFTHSMTEST_MKTOKEN_DIR")
	if dir == "" {
		t.Skip("helper process for TestMktoken")
	}
	cfg, err := hsm.ProvisionSoftHSM(dir, "mk")
	if err != nil {
		t.Fatal(err)
	}
	m, err := hsm.Open(cfg)
	if err != nil {
		t.Fatalf("open the script's token with ProvisionSoftHSM's config: %v", err)
	}
	defer m.Close()
	if _, err := m.GenerateKey(context.Background(), "k", "ecdsa-p256"); err != nil {
		t.Fatal(err)
	}
}
