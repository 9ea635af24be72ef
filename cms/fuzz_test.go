package cms_test

import (
	"testing"

	"github.com/sigillo/sigillo/cms"
)

// FuzzParse feeds arbitrary bytes to the SignedData parser and everything
// that runs on its result. Seeds (testdata/fuzz/FuzzParse) are real CMS
// signatures (RSA, PSS, ECDSA, with a time-stamp) and time-stamp tokens.
func FuzzParse(f *testing.F) {
	f.Add([]byte{0x30, 0x03, 0x06, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		p, err := cms.Parse(der)
		if err != nil {
			return
		}
		_ = p.Verify(make([]byte, p.Hash.Size()))
		_ = p.CheckPAdESBaseline()
		_, _ = p.SignatureTimestamp()
		_ = p.SignedAttrTypes()
	})
}

// FuzzParseTimestampToken covers the TSTInfo decoding on top of Parse.
func FuzzParseTimestampToken(f *testing.F) {
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		_, _ = cms.ParseTimestampToken(der)
	})
}
