package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"connectrpc.com/connect"
)

// errUnauthenticated is the one refusal of a call without the right token:
// missing, malformed or wrong all read the same.
const errUnauthenticated = "a valid admin bearer token is required (Authorization: Bearer <admin.token>)"

// authorized reports whether an Authorization header carries the token.
// Both sides are hashed first so that the comparison takes the same time
// whatever the length of what was sent.
func (s *Service) authorized(header string) bool {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	want := sha256.Sum256([]byte(s.opts.Token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

func (s *Service) authInterceptor() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if !s.authorized(req.Header().Get("Authorization")) {
				return nil, connect.NewError(connect.CodeUnauthenticated, errors.New(errUnauthenticated))
			}
			return next(ctx, req)
		}
	}
}

// requireToken guards a plain HTTP route with the same check and refusal.
func (s *Service) requireToken(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r.Header.Get("Authorization")) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("WWW-Authenticate", `Bearer realm="realmhook admin"`)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"unauthorized","message":"` + errUnauthenticated + `"}` + "\n"))
			return
		}
		h.ServeHTTP(w, r)
	})
}
