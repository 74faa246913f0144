package connectjwt

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/realmhook/realmhook"
)

// Reasons a token is rejected. They label a Prometheus counter, so the set is
// small and fixed; the person-readable part goes in RejectError.Detail.
const (
	ReasonMissing     = "missing_token"
	ReasonTwoPlaces   = "token_in_two_places"
	ReasonMalformed   = "malformed"
	ReasonAlgorithm   = "wrong_algorithm"
	ReasonSignature   = "bad_signature"
	ReasonExpired     = "expired"
	ReasonNotYetValid = "not_yet_valid"
	ReasonQSH         = "qsh_mismatch"
	ReasonContextQSH  = "context_qsh_refused"
	ReasonIssuer      = "bad_issuer"
	ReasonAudience    = "bad_audience"
	ReasonKeyID       = "bad_kid"
	ReasonKeyFetch    = "key_unavailable"
)

// Reasons returns every rejection reason, so a metric can be initialised with
// all its label values before the first rejection.
func Reasons() []string {
	return []string{
		ReasonMissing, ReasonTwoPlaces, ReasonMalformed, ReasonAlgorithm,
		ReasonSignature, ReasonExpired, ReasonNotYetValid, ReasonQSH,
		ReasonContextQSH, ReasonIssuer, ReasonAudience, ReasonKeyID, ReasonKeyFetch,
	}
}

// maxTokenBytes bounds what is decoded before anything is verified; Connect
// tokens, context claims included, are a few KiB.
const maxTokenBytes = 32 << 10

// RejectError is what every verification failure returns. Its Error() says what
// was wrong for a person and never contains the token.
//
// It unwraps to a *realmhook.Error with code EUNAUTHORIZED, so the HTTP layer's
// one code-to-status table answers 401 without knowing this type, and to Err
// (the underlying cause, if any).
type RejectError struct {
	Reason string // one of the Reason constants
	Detail string // for a person; never the token
	Err    error  // underlying cause, may be nil
	// Verified is true when the token's signature verified with the key it
	// was checked against. Only then may Reason and Detail be told to the
	// caller: before that, the caller has proved nothing, and a reason that
	// differs by tenant (wrong_algorithm for a tenant that exists, an unknown
	// tenant for one that does not) would tell it which tenants exist.
	Verified bool
}

func (e *RejectError) Error() string {
	if e.Detail == "" {
		return "connect jwt rejected: " + e.Reason
	}
	return "connect jwt rejected: " + e.Reason + ": " + e.Detail
}

// Unwrap exposes the domain error and the cause to errors.Is/As.
func (e *RejectError) Unwrap() []error {
	errs := []error{&realmhook.Error{Code: realmhook.EUNAUTHORIZED, Message: e.Error()}}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

func reject(reason, format string, args ...any) *RejectError {
	return &RejectError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// verifiedReject is a rejection of a token whose signature verified.
func verifiedReject(reason, format string, args ...any) *RejectError {
	e := reject(reason, format, args...)
	e.Verified = true
	return e
}

// TokenFromRequest returns the token from "Authorization: JWT <token>" or from
// the jwt query parameter. A token in both places (or twice in one) is refused:
// which one would be verified is ambiguous.
func TokenFromRequest(r *http.Request) (string, error) {
	var found []string
	for _, h := range r.Header.Values("Authorization") {
		scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
		if ok && strings.EqualFold(scheme, "JWT") {
			found = append(found, strings.TrimSpace(token))
		}
	}
	var inQuery int
	if r.URL != nil {
		q := r.URL.Query()["jwt"]
		inQuery = len(q)
		found = append(found, q...)
	}
	switch {
	case len(found) == 0:
		return "", reject(ReasonMissing, `no "Authorization: JWT" header and no jwt query parameter`)
	case len(found) > 1:
		return "", reject(ReasonTwoPlaces, "%d tokens in the request (%d in the Authorization header, %d in the query); send exactly one",
			len(found), len(found)-inQuery, inQuery)
	case found[0] == "":
		return "", reject(ReasonMalformed, "the token is empty")
	}
	return found[0], nil
}

// tokenHeader is the part of the JOSE header we read before verifying: alg to
// pin the algorithm, kid to find the signed-install key.
type tokenHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// splitToken decodes the header and the raw payload without verifying anything.
func splitToken(token string) (tokenHeader, []byte, error) {
	var h tokenHeader
	if len(token) > maxTokenBytes {
		return h, nil, reject(ReasonMalformed, "token is %d bytes, more than the %d allowed", len(token), maxTokenBytes)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return h, nil, reject(ReasonMalformed, "token has %d dot-separated parts, want 3", len(parts))
	}
	header, err := decodeSegment(parts[0])
	if err != nil {
		return h, nil, &RejectError{Reason: ReasonMalformed, Detail: "header is not base64url", Err: err}
	}
	if err := json.Unmarshal(header, &h); err != nil {
		return h, nil, &RejectError{Reason: ReasonMalformed, Detail: "header is not a JSON object", Err: err}
	}
	payload, err := decodeSegment(parts[1])
	if err != nil {
		return h, nil, &RejectError{Reason: ReasonMalformed, Detail: "payload is not base64url", Err: err}
	}
	return h, payload, nil
}

func decodeSegment(s string) ([]byte, error) {
	// Some signers pad; the JWS spec does not, so accept both.
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// UnverifiedIssuer returns the iss claim without verifying anything, so the
// caller can look up the tenant whose secret then verifies the token. Never
// trust the result before verification.
func UnverifiedIssuer(token string) (string, error) {
	_, payload, err := splitToken(token)
	if err != nil {
		return "", err
	}
	var c struct {
		Issuer any `json:"iss"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", &RejectError{Reason: ReasonMalformed, Detail: "payload is not a JSON object", Err: err}
	}
	iss, ok := c.Issuer.(string)
	if !ok || iss == "" {
		return "", reject(ReasonIssuer, "token has no iss claim (a string naming the clientKey)")
	}
	return iss, nil
}
