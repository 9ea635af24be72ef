// Package browsertest starts the headless Chromium that sigillo's browser
// tests drive, so that every such test launches it the same way: the same
// flags, a fresh profile per test (no cookie or cache leaks between
// tests), the testenv rule when Chromium is missing (fail in CI, skip
// loudly by hand), bounded steps, and screenshots kept under
// test-artifacts/ at the module root for people to look at.
package browsertest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sigillo/sigillo/internal/testenv"
)

// Step and query bounds: generous for a loaded 2-core machine, short
// enough that a stuck page fails the test rather than the suite timeout.
const (
	stepTimeout = 15 * time.Second
	textTimeout = 10 * time.Second
)

// Browser is one headless Chromium with its own profile, bound to a test
// and closed when the test ends.
type Browser struct {
	t   testing.TB
	ctx context.Context
	dir string
}

// New starts Chromium with a width×height window and a fresh user-data
// dir; screenshots go to test-artifacts/<area> under the module root.
// When Chromium is absent or does not start it applies testenv.Missing.
func New(t testing.TB, area string, width, height int) *Browser {
	t.Helper()
	path := "/usr/bin/chromium"
	if _, err := os.Stat(path); err != nil {
		p, lerr := exec.LookPath("chromium")
		if lerr != nil {
			testenv.Missing(t, "chromium not installed (%v)", err)
		}
		path = p
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "test-artifacts", area)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Start the browser outside any timeout (chromedp's rule: a timeout
	// on the first action kills the browser with it), then bound each step.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		testenv.Missing(t, "chromium does not start: %v", err)
	}
	return &Browser{t: t, ctx: ctx, dir: dir}
}

// Context is the browser's chromedp context, for actions the helpers
// here do not cover.
func (b *Browser) Context() context.Context { return b.ctx }

// Step runs actions within a bound and fails the test, naming what, if
// they fail.
func (b *Browser) Step(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// Text returns the trimmed text of the first element matching css.
func (b *Browser) Text(css string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, textTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		b.t.Fatalf("browser: text %s: %v", css, err)
	}
	return strings.TrimSpace(s)
}

// Shot saves a PNG of the whole page as test-artifacts/<area>/<name>.png.
func (b *Browser) Shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// moduleRoot is the nearest directory above the working directory (a
// test's package directory) that holds go.mod, so artifacts land in one
// place whatever the depth of the package under test.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("browsertest: no go.mod above the working directory")
		}
		dir = parent
	}
}
