package csc

import "testing"

func TestContainsFoldFindsTheMemberInAnyCase(t *testing.T) {
	for _, tc := range []struct {
		body string
		want bool
	}{
		{`{"operationMode":"A"}`, true},
		{`{"OPERATIONMODE":"A"}`, true},
		{`{"OperationMode" : "S"}`, true},
		{`{"hashes":["b3BlcmF0aW9uTW9kZQ=="]}`, false},
		{`{"operationMod":"A"}`, false},
		{`operationmode`, true},
		{``, false},
	} {
		if got := containsFold([]byte(tc.body), "operationmode"); got != tc.want {
			t.Errorf("containsFold(%q) = %v, want %v", tc.body, got, tc.want)
		}
	}
}
