package cms_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigillo/sigillo/cms"
	"github.com/sigillo/sigillo/cms/cmstest"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// TestSeedCorpus (re)generates the committed fuzz seeds with -update-seeds
// and otherwise checks that every committed FuzzParse seed still parses.
func TestSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	tsDir := filepath.Join("testdata", "fuzz", "FuzzParseTimestampToken")
	if *updateSeeds {
		root := cmstest.NewRoot(t, "seed root")
		tsa := cmstest.NewTSA(t, root)
		digest := sha256.Sum256([]byte("seed content"))
		os.MkdirAll(dir, 0o755)
		os.MkdirAll(tsDir, 0o755)
		for _, tc := range []struct {
			name, key string
			pss, ts   bool
		}{{"rsa_pkcs1", "rsa-2048", false, false}, {"rsa_pss", "rsa-2048", true, false}, {"p256_timestamped", "p-256", false, true}} {
			key, chain := root.Leaf(t, tc.name, tc.key, cmstest.Signer)
			opts := cms.SignOptions{PSS: tc.pss}
			if tc.ts {
				opts.Timestamper = tsa
			}
			der, err := cms.SignDetached(context.Background(), key, digest[:], crypto.SHA256, chain, opts)
			if err != nil {
				t.Fatal(err)
			}
			writeSeed(t, filepath.Join(dir, tc.name), der)
		}
		tok, err := tsa.Timestamp(context.Background(), digest[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		writeSeed(t, filepath.Join(dir, "tst_token"), tok)
		writeSeed(t, filepath.Join(tsDir, "tst_token"), tok)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("no committed seeds in %s (run go test -run TestSeedCorpus -update-seeds): %v", dir, err)
	}
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		var der []byte
		if _, err := fmt.Sscanf(string(b), "go test fuzz v1\n[]byte(%q)", &der); err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		if _, err := cms.Parse(der); err != nil {
			t.Errorf("seed %s no longer parses: %v", e.Name(), err)
		}
	}
}

func writeSeed(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)), 0o644); err != nil {
		t.Fatal(err)
	}
}
