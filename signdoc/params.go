package signdoc

import (
	"strings"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/pades"
)

// Signature formats (CSC signature_format).
const (
	FormatPAdES = "P"
	FormatCAdES = "C"
)

// Envelope properties (CSC signed_envelope_property) we produce.
const (
	EnvelopeCertification = "Certification"
	EnvelopeRevision      = "Revision"
	EnvelopeDetached      = "Detached"
)

// ParseFormat checks a signature_format value ("P" or "C"; others are
// formats we do not produce).
func ParseFormat(s string) (string, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case FormatPAdES:
		return FormatPAdES, nil
	case FormatCAdES:
		return FormatCAdES, nil
	case "":
		return "", errs.Invalidf("Missing (or invalid type) string parameter signature_format")
	}
	return "", errs.Invalidf("Invalid parameter signature_format")
}

// ParseLevel reads a conformance_level, case-insensitively: "Ades-B-B"
// (also "AdES-B-B", "Ades-B", "B-B"; the default when empty), "Ades-B-T"
// ("Ades-T"), "Ades-B-LT" ("Ades-LT"), "Ades-B-LTA" ("Ades-LTA").
func ParseLevel(s string) (pades.Level, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	if v == "" {
		return pades.BB, nil
	}
	v = strings.TrimPrefix(v, "ades-")
	if v != "b-" {
		v = strings.TrimPrefix(v, "b-")
	}
	switch v {
	case "b":
		return pades.BB, nil
	case "t":
		return pades.BT, nil
	case "lt":
		return pades.BLT, nil
	case "lta":
		return pades.BLTA, nil
	}
	return 0, errs.Invalidf("Invalid parameter conformance_level")
}

// LevelName is the CSC spelling of a level ("Ades-B-T").
func LevelName(l pades.Level) string { return "Ades-" + l.String() }

// ParseEnvelope checks signed_envelope_property for a format and returns
// the canonical spelling; empty takes our default (Revision for P,
// Detached for C).
func ParseEnvelope(format, s string) (string, error) {
	v := strings.TrimSpace(s)
	switch format {
	case FormatPAdES:
		switch {
		case v == "" || strings.EqualFold(v, EnvelopeRevision):
			return EnvelopeRevision, nil
		case strings.EqualFold(v, EnvelopeCertification):
			return EnvelopeCertification, nil
		}
	case FormatCAdES:
		if v == "" || strings.EqualFold(v, EnvelopeDetached) {
			return EnvelopeDetached, nil
		}
	}
	return "", errs.Invalidf("Invalid parameter signed_envelope_property")
}
