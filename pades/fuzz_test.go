package pades_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigillo/sigillo/cms/cmstest"
	"github.com/sigillo/sigillo/pades"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// FuzzVerify feeds arbitrary bytes to the PDF signature reader and to
// Prepare: neither may panic or write anything for a refused input. Seeds
// (testdata/fuzz/FuzzVerify) are small signed PDFs, classic and xref-stream.
func FuzzVerify(f *testing.F) {
	f.Add([]byte("%PDF-1.7\n%%EOF\n"))
	root := cmstest.NewRoot(f, "fuzz root")
	_, chain := root.Leaf(f, "fuzz signer", "p-256", cmstest.Signer)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = pades.Verify(bytes.NewReader(b), int64(len(b)))
		var out bytes.Buffer
		if _, err := pades.Prepare(context.Background(), bytes.NewReader(b), int64(len(b)), &out, chain, pades.Options{}); err != nil && out.Len() != 0 {
			t.Fatalf("Prepare failed (%v) but wrote %d bytes", err, out.Len())
		}
	})
}

// TestFuzzSeeds regenerates (-update-seeds) or checks the FuzzVerify seeds.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzVerify")
	if *updateSeeds {
		root := cmstest.NewRoot(t, "seed root")
		key, chain := root.Leaf(t, "seed signer", "p-256", cmstest.Signer)
		os.MkdirAll(dir, 0o755)
		classic := makePDF(pdfSpec{textField: true})
		for name, in := range map[string][]byte{"signed_classic": classic, "signed_xrefstream": qpdfConvert(t, classic, "--object-streams=generate")} {
			out := sign(t, in, key, chain, pades.Options{Clock: fixedClock})
			os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", out)), 0o644)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("no committed seeds in %s (go test -run TestFuzzSeeds ./pades -update-seeds): %v", dir, err)
	}
	for _, e := range entries {
		raw, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		var b []byte
		if _, err := fmt.Sscanf(string(raw), "go test fuzz v1\n[]byte(%q)", &b); err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		infos, err := pades.Verify(bytes.NewReader(b), int64(len(b)))
		if err != nil || len(infos) != 1 || infos[0].Err != nil {
			t.Errorf("seed %s: %v %+v", e.Name(), err, infos)
		}
	}
	_ = io.Discard
}
