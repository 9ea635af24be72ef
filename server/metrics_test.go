package server_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	potp "github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/crypto/ocsp"

	"github.com/sigillo/sigillo/server/servertest"
)

const (
	metricsPassword = "Corr3ct-Horse"
	metricsPIN      = "12345678"
	oidSHA256       = "2.16.840.1.101.3.4.2.1"
	oidECDSASHA256  = "1.2.840.10045.4.3.2"
)

// TestMetricsCountAWorkload scrapes /metrics before and after a small,
// known workload over real HTTP and checks that every counter the issue
// lists moved by exactly what the workload did.
func TestMetricsCountAWorkload(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	c := &client{t: t, url: srv.URL}
	before := scrape(t, srv.URL)

	// The operator enrolls one holder with a SCAL2 (TOTP) and a SCAL1
	// credential.
	user := c.call("POST", "/admin/v1/users", "Bearer "+srv.AdminToken, map[string]any{"username": "metrics", "password": metricsPassword,
		"email": "m@example.test", "phone": "+393330000002", "givenName": "Marta", "surname": "Metrica", "fiscalCode": "MTRMRT80A41H501X"}, 201)
	credA := c.call("POST", "/admin/v1/credentials", "Bearer "+srv.AdminToken, map[string]any{"userID": user["userID"], "pin": metricsPIN,
		"keyAlgo": "ecdsa-p256", "otp": "totp", "scal": 2, "multisign": 5}, 201)
	credB := c.call("POST", "/admin/v1/credentials", "Bearer "+srv.AdminToken, map[string]any{"userID": user["userID"], "pin": metricsPIN,
		"keyAlgo": "ecdsa-p256", "otp": "none", "scal": 1, "multisign": 5}, 201)
	idA, idB := credA["credentialID"].(string), credB["credentialID"].(string)

	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("metrics:"+metricsPassword))
	tok := "Bearer " + c.call("POST", "/csc/v2/auth/login", basic, map[string]any{}, 200)["access_token"].(string)

	digests := make([]string, 4)
	for i := range digests {
		d := sha256.Sum256(fmt.Appendf(nil, "document %d", i))
		digests[i] = base64.StdEncoding.EncodeToString(d[:])
	}
	authorizeA := func(pin, otp string, want int) map[string]any {
		return c.call("POST", "/csc/v2/credentials/authorize", tok, map[string]any{"credentialID": idA, "numSignatures": 3,
			"hashes": digests[:3], "hashAlgorithmOID": oidSHA256,
			"authData": []map[string]string{{"id": "PIN", "value": pin}, {"id": "OTP", "value": otp}}}, want)
	}
	uri := credA["otpURI"].(string)
	authorizeA("87654321", totpCode(t, uri, 0), 400) // wrong PIN
	authorizeA(metricsPIN, wrongTOTP(t, uri), 400)   // right PIN, wrong OTP
	sadA := authorizeA(metricsPIN, totpCode(t, uri, 0), 200)["SAD"]

	signHash := func(cred string, sad any, hashes []string, want int) map[string]any {
		return c.call("POST", "/csc/v2/signatures/signHash", tok, map[string]any{"credentialID": cred, "SAD": sad,
			"hashes": hashes, "hashAlgorithmOID": oidSHA256, "signAlgo": oidECDSASHA256}, want)
	}
	signHash(idA, sadA, digests[3:], 400) // not a hash the SAD is bound to
	if sigs := signHash(idA, sadA, digests[:3], 200)["signatures"].([]any); len(sigs) != 3 {
		t.Fatalf("signHash gave %d signatures, want 3", len(sigs))
	}

	sadB := c.call("POST", "/csc/v2/credentials/authorize", tok, map[string]any{"credentialID": idB, "numSignatures": 1,
		"authData": []map[string]string{{"id": "PIN", "value": metricsPIN}}}, 200)["SAD"]
	signHash(idB, sadB, digests[:1], 200)
	for range 3 { // the third wrong PIN in a row blocks it
		c.call("POST", "/csc/v2/credentials/authorize", tok, map[string]any{"credentialID": idB, "numSignatures": 1,
			"authData": []map[string]string{{"id": "PIN", "value": "00000000"}}}, 400)
	}

	// One OCSP request about credential A's certificate.
	leaf, issuer := chainOf(t, credA)
	ocspReq, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw := c.do("POST", "/ca/ocsp", "", "application/ocsp-request", ocspReq, 200)
	if resp, err := ocsp.ParseResponseForCert(raw, leaf, issuer); err != nil || resp.Status != ocsp.Good {
		t.Fatalf("OCSP response: %v %+v", err, resp)
	}
	// The operator suspends credential B's certificate and lifts the hold.
	for _, action := range []string{"suspend", "reactivate"} {
		c.call("POST", "/admin/v1/certificates/"+credB["serialNumber"].(string)+"/"+action, "Bearer "+srv.AdminToken, map[string]any{}, 200)
	}

	after := scrape(t, srv.URL)
	d := func(name string, labels map[string]string) float64 {
		return value(after, name, labels) - value(before, name, labels)
	}
	type L = map[string]string
	exact := []struct {
		name   string
		metric string
		labels L
		want   float64
	}{
		{"admin user creation counted by route and status", "sigillo_http_requests_total", L{"route": "/admin/v1/users", "method": "POST", "status": "201"}, 1},
		{"admin credential creations counted", "sigillo_http_requests_total", L{"route": "/admin/v1/credentials", "status": "201"}, 2},
		{"login counted", "sigillo_http_requests_total", L{"route": "/csc/v2/auth/login", "status": "200"}, 1},
		{"refused authorizations counted as 400", "sigillo_http_requests_total", L{"route": "/csc/v2/credentials/authorize", "status": "400"}, 5},
		{"granted authorizations counted as 200", "sigillo_http_requests_total", L{"route": "/csc/v2/credentials/authorize", "status": "200"}, 2},
		{"signHash 200s counted", "sigillo_http_requests_total", L{"route": "/csc/v2/signatures/signHash", "status": "200"}, 2},
		{"signHash 400 counted", "sigillo_http_requests_total", L{"route": "/csc/v2/signatures/signHash", "status": "400"}, 1},
		{"OCSP POST counted", "sigillo_http_requests_total", L{"route": "/ca/ocsp", "method": "POST", "status": "200"}, 1},
		{"the first scrape is counted by the second", "sigillo_http_requests_total", L{"route": "/metrics", "status": "200"}, 1},
		{"no 5xx", "sigillo_http_requests_total", L{"status": "500"}, 0},
		{"signHash latency observed per request", "sigillo_http_request_duration_seconds", L{"route": "/csc/v2/signatures/signHash"}, 3},

		{"CSC signatures by algorithm and outcome: success", "sigillo_csc_signatures_total", L{"version": "v2", "algo": "ecdsa-sha256", "outcome": "success"}, 4},
		{"CSC signatures by algorithm and outcome: rejected", "sigillo_csc_signatures_total", L{"version": "v2", "algo": "ecdsa-sha256", "outcome": "rejected"}, 1},
		{"CSC signatures: no server errors", "sigillo_csc_signatures_total", L{"outcome": "error"}, 0},
		{"sam signatures succeeded", "sigillo_sam_signatures_total", L{"outcome": "success"}, 4},
		{"sam signature refused by the SAD", "sigillo_sam_signatures_total", L{"outcome": "sad"}, 1},

		{"authorize: wrong PINs", "sigillo_sam_authorize_total", L{"outcome": "invalid_pin"}, 3},
		{"authorize: wrong OTP", "sigillo_sam_authorize_total", L{"outcome": "invalid_otp"}, 1},
		{"authorize: PIN locked", "sigillo_sam_authorize_total", L{"outcome": "pin_locked"}, 1},
		{"authorize: success", "sigillo_sam_authorize_total", L{"outcome": "success"}, 2},
		{"PIN blocked once", "sigillo_sam_pin_locked_total", nil, 1},

		{"SAD issued for the SCAL2 credential", "sigillo_sam_sad_issued_total", L{"credential_type": "scal2"}, 1},
		{"SAD issued for the SCAL1 credential", "sigillo_sam_sad_issued_total", L{"credential_type": "scal1"}, 1},
		{"SAD issued: no automatic credential used", "sigillo_sam_sad_issued_total", L{"credential_type": "automatic"}, 0},
		{"SCAL2 SAD consumed by three hashes", "sigillo_sam_sad_signatures_total", L{"credential_type": "scal2", "result": "consumed"}, 3},
		{"SCAL2 SAD refused a hash it is not bound to", "sigillo_sam_sad_signatures_total", L{"credential_type": "scal2", "result": "hash_not_authorized"}, 1},
		{"SCAL1 SAD consumed once", "sigillo_sam_sad_signatures_total", L{"credential_type": "scal1", "result": "consumed"}, 1},
		{"no SAD expired", "sigillo_sam_sad_signatures_total", L{"result": "expired"}, 0},
		{"no OTP texted (TOTP only)", "sigillo_sam_otp_sent_total", nil, 0},

		{"HSM generated the two credential keys", "sigillo_hsm_operation_seconds", L{"op": "generate_key"}, 2},
		{"no HSM errors", "sigillo_hsm_operation_errors_total", nil, 0},
		{"CA issued two certificates", "sigillo_ca_certificates_issued_total", nil, 2},
		{"CA answered one OCSP good", "sigillo_ca_ocsp_responses_total", L{"status": "good"}, 1},
		{"CA suspended one certificate", "sigillo_ca_status_changes_total", L{"action": "suspended"}, 1},
		{"CA reactivated one certificate", "sigillo_ca_status_changes_total", L{"action": "reactivated"}, 1},
		{"CA revoked none", "sigillo_ca_status_changes_total", L{"action": "revoked"}, 0},
		{"certificate lifecycle calls counted", "sigillo_http_requests_total", L{"route": "/admin/v1/certificates/:serial/:action", "status": "200"}, 2},
		{"no audit failures", "sigillo_audit_record_failures_total", nil, 0},
		{"no store unavailability", "sigillo_store_errors_total", L{"kind": "unavailable"}, 0},
	}
	for _, tt := range exact {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := after[tt.metric]; !ok && !exported(srv.App.Registry, tt.metric) {
				t.Fatalf("%s is not on /metrics nor registered", tt.metric)
			}
			if got := d(tt.metric, tt.labels); got != tt.want {
				t.Errorf("%s%v moved by %v, want %v", tt.metric, tt.labels, got, tt.want)
			}
		})
	}
	atLeast := []struct {
		name   string
		metric string
		labels L
		min    float64
	}{
		// 4 holder signatures + 1 OCSP response; the CA's certificate
		// signatures may add more.
		{"HSM signatures timed", "sigillo_hsm_operation_seconds", L{"op": "sign"}, 5},
		{"audit records appended", "sigillo_audit_records_total", L{"outcome": "success"}, 4},
		{"audit append latency observed", "sigillo_audit_append_duration_seconds", nil, 10},
		{"store statements timed", "sigillo_store_query_seconds", L{"op": "exec"}, 1},
		{"store single-row queries timed", "sigillo_store_query_seconds", L{"op": "queryrow"}, 1},
		{"store transactions timed", "sigillo_store_query_seconds", L{"op": "tx"}, 1},
	}
	for _, tt := range atLeast {
		t.Run(tt.name, func(t *testing.T) {
			if got := d(tt.metric, tt.labels); got < tt.min {
				t.Errorf("%s%v moved by %v, want at least %v", tt.metric, tt.labels, got, tt.min)
			}
		})
	}
	gauges := []struct {
		metric string
		labels L
		want   float64
	}{
		{"sigillo_hsm_up", nil, 1},
		{"sigillo_store_up", nil, 1},
		{"sigillo_jobs_open", L{"state": "queued"}, 0},
		{"sigillo_jobs_open", L{"state": "running"}, 0},
		{"sigillo_http_requests_in_flight", nil, 1}, // the scrape itself
	}
	for _, g := range gauges {
		t.Run("gauge "+g.metric, func(t *testing.T) {
			if _, ok := after[g.metric]; !ok {
				t.Fatalf("%s is not on /metrics", g.metric)
			}
			if got := value(after, g.metric, g.labels); got != g.want {
				t.Errorf("%s%v = %v, want %v", g.metric, g.labels, got, g.want)
			}
		})
	}
	t.Run("every sigillo metric is documented", func(t *testing.T) {
		doc, err := os.ReadFile("../docs/METRICS.md")
		if err != nil {
			t.Fatal(err)
		}
		for name := range after {
			if strings.HasPrefix(name, "sigillo_") && !strings.Contains(string(doc), "`"+name+"`") {
				t.Errorf("docs/METRICS.md does not describe %s", name)
			}
		}
	})

	checkDashboard(t, srv, after)
}

// checkDashboard parses docs/grafana-dashboard.json and checks that each
// panel queries metrics the replica really exports.
func checkDashboard(t *testing.T, srv *servertest.Server, scraped map[string]*dto.MetricFamily) {
	t.Run("grafana dashboard queries real metrics", func(t *testing.T) {
		raw, err := os.ReadFile("../docs/grafana-dashboard.json")
		if err != nil {
			t.Fatal(err)
		}
		var dash struct {
			Title         string `json:"title"`
			UID           string `json:"uid"`
			SchemaVersion int    `json:"schemaVersion"`
			Templating    struct {
				List []struct {
					Name string `json:"name"`
					Type string `json:"type"`
					// Query is a string, or {"query": "..."} for a
					// Prometheus query variable.
					Query json.RawMessage `json:"query"`
				} `json:"list"`
			} `json:"templating"`
			Panels []struct {
				ID         int    `json:"id"`
				Title      string `json:"title"`
				Type       string `json:"type"`
				Datasource struct {
					Type string `json:"type"`
					UID  string `json:"uid"`
				} `json:"datasource"`
				GridPos struct{ H, W, X, Y int } `json:"gridPos"`
				Targets []struct {
					Expr  string `json:"expr"`
					RefID string `json:"refId"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(raw, &dash); err != nil {
			t.Fatalf("not valid JSON: %v", err)
		}
		if dash.Title == "" || dash.UID == "" || dash.SchemaVersion < 36 {
			t.Fatalf("title %q uid %q schemaVersion %d: want both set and schemaVersion >= 36", dash.Title, dash.UID, dash.SchemaVersion)
		}
		metricName := regexp.MustCompile(`\bsigillo_[a-zA-Z0-9_]+`)
		used := map[string]bool{}
		check := func(where, name string) {
			fam := family(name, scraped)
			if fam == "" && exported(srv.App.Registry, name) {
				fam = name
			}
			if fam == "" {
				t.Errorf("%s: %s is not a metric the replica exports", where, name)
			}
			used[fam] = true
		}
		dsVar := ""
		for _, v := range dash.Templating.List {
			var q string
			if json.Unmarshal(v.Query, &q) != nil {
				var obj struct{ Query string }
				if err := json.Unmarshal(v.Query, &obj); err != nil {
					t.Errorf("variable %q: query %s", v.Name, v.Query)
				}
				q = obj.Query
			}
			if v.Type == "datasource" && q == "prometheus" {
				dsVar = v.Name
			}
			for _, n := range metricName.FindAllString(q, -1) {
				check("variable "+v.Name, n)
			}
		}
		if dsVar == "" {
			t.Fatal("no Prometheus datasource template variable")
		}
		ids := map[int]bool{}
		for _, p := range dash.Panels {
			if ids[p.ID] {
				t.Errorf("panel %q: duplicate id %d", p.Title, p.ID)
			}
			ids[p.ID] = true
			if p.Title == "" || p.Type == "" || p.GridPos.W == 0 || p.GridPos.H == 0 {
				t.Errorf("panel %d: title %q type %q gridPos %+v", p.ID, p.Title, p.Type, p.GridPos)
			}
			if p.Datasource.Type != "prometheus" || p.Datasource.UID != "${"+dsVar+"}" {
				t.Errorf("panel %q: datasource %+v, want the ${%s} variable", p.Title, p.Datasource, dsVar)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, q := range p.Targets {
				names := metricName.FindAllString(q.Expr, -1)
				if len(names) == 0 || q.RefID == "" {
					t.Errorf("panel %q: query %q (refId %q) names no sigillo metric", p.Title, q.Expr, q.RefID)
				}
				for _, n := range names {
					check(fmt.Sprintf("panel %q", p.Title), n)
				}
			}
		}
		for _, want := range []string{
			"sigillo_csc_signatures_total", "sigillo_http_request_duration_seconds", "sigillo_hsm_operation_seconds",
			"sigillo_hsm_operation_errors_total", "sigillo_sam_authorize_total", "sigillo_sam_sad_issued_total",
			"sigillo_sam_sad_signatures_total", "sigillo_audit_append_duration_seconds", "sigillo_audit_record_failures_total",
			"sigillo_store_query_seconds", "sigillo_http_requests_total", "sigillo_hsm_up", "sigillo_store_up",
		} {
			if !used[want] {
				t.Errorf("no panel shows %s", want)
			}
		}
	})
}

// family maps a name used in PromQL (a histogram's _bucket, _sum, _count
// included) to the scraped family it belongs to, or "".
func family(name string, scraped map[string]*dto.MetricFamily) string {
	if _, ok := scraped[name]; ok {
		return name
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if f, ok := scraped[base]; ok && (f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY) {
				return base
			}
		}
	}
	return ""
}

// exported reports whether the registry has a collector for name even
// though the scrape did not show it (a vector whose only series appear on
// failures, e.g. HSM errors by PKCS#11 code): registering a probe of that
// name fails exactly when one is registered.
func exported(reg *prometheus.Registry, name string) bool {
	probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "probe"})
	if err := reg.Register(probe); err != nil {
		return true
	}
	reg.Unregister(probe)
	return false
}

// scrape reads /metrics over HTTP and parses the text exposition format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value sums the series of name whose labels include all of match: counter
// and gauge values, or a histogram's observation count.
func value(fams map[string]*dto.MetricFamily, name string, match map[string]string) float64 {
	f, ok := fams[name]
	if !ok {
		return 0
	}
	var sum float64
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		matches := true
		for k, v := range match {
			if have[k] != v {
				matches = false
			}
		}
		if !matches {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		}
	}
	return sum
}

// client calls the replica over HTTP and checks each status.
type client struct {
	t   *testing.T
	url string
}

func (c *client) do(method, path, auth, contentType string, body []byte, want int) []byte {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	return b
}

func (c *client) call(method, path, auth string, body any, want int) map[string]any {
	c.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		c.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(c.do(method, path, auth, "application/json", b, want), &m); err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return m
}

// totpCode is the authenticator's code for the step offset steps from now.
func totpCode(t *testing.T, uri string, offset int) string {
	t.Helper()
	key, err := potp.NewKeyFromURL(uri)
	if err != nil {
		t.Fatal(err)
	}
	period := time.Duration(key.Period()) * time.Second
	code, err := totp.GenerateCodeCustom(key.Secret(), time.Now().Add(time.Duration(offset)*period), totp.ValidateOpts{
		Period: uint(key.Period()), Digits: key.Digits(), Algorithm: key.Algorithm(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// wrongTOTP is a well-formed code that no step near now accepts.
func wrongTOTP(t *testing.T, uri string) string {
	t.Helper()
	var near []string
	for off := -3; off <= 3; off++ {
		near = append(near, totpCode(t, uri, off))
	}
	for i := 0; ; i++ {
		code := fmt.Sprintf("%0*d", len(near[0]), i)
		if !slices.Contains(near, code) {
			return code
		}
	}
}

// chainOf returns the credential's certificate and its issuer.
func chainOf(t *testing.T, cred map[string]any) (leaf, issuer *x509.Certificate) {
	t.Helper()
	certs := cred["certificates"].([]any)
	parse := func(i int) *x509.Certificate {
		der, err := base64.StdEncoding.DecodeString(certs[i].(string))
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return parse(0), parse(1)
}
