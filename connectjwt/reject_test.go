package connectjwt

import (
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/realmhook/realmhook"
)

func TestTokenFromRequest(t *testing.T) {
	tests := []struct {
		name       string
		target     string
		headers    []string
		want       string
		wantReason string
	}{
		{name: "Header", target: "/x", headers: []string{"JWT a.b.c"}, want: "a.b.c"},
		{name: "HeaderSchemeAnyCase", target: "/x", headers: []string{"jwt a.b.c"}, want: "a.b.c"},
		{name: "Query", target: "/x?jwt=a.b.c&y=1", want: "a.b.c"},
		{name: "BothPlaces", target: "/x?jwt=a.b.c", headers: []string{"JWT a.b.c"}, wantReason: ReasonTwoPlaces},
		{name: "TwoHeaders", target: "/x", headers: []string{"JWT a.b.c", "JWT d.e.f"}, wantReason: ReasonTwoPlaces},
		{name: "TwoQueryParams", target: "/x?jwt=a.b.c&jwt=d.e.f", wantReason: ReasonTwoPlaces},
		{name: "Missing", target: "/x", wantReason: ReasonMissing},
		{name: "OtherScheme", target: "/x", headers: []string{"Bearer a.b.c"}, wantReason: ReasonMissing},
		{name: "EmptyQuery", target: "/x?jwt=", wantReason: ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.target, nil)
			for _, h := range tt.headers {
				r.Header.Add("Authorization", h)
			}
			got, err := TokenFromRequest(r)
			if tt.wantReason != "" {
				mustReject(t, err, tt.wantReason)
				return
			}
			if err != nil {
				t.Fatalf("TokenFromRequest: %v", err)
			}
			if got != tt.want {
				t.Errorf("token = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUnverifiedIssuer(t *testing.T) {
	signed, err := Signer{}.HS256Context([]byte("secret"), "jira:1234")
	if err != nil {
		t.Fatal(err)
	}
	noIss, err := Signer{}.HS256Context([]byte("secret"), "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		token      string
		want       string
		wantReason string
	}{
		{name: "OK", token: signed, want: "jira:1234"},
		{name: "NoIssuer", token: noIss, wantReason: ReasonIssuer},
		{name: "Garbage", token: "garbage", wantReason: ReasonMalformed},
		{name: "BadBase64", token: "a.!!!.c", wantReason: ReasonMalformed},
		{name: "PayloadNotJSON", token: "e30.bm90IGpzb24.c", wantReason: ReasonMalformed},
		{name: "TooLong", token: "e30." + strings.Repeat("A", maxTokenBytes) + ".c", wantReason: ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := UnverifiedIssuer(tt.token)
			if tt.wantReason != "" {
				mustReject(t, err, tt.wantReason)
				return
			}
			if err != nil {
				t.Fatalf("UnverifiedIssuer: %v", err)
			}
			if got != tt.want {
				t.Errorf("issuer = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRejectError_IsUnauthorized(t *testing.T) {
	cause := errors.New("cause")
	err := error(&RejectError{Reason: ReasonExpired, Detail: "expired at noon", Err: cause})
	if code := realmhook.ErrorCode(err); code != realmhook.EUNAUTHORIZED {
		t.Errorf("ErrorCode = %q, want %q", code, realmhook.EUNAUTHORIZED)
	}
	if !errors.Is(err, cause) {
		t.Error("errors.Is does not find the cause")
	}
	if msg := realmhook.ErrorMessage(err); !strings.Contains(msg, "expired at noon") {
		t.Errorf("ErrorMessage = %q, want it to carry the detail", msg)
	}
}

// mustReject fails unless err is a *RejectError with the given reason.
func mustReject(t *testing.T, err error, reason string) *RejectError {
	t.Helper()
	var re *RejectError
	if !errors.As(err, &re) {
		t.Fatalf("error = %v, want a *RejectError with reason %q", err, reason)
	}
	if re.Reason != reason {
		t.Fatalf("reason = %q (%v), want %q", re.Reason, err, reason)
	}
	if !slices.Contains(Reasons(), re.Reason) {
		t.Fatalf("reason %q is not listed by Reasons()", re.Reason)
	}
	return re
}
