package csc

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/internal/httpx"
)

// fields is a request body as its top-level members. We read members one
// by one rather than into a struct so that each type error gets the CSC
// wording ("Missing (or invalid type) string parameter credentialID"),
// aliases and case variants are found, and unknown members are ignored.
type fields map[string]json.RawMessage

// parseFields reads a JSON object. An empty body is an empty object: every
// parameter is then reported missing by name, which tells the client more
// than "missing body".
func parseFields(body []byte) (fields, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return fields{}, nil
	}
	f := fields{}
	if err := httpx.Unmarshal(body, &f); err != nil {
		return nil, err
	}
	return f, nil
}

// get returns the member under one of names: exact spelling first, then
// (as encoding/json would) a case-insensitive match. JSON null counts as
// absent.
func (f fields) get(names ...string) (json.RawMessage, bool) {
	for _, n := range names {
		if v, ok := f[n]; ok {
			if isNull(v) {
				return nil, false
			}
			return v, true
		}
	}
	for k, v := range f {
		for _, n := range names {
			if strings.EqualFold(k, n) {
				if isNull(v) {
					return nil, false
				}
				return v, true
			}
		}
	}
	return nil, false
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

// has reports whether a member is present and not null.
func (f fields) has(names ...string) bool {
	_, ok := f.get(names...)
	return ok
}

// str returns a string member ("" when absent). name is the spelling used
// in messages; aliases are other spellings real clients send.
func (f fields) str(name string, required bool, aliases ...string) (string, error) {
	v, ok := f.get(append([]string{name}, aliases...)...)
	if !ok {
		if required {
			return "", errs.Invalidf("Missing (or invalid type) string parameter %s", name)
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", errs.Invalidf("Missing (or invalid type) string parameter %s", name)
	}
	if required && s == "" {
		return "", errs.Invalidf("Missing (or invalid type) string parameter %s", name)
	}
	return s, nil
}

// boolean returns a boolean member, def when absent. "true"/"false" as
// strings are accepted: some clients stringify every scalar.
func (f fields) boolean(name string, def bool) (bool, error) {
	v, ok := f.get(name)
	if !ok {
		return def, nil
	}
	var b bool
	if err := json.Unmarshal(v, &b); err == nil {
		return b, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		switch s {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, errs.Invalidf("Missing (or invalid type) boolean parameter %s", name)
}

// integer returns an integer member as a number or numeric string
// (httpx.FlexInt), and whether it was present.
func (f fields) integer(name string, required bool) (int64, bool, error) {
	v, ok := f.get(name)
	if !ok {
		if required {
			return 0, false, errs.Invalidf("Missing (or invalid type) integer parameter %s", name)
		}
		return 0, false, nil
	}
	var n httpx.FlexInt
	if err := n.UnmarshalJSON(v); err != nil || !n.Set {
		return 0, false, errs.Invalidf("Missing (or invalid type) integer parameter %s", name)
	}
	return n.Value, true, nil
}

// strList returns an array-of-strings member (nil when absent).
func (f fields) strList(name string) ([]string, bool, error) {
	v, ok := f.get(name)
	if !ok {
		return nil, false, nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil {
		return nil, true, errs.Invalidf("Missing (or invalid type) array parameter %s", name)
	}
	out := make([]string, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			return nil, true, errs.Invalidf("Invalid parameter %s", name)
		}
	}
	return out, true, nil
}
