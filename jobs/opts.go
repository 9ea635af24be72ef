package jobs

import (
	"crypto"
	"crypto/rsa"
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sigillo/sigillo/errs"
)

var hashByName = map[string]crypto.Hash{"SHA-256": crypto.SHA256, "SHA-384": crypto.SHA384, "SHA-512": crypto.SHA512}

// encodeOpts stores signer options as text: "SHA-256" (PKCS#1 v1.5 or
// ECDSA) or "pss:SHA-256:<salt length>".
func encodeOpts(o crypto.SignerOpts) (string, error) {
	h := o.HashFunc()
	if _, ok := hashByName[h.String()]; !ok {
		return "", errs.Invalidf("Invalid parameter hashAlgorithmOID")
	}
	if p, ok := o.(*rsa.PSSOptions); ok {
		return "pss:" + h.String() + ":" + strconv.Itoa(p.SaltLength), nil
	}
	return h.String(), nil
}

func decodeOpts(s string) (crypto.SignerOpts, error) {
	if rest, ok := strings.CutPrefix(s, "pss:"); ok {
		name, salt, _ := strings.Cut(rest, ":")
		h, ok := hashByName[name]
		n, err := strconv.Atoi(salt)
		if !ok || err != nil {
			return nil, fmt.Errorf("stored signer options %q", s)
		}
		return &rsa.PSSOptions{Hash: h, SaltLength: n}, nil
	}
	h, ok := hashByName[s]
	if !ok {
		return nil, fmt.Errorf("stored signer options %q", s)
	}
	return h, nil
}

// pssOpts are the PSS options signDoc uses (salt = hash length).
func pssOpts(h crypto.Hash) *rsa.PSSOptions {
	return &rsa.PSSOptions{Hash: h, SaltLength: h.Size()}
}

type metrics struct {
	jobs  *prometheus.CounterVec // event: accepted, finished, failed_items, notified, notify_failed
	items *prometheus.CounterVec // outcome: signed, failed
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sigillo_jobs_total",
			Help: "Asynchronous signing jobs by event (accepted, finished, notified, notify_failed)."}, []string{"event"}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sigillo_job_items_total",
			Help: "Asynchronous signing job items finished, by outcome."}, []string{"outcome"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.jobs, err = register(reg, m.jobs); err != nil {
		return nil, err
	}
	if m.items, err = register(reg, m.items); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("jobs metrics: %w", err)
	}
	return c, nil
}
