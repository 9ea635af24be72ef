package loadtest

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

var htmlOut = flag.String("html-out", "", "also write the sample report rendered by TestHTMLReport here (to look at it)")

// sampleResult is a plausible 20-second run with a stall and some errors.
func sampleResult() *Result {
	var samples []sample
	for i := range 4000 {
		at := time.Duration(i) * 5 * time.Millisecond
		if at > 8*time.Second && at < 9*time.Second {
			continue // a stall
		}
		lat := time.Duration(2e6 + 1e6*math.Sin(float64(i)/300) + float64(i%97)*3e4)
		s := sample{At: at, Lat: lat, Sigs: 10}
		if i%1000 == 999 {
			s = sample{At: at, Lat: lat, Err: "http 503 temporarily_unavailable"}
		}
		samples = append(samples, s)
	}
	var lats []time.Duration
	sigs, errs := 0, 0
	for _, s := range samples {
		sigs += s.Sigs
		if s.Err == "" {
			lats = append(lats, s.Lat)
		} else {
			errs++
		}
	}
	start := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	r := &Result{
		Scenario: ScenarioSignHash, Start: start, End: start.Add(20 * time.Second), Seconds: 20,
		Params:     Params{Servers: []string{"http://127.0.0.1:8080"}, Workers: 4, Duration: "20s", Batch: 10, KeyAlgo: "rsa-2048", VerifyRate: 0.01, Multisign: 1000, GoMaxProcs: 2, Command: "sigillo loadtest --batch 10"},
		Signatures: sigs, Operations: len(samples), Errors: errs, Verified: sigs / 100, Rate: float64(sigs) / 20,
		ErrorsByKind: []ErrorKind{{Kind: "http 503 temporarily_unavailable", Count: errs, Example: `signHash: HTTP 503 <script>alert(1)</script> & "quotes"`}},
		RawHSM:       &HSMResult{KeyAlgo: "rsa-2048", Workers: 4, Seconds: 5, Signatures: 10500, Rate: 2100},
		RSS:          []RSS{{Server: "http://127.0.0.1:8080", Series: []RSSSample{{0, 40 << 20}, {10, 52 << 20}, {20, 53 << 20}}, Start: 40 << 20, End: 53 << 20, Max: 53 << 20}},
	}
	r.Ratio = r.Rate / r.RawHSM.Rate
	r.Provision.Users, r.Provision.Seconds = 4, 1.5
	r.Timeline = timeline(samples)
	r.Latency = summarize(lats)
	r.Histogram = histogram(lats)
	return r
}

func TestHTMLReport(t *testing.T) {
	tests := []struct {
		name   string
		result func() *Result
		svgs   int
	}{
		{"full run with errors", sampleResult, 5},
		{"run with no successful operation", func() *Result {
			r := sampleResult()
			r.Latency, r.Histogram, r.RSS, r.RawHSM = Percentiles{}, nil, nil, nil
			r.Timeline = []Second{{T: 0, Errors: 3}}
			return r
		}, 4},
		{"empty run", func() *Result { return &Result{Scenario: ScenarioAuthorizeSign} }, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteHTML(&buf, tt.result()); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			if *htmlOut != "" && tt.name == "full run with errors" {
				os.WriteFile(*htmlOut, buf.Bytes(), 0o644)
			}
			if !strings.HasPrefix(out, "<!DOCTYPE html>") {
				t.Errorf("no doctype")
			}
			checkHTMLStructure(t, out)
			frags := svgFragments(out)
			if len(frags) != tt.svgs {
				t.Errorf("%d <svg> charts, want %d", len(frags), tt.svgs)
			}
			for i, f := range frags {
				if err := wellFormedXML(f); err != nil {
					t.Errorf("svg %d is not well-formed XML: %v\n%.300s", i, err, f)
				}
			}
			if strings.Contains(out, "<script>alert") {
				t.Errorf("error text not escaped")
			}
		})
	}
}

// checkHTMLStructure parses the page and checks it is self-contained:
// html/head/title/body present, no script, nothing loaded from elsewhere.
func checkHTMLStructure(t *testing.T, page string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	seen := map[string]int{}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			seen[n.Data]++
			for _, a := range n.Attr {
				if (a.Key == "src" || a.Key == "href") && a.Val != "" {
					t.Errorf("<%s %s=%q>: the report must not load anything", n.Data, a.Key, a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	for _, el := range []string{"html", "head", "title", "style", "body", "h1", "table"} {
		if seen[el] == 0 {
			t.Errorf("no <%s>", el)
		}
	}
	if seen["script"] > 0 || seen["link"] > 0 || seen["img"] > 0 {
		t.Errorf("external or active content: %v", seen)
	}
	// The tokenizer must consume the page without error up to EOF.
	z := html.NewTokenizer(strings.NewReader(page))
	for z.Next() != html.ErrorToken {
	}
	if !errors.Is(z.Err(), io.EOF) {
		t.Errorf("tokenize: %v", z.Err())
	}
}

func svgFragments(page string) []string {
	var out []string
	for {
		i := strings.Index(page, "<svg")
		if i < 0 {
			return out
		}
		j := strings.Index(page[i:], "</svg>")
		if j < 0 {
			return append(out, page[i:])
		}
		out = append(out, page[i:i+j+len("</svg>")])
		page = page[i+j+len("</svg>"):]
	}
}

func wellFormedXML(s string) error {
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
