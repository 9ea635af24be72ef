package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/store"
)

func TestStatusMapsKinds(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		flavor Flavor
		status int
		code   string
	}{
		{"invalid", errs.Invalidf("Invalid parameter x"), CSC, 400, "invalid_request"},
		{"pin code kept, 400 on CSC", errs.New(errs.Forbidden, "invalid_pin", "The PIN is invalid"), CSC, 400, "invalid_pin"},
		{"forbidden elsewhere", errs.New(errs.Forbidden, "", "wrong code"), REST, 403, "access_denied"},
		{"csc hides not found", errs.New(errs.NotFound, "", "Invalid parameter credentialID"), CSC, 400, "invalid_request"},
		{"rest shows not found", errs.New(errs.NotFound, "", "no such user"), REST, 404, "not_found"},
		{"conflict rest", errs.New(errs.Conflict, "", "exists"), REST, 409, "conflict"},
		{"unauthenticated", errs.New(errs.Unauthenticated, "expired_token", "expired"), CSC, 401, "expired_token"},
		{"rate limited", &errs.Error{Kind: errs.RateLimited, Msg: "slow down"}, CSC, 429, "too_many_requests"},
		{"store down", fmt.Errorf("x: %w", store.ErrUnavailable), CSC, 503, "temporarily_unavailable"},
		{"wrapped kind", fmt.Errorf("ctx: %w", errs.Invalidf("bad")), CSC, 400, "invalid_request"},
		{"unclassified is 500 without detail", errors.New("secret detail"), CSC, 500, "server_error"},
		{"client went away is not a 5xx", fmt.Errorf("sign: %w", errs.Wrap(errs.Internal, "x", context.Canceled)), CSC, 499, "request_cancelled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body := Status(tt.err, tt.flavor)
			if st != tt.status || body.Error != tt.code {
				t.Fatalf("got %d %q, want %d %q", st, body.Error, tt.status, tt.code)
			}
			if strings.Contains(body.Description, "secret detail") {
				t.Fatal("internal detail leaked to the client")
			}
		})
	}
}

func TestWriteErrorSetsRetryAfter(t *testing.T) {
	gin.SetMode(gin.TestMode)
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	c.Request = httptest.NewRequest("POST", "/x", nil)
	WriteError(c, nil, CSC, &errs.Error{Kind: errs.RateLimited, Msg: "slow", RetryAfter: 1500_000_000})
	if w.Code != 429 || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("got %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	var b ErrorBody
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Error != "too_many_requests" || b.Description != "slow" {
		t.Fatalf("body %s", w.Body)
	}
}

func TestUnmarshalRejectsNonObjects(t *testing.T) {
	type req struct {
		Name string  `json:"name"`
		N    FlexInt `json:"n"`
	}
	tests := []struct {
		name    string
		body    string
		wantErr string
		wantN   int64
	}{
		{"empty", "", "Missing JSON request body", 0},
		{"array", "[1]", "must be a JSON object", 0},
		{"garbage", "{nope", "Malformed JSON", 0},
		{"trailing", `{"name":"a"} {}`, "Trailing data", 0},
		{"wrong type", `{"name":5}`, "parameter name", 0},
		{"number as string", `{"n":"7"}`, "", 7},
		{"number", `{"n":7,"unknown":true}`, "", 7},
		{"non-numeric string", `{"n":"abc"}`, "Malformed JSON", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r req
			err := Unmarshal([]byte(tt.body), &r)
			if tt.wantErr == "" {
				if err != nil || r.N.Value != tt.wantN {
					t.Fatalf("err %v n %d", err, r.N.Value)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errs.KindOf(err) != errs.Invalid {
				t.Fatalf("got %v, want Invalid containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestBearerAndRequireToken(t *testing.T) {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.GET("/x", RequireToken("operator-token"), func(c *gin.Context) { c.String(200, "in") })
	tests := []struct {
		header string
		status int
	}{
		{"", 401},
		{"Bearer operator-token", 200},
		{"bearer operator-token", 200},
		{"Bearer wrong", 401},
		{"Basic abc", 400},
		{"Bearer", 400},
		{"Bearer a b", 400},
	}
	for _, tt := range tests {
		req := httptest.NewRequest("GET", "/x", nil)
		if tt.header != "" {
			req.Header.Set("Authorization", tt.header)
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != tt.status {
			t.Errorf("%q: status %d, want %d", tt.header, w.Code, tt.status)
		}
		if w.Code != http.StatusOK && !strings.Contains(w.Body.String(), `"error"`) {
			t.Errorf("%q: body not in the error shape: %s", tt.header, w.Body)
		}
	}
}
