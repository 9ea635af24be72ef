package pades_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sigillo/sigillo/cms/cmstest"
	"github.com/sigillo/sigillo/pades"
)

// TestSign_visibleAppearanceRenders signs with a visible box on page 2 and
// renders that page with poppler's pdftoppm: the box must be drawn there
// (dark pixels inside the rectangle, none in the same place on page 1).
func TestSign_visibleAppearanceRenders(t *testing.T) {
	requireTool(t, "pdftoppm")
	root := cmstest.NewRoot(t, "pades test root")
	v := newValidators(t, root)
	key, chain := root.Leaf(t, "Maria Bianchi", "p-256", cmstest.Signer)
	in := makePDF(pdfSpec{pages: 2})
	rect := [4]float64{100, 100, 350, 160}
	out := sign(t, in, key, chain, pades.Options{Clock: fixedClock, Info: pades.Info{Reason: "Approvazione è ok"},
		Appearance: &pades.Appearance{Page: 2, Rect: rect}})
	v.check(t, "visible", out, 1, 0)
	path := filepath.Join(t.TempDir(), "visible.pdf")
	os.WriteFile(path, out, 0o600)
	dark := func(page int) int {
		prefix := filepath.Join(t.TempDir(), "p")
		p := strconv.Itoa(page)
		if b, err := exec.Command("pdftoppm", "-r", "72", "-gray", "-f", p, "-l", p, "-singlefile", path, prefix).CombinedOutput(); err != nil {
			t.Fatalf("pdftoppm: %v\n%s", err, b)
		}
		img, err := os.ReadFile(prefix + ".pgm")
		if err != nil {
			t.Fatal(err)
		}
		// P5 header: "P5\n612 792\n255\n"
		fields := bytes.Fields(img[:20])
		w, _ := strconv.Atoi(string(fields[1]))
		h, _ := strconv.Atoi(string(fields[2]))
		pix := img[len(img)-w*h:]
		n := 0
		for y := h - int(rect[3]); y < h-int(rect[1]); y++ {
			for x := int(rect[0]); x < int(rect[2]); x++ {
				if pix[y*w+x] < 128 {
					n++
				}
			}
		}
		return n
	}
	if n := dark(2); n < 200 {
		t.Errorf("page 2: %d dark pixels in the signature box, want a drawn box with text", n)
	}
	if n := dark(1); n != 0 {
		t.Errorf("page 1: %d dark pixels where no signature should be", n)
	}
}
