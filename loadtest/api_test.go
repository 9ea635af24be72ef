package loadtest

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestSignedDocuments(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     []string
		fastPath bool
		wantErr  bool
	}{
		{"typical", `{"DocumentWithSignature":["JVBERi0x","QUJD+/=="]}`, []string{"JVBERi0x", "QUJD+/=="}, true, false},
		{"spaces and other keys", "{ \"validationInfo\": {\"ocsp\": []},\n \"DocumentWithSignature\" : [ \"QQ==\" , \"Qg==\" ] }", []string{"QQ==", "Qg=="}, true, false},
		{"empty array", `{"DocumentWithSignature":[]}`, []string{}, true, false},
		{"escaped slash goes the slow way", `{"DocumentWithSignature":["QU\/Q"]}`, []string{"QU/Q"}, false, false},
		{"key nested, not top-level", `{"x":{"DocumentWithSignature":["QQ=="]}}`, nil, false, false},
		{"key inside a string", `{"x":"\"DocumentWithSignature\":[\"QQ==\"]"}`, nil, false, false},
		{"key twice", `{"DocumentWithSignature":["QQ=="],"DocumentWithSignature":["Qg=="]}`, []string{"Qg=="}, false, false},
		{"same key in another case wins in encoding/json", `{"DocumentWithSignature":["QQ=="],"documentwithsignature":["Qg=="]}`, []string{"Qg=="}, false, false},
		{"not a string array", `{"DocumentWithSignature":[1]}`, nil, false, true},
		{"broken JSON after the array", `{"DocumentWithSignature":["QQ=="],}`, nil, false, true},
		{"truncated", `{"DocumentWithSignature":["QQ==`, nil, false, true},
		{"absent", `{"SignatureObject":["QQ=="]}`, nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := signedDocuments([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if _, fast := sliceDocuments([]byte(tt.in)); fast != tt.fastPath {
				t.Errorf("fast path taken: %v, want %v", fast, tt.fastPath)
			}
		})
	}
}

// FuzzSignedDocuments checks the fast path never disagrees with
// encoding/json.
func FuzzSignedDocuments(f *testing.F) {
	for _, s := range []string{
		`{"DocumentWithSignature":["JVBERi0x","QUJD+/=="]}`, `{"DocumentWithSignature":[]}`,
		`{"a":1,"DocumentWithSignature":["QQ=="],"b":[true]}`, `{"x":{"DocumentWithSignature":["QQ=="]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := sliceDocuments(data)
		if !ok {
			return
		}
		var r signDocResp
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatalf("fast path accepted what encoding/json refuses (%v): %q", err, data)
		}
		if !slices.Equal(fast, r.DocumentWithSignature) && !(len(fast) == 0 && len(r.DocumentWithSignature) == 0) {
			t.Fatalf("fast path %q, encoding/json %q for %q", fast, r.DocumentWithSignature, data)
		}
	})
}
