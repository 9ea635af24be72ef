package loadtest

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"
)

// WriteHTML renders r as one self-contained HTML page: inline CSS and SVG
// charts, no script and nothing fetched, so it can be mailed or archived.
func WriteHTML(w io.Writer, r *Result) error {
	if err := reportTmpl.Execute(w, newReportView(r)); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	return nil
}

type kv struct{ K, V string }

type reportView struct {
	R                                              *Result
	Title                                          string
	Summary                                        []kv
	Params                                         []kv
	Latency, Throughput, Errors, Histogram, Memory template.HTML
}

func newReportView(r *Result) reportView {
	v := reportView{R: r, Title: fmt.Sprintf("sigillo load test: %s, %s, batch %d", r.Scenario, r.Params.KeyAlgo, r.Params.Batch)}
	f := func(x float64, unit string) string { return fmt.Sprintf("%.2f %s", x, unit) }
	v.Summary = []kv{
		{"Start (UTC)", r.Start.UTC().Format(time.DateTime)},
		{"Duration", f(r.Seconds, "s")},
		{"Signatures", fmt.Sprint(r.Signatures)},
		{"Operations", fmt.Sprint(r.Operations)},
		{"Errors", fmt.Sprint(r.Errors)},
		{"Verified signatures", fmt.Sprint(r.Verified)},
		{"Authorizations (credentials/authorize)", fmt.Sprint(r.Authorizations)},
		{"Rate", f(r.Rate, "sig/s")},
		{"Latency p50 / p90 / p99", fmt.Sprintf("%.2f / %.2f / %.2f ms", r.Latency.P50, r.Latency.P90, r.Latency.P99)},
		{"Latency max / mean", fmt.Sprintf("%.2f / %.2f ms", r.Latency.Max, r.Latency.Mean)},
	}
	if r.RawHSM != nil {
		v.Summary = append(v.Summary,
			kv{"Raw HSM rate before", fmt.Sprintf("%.2f sig/s (%s, %d workers, %.1f s, %.0f µs CPU per signature)", r.RawHSM.Rate, r.RawHSM.KeyAlgo, r.RawHSM.Workers, r.RawHSM.Seconds, r.RawHSM.CPUPerSigMicros)})
		if a := r.RawHSMAfter; a != nil {
			v.Summary = append(v.Summary, kv{"Raw HSM rate after", fmt.Sprintf("%.2f sig/s (%.1f s, %.0f µs CPU per signature)", a.Rate, a.Seconds, a.CPUPerSigMicros)})
		}
		v.Summary = append(v.Summary, kv{"Ratio to raw HSM", fmt.Sprintf("%.3f", r.Ratio)})
	}
	if c := r.CPU; c != nil {
		v.Summary = append(v.Summary, kv{"CPU: server / client", fmt.Sprintf("%.1f s / %.1f s = %.0f µs per signature", c.ServerSeconds, c.ClientSeconds, c.PerSigMicros)})
		if c.Ratio > 0 {
			v.Summary = append(v.Summary, kv{"CPU ratio (raw HSM CPU per signature ÷ sigillo's)", fmt.Sprintf("%.3f", c.Ratio)})
		}
	}
	if r.LoadAvg != [2]float64{} {
		v.Summary = append(v.Summary, kv{"Load average (1 min) start / end", fmt.Sprintf("%.2f / %.2f", r.LoadAvg[0], r.LoadAvg[1])})
	}
	if r.OTPWaitSeconds > 0 {
		v.Summary = append(v.Summary, kv{"Waiting for a fresh TOTP step", f(r.OTPWaitSeconds, "worker-s")})
	}
	for _, m := range r.RSS {
		switch {
		case m.Error != "":
			v.Summary = append(v.Summary, kv{"Server RSS " + m.Server, "unavailable: " + m.Error})
		default:
			v.Summary = append(v.Summary, kv{"Server RSS " + m.Server, fmt.Sprintf("start %s, end %s, max %s",
				mib(m.Start), mib(m.End), mib(m.Max))})
		}
	}
	v.Summary = append(v.Summary, kv{"Provisioning (not timed)", fmt.Sprintf("%d users in %.1f s", r.Provision.Users, r.Provision.Seconds)})

	p := r.Params
	v.Params = []kv{{"Scenario", r.Scenario}, {"Servers", strings.Join(p.Servers, ", ")}, {"Workers", fmt.Sprint(p.Workers)}}
	if p.Count > 0 {
		v.Params = append(v.Params, kv{"Count", fmt.Sprint(p.Count)})
	} else {
		v.Params = append(v.Params, kv{"Duration", p.Duration})
	}
	v.Params = append(v.Params, kv{"Batch", fmt.Sprint(p.Batch)}, kv{"Key", p.KeyAlgo},
		kv{"Verify sample", fmt.Sprintf("%g%%", 100*p.VerifyRate)}, kv{"GOMAXPROCS (client)", fmt.Sprint(p.GoMaxProcs)})
	if p.Users > 0 {
		v.Params = append(v.Params, kv{"Users", fmt.Sprint(p.Users)})
	}
	if p.Multisign > 0 {
		v.Params = append(v.Params, kv{"Signatures per SAD", fmt.Sprint(p.Multisign)})
	}
	if p.PDFSize > 0 {
		v.Params = append(v.Params, kv{"PDF size", fmt.Sprintf("%d bytes", p.PDFSize)}, kv{"PAdES level", p.Level})
	}
	if p.Command != "" {
		v.Params = append(v.Params, kv{"Command", p.Command})
	}

	var p50, p99, sigs, errs []point
	for _, s := range r.Timeline {
		x := float64(s.T) + 0.5
		if s.P99 > 0 { // some operation succeeded in this second
			p50 = append(p50, point{x, s.P50})
			p99 = append(p99, point{x, s.P99})
		} else {
			p50 = append(p50, point{x, gap})
			p99 = append(p99, point{x, gap})
		}
		// The last second is usually partial: show its rate, not its count.
		span := 1.0
		if frac := r.Seconds - float64(s.T); frac > 0.05 && frac < 1 {
			span = frac
		}
		sigs = append(sigs, point{x, float64(s.Signatures) / span})
		errs = append(errs, point{x, float64(s.Errors)})
	}
	xmax := float64(len(r.Timeline))
	v.Latency = chart{Title: "Latency over time (per second of completion)", XLabel: "seconds", YLabel: "ms", XMax: xmax,
		Series: []series{{Name: "p99", Color: "#d62728", Points: p99}, {Name: "p50", Color: "#1f77b4", Points: p50}}}.svg()
	v.Throughput = chart{Title: "Throughput over time", XLabel: "seconds", YLabel: "sig/s", XMax: xmax,
		Series: []series{{Name: "signatures / s", Color: "#2ca02c", Points: sigs, Bars: true}}}.svg()
	if r.Errors > 0 { // on its own scale: a few errors vanish next to thousands of signatures
		v.Errors = chart{Title: "Errors over time", XLabel: "seconds", YLabel: "errors", XMax: xmax, H: 200,
			Series: []series{{Name: "failed operations / s", Color: "#d62728", Points: errs, Bars: true}}}.svg()
	}
	v.Histogram = histogramSVG(r.Histogram)
	var mem []series
	colors := []string{"#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}
	for i, m := range r.RSS {
		var pts []point
		for _, s := range m.Series {
			pts = append(pts, point{s.T, float64(s.Bytes) / (1 << 20)})
		}
		if len(pts) > 0 {
			mem = append(mem, series{Name: m.Server, Color: colors[i%len(colors)], Points: pts})
		}
	}
	if len(mem) > 0 {
		v.Memory = chart{Title: "Server resident memory", XLabel: "seconds", YLabel: "MiB", XMax: math.Max(xmax, r.Seconds), Series: mem}.svg()
	}
	return v
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

type point struct{ X, Y float64 }

type series struct {
	Name, Color string
	Points      []point
	Bars        bool
}

// chart is an x/y chart over [0,XMax] × [0, nice max of the data].
type chart struct {
	Title, XLabel, YLabel string
	XMax                  float64
	Series                []series
	// H is the height in pixels (default chartH).
	H int
}

const (
	chartW, chartH         = 1100, 300
	padL, padR, padT, padB = 70, 20, 34, 46
	plotW, plotH           = chartW - padL - padR, chartH - padT - padB
)

// gap is a Y value that breaks a line: a second with nothing to plot.
var gap = math.NaN()

// niceCeil rounds v up to 1, 2, 2.5 or 5 × a power of ten (axis maximum).
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p*1.0000001 {
			return m * p
		}
	}
	return 10 * p
}

func (c chart) svg() template.HTML {
	var b strings.Builder
	chartH := c.H
	if chartH == 0 {
		chartH = 300
	}
	plotH := chartH - padT - padB
	ymax := 0.0
	for _, s := range c.Series {
		for _, p := range s.Points {
			if !math.IsNaN(p.Y) {
				ymax = math.Max(ymax, p.Y)
			}
		}
	}
	ymax = niceCeil(ymax * 1.05)
	xmax := c.XMax
	if xmax <= 0 {
		xmax = 1
	}
	xs := func(x float64) float64 { return padL + x/xmax*plotW }
	ys := func(y float64) float64 { return padT + float64(plotH) - y/ymax*float64(plotH) }
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		chartW, chartH, chartW, chartH, esc(c.Title))
	fmt.Fprintf(&b, `<text x="%d" y="20" class="t">%s</text>`, padL, esc(c.Title))
	// grid and y ticks
	for i := 0; i <= 5; i++ {
		y := ymax * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="g"/>`, padL, padL+plotW, ys(y), ys(y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" class="yl">%s</text>`, padL-6, ys(y)+4, tick(y))
	}
	// x ticks
	step := niceCeil(xmax / 10)
	for x := 0.0; x <= xmax+1e-9; x += step {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" class="a"/>`, xs(x), xs(x), padT+plotH, padT+plotH+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="xl">%s</text>`, xs(x), padT+plotH+18, tick(x))
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" class="a"/>`, padL, padL+plotW, padT+plotH, padT+plotH)
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" class="a"/>`, padL, padL, padT, padT+plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="xl">%s</text>`, padL+plotW/2, chartH-6, esc(c.XLabel))
	fmt.Fprintf(&b, `<text x="16" y="%d" class="yt" transform="rotate(-90 16 %d)">%s</text>`, padT+plotH/2, padT+plotH/2, esc(c.YLabel))
	nbars := 0
	for _, s := range c.Series {
		if s.Bars {
			nbars++
		}
	}
	bar := 0
	for _, s := range c.Series {
		if s.Bars {
			w := plotW / xmax * 0.8 / float64(nbars)
			for _, p := range s.Points {
				if math.IsNaN(p.Y) || p.Y == 0 {
					continue
				}
				x := xs(p.X) - plotW/xmax*0.4 + float64(bar)*w
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x, ys(p.Y), math.Max(w, 0.5), ys(0)-ys(p.Y), s.Color)
			}
			bar++
			continue
		}
		// One polyline per run of points between gaps; a lone point is a dot.
		var pts []string
		flush := func() {
			switch len(pts) {
			case 0:
			case 1:
				x, y, _ := strings.Cut(pts[0], ",")
				fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`, x, y, s.Color)
			default:
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, s.Color, strings.Join(pts, " "))
			}
			pts = pts[:0]
		}
		for _, p := range s.Points {
			if math.IsNaN(p.Y) {
				flush()
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xs(p.X), ys(p.Y)))
		}
		flush()
	}
	// legend
	lx := padL + plotW
	for i := len(c.Series) - 1; i >= 0; i-- {
		s := c.Series[i]
		w := 7*len(s.Name) + 26
		lx -= w
		fmt.Fprintf(&b, `<rect x="%d" y="10" width="12" height="12" fill="%s"/><text x="%d" y="20" class="lg">%s</text>`, lx, s.Color, lx+16, esc(s.Name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built from escaped parts
}

// histogramSVG draws one bar per latency bucket, labelled by its bound.
func histogramSVG(bs []Bucket) template.HTML {
	var b strings.Builder
	title := "Latency histogram (successful operations)"
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		chartW, chartH, chartW, chartH, esc(title))
	fmt.Fprintf(&b, `<text x="%d" y="20" class="t">%s</text>`, padL, esc(title))
	if len(bs) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="t">no successful operations</text></svg>`, padL, padT+plotH/2)
		return template.HTML(b.String())
	}
	ymax := 0
	for _, x := range bs {
		ymax = max(ymax, x.Count)
	}
	top := niceCeil(float64(ymax) * 1.05)
	ys := func(y float64) float64 { return padT + plotH - y/top*plotH }
	for i := 0; i <= 5; i++ {
		y := top * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="g"/>`, padL, padL+plotW, ys(y), ys(y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" class="yl">%s</text>`, padL-6, ys(y)+4, tick(y))
	}
	slot := float64(plotW) / float64(len(bs))
	every := (len(bs) + 21) / 22 // labels stay readable
	for i, x := range bs {
		left := padL + float64(i)*slot
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#1f77b4"><title>%d</title></rect>`,
			left+slot*0.1, ys(float64(x.Count)), slot*0.8, ys(0)-ys(float64(x.Count)), x.Count)
		label := "≤" + tick(x.UpperMs)
		if x.Overflow {
			label = ">" + tick(histogramBounds[len(histogramBounds)-1])
		}
		if i%every == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="xl">%s</text>`, left+slot/2, padT+plotH+18, esc(label))
		}
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" class="a"/>`, padL, padL+plotW, padT+plotH, padT+plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="xl">latency (ms, bucket upper bound)</text>`, padL+plotW/2, chartH-6)
	fmt.Fprintf(&b, `<text x="16" y="%d" class="yt" transform="rotate(-90 16 %d)">operations</text>`, padT+plotH/2, padT+plotH/2)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// tick formats an axis value compactly.
func tick(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 10000:
		return fmt.Sprintf("%.0fk", v/1000)
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 1:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
	default:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
	}
}

func esc(s string) string { return template.HTMLEscapeString(s) }

var reportTmpl = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1120px;color:#222}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
.sub{color:#666;margin-bottom:16px}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #ddd;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f4f4f4} td.n{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b00020;font-weight:600} .ok{color:#1b7f2a;font-weight:600}
.cols{display:flex;gap:24px;flex-wrap:wrap}
svg{display:block;margin:12px 0;background:#fff;border:1px solid #eee}
svg text{font:12px system-ui,sans-serif;fill:#333}
svg .t{font-size:14px;font-weight:600} svg .yl{text-anchor:end} svg .xl{text-anchor:middle} svg .yt{text-anchor:middle}
svg .g{stroke:#e6e6e6} svg .a{stroke:#888}
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<div class="sub">{{.R.Start.UTC.Format "2006-01-02 15:04:05"}} UTC, {{printf "%.1f" .R.Seconds}} s,
{{if .R.Errors}}<span class="bad">{{.R.Errors}} errors</span>{{else}}<span class="ok">no errors</span>{{end}},
{{printf "%.1f" .R.Rate}} signatures/s{{if .R.RawHSM}}, {{printf "%.3f" .R.Ratio}} of the raw HSM{{end}}</div>
<div class="cols">
<div><h2>Summary</h2>
<table>{{range .Summary}}<tr><th>{{.K}}</th><td>{{.V}}</td></tr>{{end}}</table></div>
<div><h2>Parameters</h2>
<table>{{range .Params}}<tr><th>{{.K}}</th><td>{{.V}}</td></tr>{{end}}</table></div>
</div>
<h2>Errors by kind</h2>
{{if .R.ErrorsByKind}}<table><tr><th>Kind</th><th>Count</th><th>First message</th></tr>
{{range .R.ErrorsByKind}}<tr><td>{{.Kind}}</td><td class="n">{{.Count}}</td><td>{{.Example}}</td></tr>{{end}}</table>
{{else}}<p>None.</p>{{end}}
<h2>Latency</h2>
{{.Latency}}
<table><tr><th>p50</th><th>p90</th><th>p99</th><th>max</th><th>mean</th></tr>
<tr><td class="n">{{printf "%.2f" .R.Latency.P50}} ms</td><td class="n">{{printf "%.2f" .R.Latency.P90}} ms</td><td class="n">{{printf "%.2f" .R.Latency.P99}} ms</td><td class="n">{{printf "%.2f" .R.Latency.Max}} ms</td><td class="n">{{printf "%.2f" .R.Latency.Mean}} ms</td></tr></table>
<h2>Throughput</h2>
{{.Throughput}}
{{if .Errors}}{{.Errors}}{{end}}
<h2>Latency distribution</h2>
{{.Histogram}}
{{if .Memory}}<h2>Server memory</h2>
{{.Memory}}{{end}}
</body>
</html>
`))
