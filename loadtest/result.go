package loadtest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Params are the run's settings as the report shows them.
type Params struct {
	Servers    []string `json:"servers"`
	Workers    int      `json:"workers"`
	Duration   string   `json:"duration,omitempty"`
	Count      int      `json:"count,omitempty"`
	Batch      int      `json:"batch"`
	KeyAlgo    string   `json:"key_algo"`
	VerifyRate float64  `json:"verify_rate"`
	Users      int      `json:"users"`
	Multisign  int      `json:"multisign,omitempty"`
	PDFSize    int      `json:"pdf_size,omitempty"`
	Level      string   `json:"level,omitempty"`
	GoMaxProcs int      `json:"gomaxprocs"`
	Command    string   `json:"command,omitempty"`
}

// HSMResult is the raw PKCS#11 signing rate of the token.
type HSMResult struct {
	KeyAlgo    string  `json:"key_algo"`
	Workers    int     `json:"workers"`
	Seconds    float64 `json:"seconds"`
	Signatures int64   `json:"signatures"`
	Rate       float64 `json:"rate"` // signatures per second
	// CPUSeconds is the CPU this process used while measuring (0 when
	// unknown), and CPUPerSigMicros that per signature: the HSM's cost of
	// a signature whatever else the machine is doing.
	CPUSeconds      float64 `json:"cpu_seconds,omitempty"`
	CPUPerSigMicros float64 `json:"cpu_per_sig_us,omitempty"`
}

// CPU is the CPU the run cost, server and client (this process).
type CPU struct {
	ServerSeconds float64 `json:"server_seconds"`
	ClientSeconds float64 `json:"client_seconds"`
	// PerSigMicros is (server + client) CPU per good signature.
	PerSigMicros float64 `json:"per_sig_us"`
	// Ratio is the raw HSM's CPU per signature divided by PerSigMicros:
	// the share of the CPU spent on signing that the HSM itself needs. On
	// a busy shared machine it is steadier than the wall-clock Ratio.
	Ratio float64 `json:"ratio,omitempty"`
}

// RSS is one server's resident memory from its /metrics.
type RSS struct {
	Server string      `json:"server"`
	Start  int64       `json:"start_bytes,omitempty"`
	End    int64       `json:"end_bytes,omitempty"`
	Max    int64       `json:"max_bytes,omitempty"`
	Series []RSSSample `json:"series,omitempty"`
	Error  string      `json:"error,omitempty"`
}

// RSSSample is a reading of process_resident_memory_bytes.
type RSSSample struct {
	T     float64 `json:"t"` // seconds since the start of the run
	Bytes int64   `json:"bytes"`
}

// ErrorKind counts one class of failure, with the first message seen.
type ErrorKind struct {
	Kind    string `json:"kind"`
	Count   int    `json:"count"`
	Example string `json:"example"`
}

// Result is what a run measured.
type Result struct {
	Scenario  string    `json:"scenario"`
	Params    Params    `json:"params"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Seconds   float64   `json:"seconds"`
	Provision struct {
		Users   int     `json:"users"`
		Seconds float64 `json:"seconds"`
	} `json:"provisioning"`
	// Signatures is the number of good signatures (or signed documents).
	Signatures int `json:"signatures"`
	// Operations counts timed requests (sessions for authorize-sign).
	Operations int `json:"operations"`
	// Errors counts failed operations, verification failures included.
	Errors       int         `json:"errors"`
	ErrorsByKind []ErrorKind `json:"errors_by_kind"`
	// Authorizations counts credentials/authorize calls during the run
	// (signhash, signdoc: one per SAD of Multisign signatures; each costs
	// the server a PIN hash verification).
	Authorizations int `json:"authorizations"`
	// Verified is the number of signatures checked against the certificate.
	Verified int `json:"verified"`
	// Rate is Signatures per second of the run.
	Rate float64 `json:"rate"`
	// Latency is over successful operations.
	Latency Percentiles `json:"latency"`
	// OTPWaitSeconds is the time workers waited for a fresh TOTP step
	// (authorize-sign), summed over workers.
	OTPWaitSeconds float64 `json:"otp_wait_seconds,omitempty"`
	// RawHSM is the token's raw rate measured just before the run, and
	// RawHSMAfter just after it: on a shared machine the spread between
	// the two says how much to trust the ratio.
	RawHSM      *HSMResult `json:"raw_hsm,omitempty"`
	RawHSMAfter *HSMResult `json:"raw_hsm_after,omitempty"`
	// Ratio is Rate divided by the mean of the raw rates before and after.
	Ratio float64 `json:"ratio,omitempty"`
	// CPU is set when the servers' process_cpu_seconds_total could be read.
	CPU *CPU `json:"cpu,omitempty"`
	// LoadAvg is the machine's 1-minute load average at start and end
	// (Linux; 0 when unknown): a busy machine explains a noisy run.
	LoadAvg   [2]float64 `json:"loadavg_1m"`
	RSS       []RSS      `json:"rss,omitempty"`
	Timeline  []Second   `json:"timeline"`
	Histogram []Bucket   `json:"histogram"`
}

// WriteFiles writes result.json and report.html into dir (created if
// needed) and returns their paths.
func (r *Result) WriteFiles(dir string) (jsonPath, htmlPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("report dir: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", fmt.Errorf("encode result: %w", err)
	}
	jsonPath = filepath.Join(dir, "result.json")
	if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
		return "", "", fmt.Errorf("write result: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, "report.html"))
	if err != nil {
		return "", "", fmt.Errorf("write report: %w", err)
	}
	if err := WriteHTML(f, r); err != nil {
		f.Close()
		return "", "", err
	}
	if err := f.Close(); err != nil {
		return "", "", fmt.Errorf("write report: %w", err)
	}
	return jsonPath, f.Name(), nil
}
