package pades

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"io"
	"strings"

	"github.com/digitorus/pdf"

	"github.com/sigillo/sigillo/cms"
)

// ValidationSource returns revocation data for cert, issued by issuer: a
// DER OCSP response, a DER CRL, or both. At least one must be non-empty.
// The CA implements it in-process; package pades/revfetch fetches over
// HTTP from the certificate's OCSP and CRL URLs.
type ValidationSource interface {
	Revocation(ctx context.Context, cert, issuer *x509.Certificate) (ocsp []byte, crl []byte, err error)
}

// AddDSS appends to the signed PDF in an incremental update with a /DSS
// dictionary (ETSI EN 319 142-1 B-LT) holding every certificate of the
// signatures and time-stamps found in the document (plus extra) and their
// revocation data from vs, and writes the whole result to out.
func AddDSS(ctx context.Context, in io.ReaderAt, size int64, out io.Writer, vs ValidationSource, extra []*x509.Certificate) error {
	upd, err := dssUpdate(ctx, in, size, vs, extra)
	if err != nil {
		return err
	}
	doc := &composite{base: in, baseSize: size, tail: upd}
	if _, err := openDocument(doc, doc.size()); err != nil {
		return fmt.Errorf("%w: %w", ErrSelfCheck, err)
	}
	return writeAll(ctx, out, in, size, upd)
}

// AddDocTimeStamp appends a document time-stamp (/Type /DocTimeStamp,
// /SubFilter /ETSI.RFC3161) over the whole PDF, as B-LTA requires after
// the DSS, and writes the whole result to out.
func AddDocTimeStamp(ctx context.Context, in io.ReaderAt, size int64, out io.Writer, ts cms.Timestamper, h crypto.Hash, reserve int) error {
	if reserve <= 0 {
		reserve = DefaultTimestampReserve
	}
	upd, field, err := docTimeStampUpdate(ctx, in, size, ts, h, reserve)
	if err != nil {
		return err
	}
	doc := &composite{base: in, baseSize: size, tail: upd}
	if err := selfCheck(doc, doc.size(), []string{field}, size); err != nil {
		return err
	}
	return writeAll(ctx, out, in, size, upd)
}

func docTimeStampUpdate(ctx context.Context, in io.ReaderAt, size int64, ts cms.Timestamper, h crypto.Hash, reserve int) ([]byte, string, error) {
	if ts == nil {
		return nil, "", fmt.Errorf("pades: document time-stamp needs a Timestamper")
	}
	if h == 0 {
		h = crypto.SHA256
	}
	d, err := openDocument(in, size)
	if err != nil {
		return nil, "", err
	}
	l, err := d.addSignature(sigSpec{kind: kindDocTimeStamp, capacity: reserve})
	if err != nil {
		return nil, "", err
	}
	hh := h.New()
	if err := l.hashRange(hh, in); err != nil {
		return nil, "", err
	}
	digest := hh.Sum(nil)
	token, err := ts.Timestamp(ctx, digest, h)
	if err != nil {
		return nil, "", fmt.Errorf("pades: document time-stamp: %w", err)
	}
	info, err := cms.ParseTimestampToken(token)
	if err != nil {
		return nil, "", err
	}
	if info.Hash != h || !bytes.Equal(info.HashedMessage, digest) {
		return nil, "", fmt.Errorf("%w: document time-stamp imprint does not match", cms.ErrTimestamp)
	}
	if err := l.embed(token); err != nil {
		return nil, "", err
	}
	return l.upd, l.field, nil
}

// dssUpdate builds the incremental update carrying the DSS.
func dssUpdate(ctx context.Context, in io.ReaderAt, size int64, vs ValidationSource, extra []*x509.Certificate) (upd []byte, err error) {
	if vs == nil {
		return nil, fmt.Errorf("pades: B-LT needs a ValidationSource")
	}
	infos, err := Verify(in, size)
	if err != nil {
		return nil, err
	}
	var pool []*x509.Certificate
	add := func(cs ...*x509.Certificate) {
	next:
		for _, c := range cs {
			for _, p := range pool {
				if p.Equal(c) {
					continue next
				}
			}
			pool = append(pool, c)
		}
	}
	valid := 0
	for _, si := range infos {
		if si.Err != nil {
			continue // e.g. a legacy SHA-1 signature: no validation data for it
		}
		valid++
		add(si.CMS.Certificates...)
		if si.Timestamp != nil {
			add(si.Timestamp.Token.Certificates...)
		}
	}
	if valid == 0 {
		return nil, fmt.Errorf("%w: the document has no valid signature", ErrValidationData)
	}
	add(extra...)
	// Revocation data for every certificate that is not self-issued.
	type rev struct{ ocsp, crl []byte }
	var revs []rev
	n := len(pool)
	for i := 0; i < n; i++ {
		c := pool[i]
		if bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil {
			continue
		}
		var issuer *x509.Certificate
		for _, p := range pool {
			if bytes.Equal(c.RawIssuer, p.RawSubject) && c.CheckSignatureFrom(p) == nil {
				issuer = p
				break
			}
		}
		if issuer == nil {
			return nil, fmt.Errorf("%w: issuer of %q not available", ErrValidationData, c.Subject)
		}
		o, crl, err := vs.Revocation(ctx, c, issuer)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrValidationData, c.Subject, err)
		}
		if len(o) == 0 && len(crl) == 0 {
			return nil, fmt.Errorf("%w: no OCSP response or CRL for %q", ErrValidationData, c.Subject)
		}
		revs = append(revs, rev{o, crl})
	}

	d, err := openDocument(in, size)
	if err != nil {
		return nil, err
	}
	defer guard(&err)
	u := d.newUpdate()
	dss := newDict()
	existing, err := entry(d.root, "DSS", pdf.Dict)
	if err != nil {
		return nil, err
	}
	if existing.Kind() == pdf.Dict {
		e, err := rawEntries(existing)
		if err != nil {
			return nil, err
		}
		dss = dictFrom(e)
	}
	arrays := map[string][]string{}
	for _, k := range []string{"Certs", "OCSPs", "CRLs"} {
		a, err := entry(existing, k, pdf.Array)
		if err != nil {
			return nil, err
		}
		if a.Kind() == pdf.Array {
			if arrays[k], err = rawArrayItems(a); err != nil {
				return nil, err
			}
		}
	}
	addStream := func(key string, data []byte) {
		r := u.alloc()
		u.stream(r, newDict(), data)
		arrays[key] = append(arrays[key], r.String())
	}
	for _, c := range pool {
		addStream("Certs", c.Raw)
	}
	for _, r := range revs {
		if len(r.ocsp) > 0 {
			addStream("OCSPs", r.ocsp)
		}
		if len(r.crl) > 0 {
			addStream("CRLs", r.crl)
		}
	}
	for _, k := range []string{"Certs", "OCSPs", "CRLs"} {
		if len(arrays[k]) > 0 {
			dss.set(k, "["+strings.Join(arrays[k], " ")+"]")
		}
	}
	dssRef := u.alloc()
	u.object(dssRef, dss.String())
	cat, err := u.catalog()
	if err != nil {
		return nil, err
	}
	cat.set("DSS", dssRef.String())
	if err := u.addESIC(cat); err != nil {
		return nil, err
	}
	u.writeCatalog(cat)
	return u.finish()
}
