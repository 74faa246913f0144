// Package egress is the app's door to the product's REST API, so that the
// app never holds a tenant's shared secret: the app calls
// http://{gateway.egressListen}/host/{clientKey}/{path}?{query} with a short
// bearer token it signs with gateway.identitySecret, and realmhook checks it,
// signs the request as the Connect app with the tenant's secret and forwards
// it to the tenant's product base URL, streaming the answer back.
package egress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/gateway"
	"github.com/realmhook/realmhook/realms"
)

const (
	// Audience is the aud an egress token must carry, so that no other
	// token signed with the identity secret passes for one.
	Audience = "realmhook-egress"
	// MaxTokenLifetime bounds exp - iat of an egress token: a longer-lived
	// token is refused, so a leaked one is worth little.
	MaxTokenLifetime = 60 * time.Second
	// Prefix is the path every egress call starts with.
	Prefix = "/host/"
)

// errToken is every refusal of a token before its signature is verified: it
// reads the same whatever was wrong, so a caller learns nothing by probing.
var errToken = realmhook.Errorf(realmhook.EUNAUTHORIZED,
	"an egress token is required: Authorization: Bearer <JWT signed HS256 with gateway.identitySecret, aud %q, sub the clientKey>", Audience)

// Options configure a Handler.
type Options struct {
	// Secret is gateway.identitySecret, which the app signs its tokens with.
	Secret []byte
	// Leeway is the clock skew allowed on iat and exp (jwt.leeway).
	Leeway time.Duration
	// Realms finds the tenant among the realms this process serves.
	Realms *realms.Registry
	// AppKey is the app's key, the iss of the tokens realmhook signs.
	AppKey string
	// Timeout bounds the wait for the product's answer to start.
	Timeout time.Duration
	// Transport reaches the products (nil: one of its own).
	Transport http.RoundTripper
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Error answers a refusal with the HTTP layer's one error mapping.
	Error func(http.ResponseWriter, *http.Request, error)
	// Log returns the logger of a request (nil: slog.Default()).
	Log func(*http.Request) *slog.Logger
}

// Handler answers egress calls.
type Handler struct {
	opts Options
	rp   *httputil.ReverseProxy
}

// target is where one egress call goes, kept on the request's context
// between ServeHTTP and the proxy's Rewrite.
type target struct {
	url   *url.URL
	token string
}

type ctxKey struct{}

// New checks opts and returns the Handler.
func New(opts Options) (*Handler, error) {
	if len(opts.Secret) == 0 || opts.Realms == nil || opts.Error == nil || opts.AppKey == "" {
		return nil, errors.New("egress: Secret, Realms, AppKey and Error are required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = func(*http.Request) *slog.Logger { return slog.Default() }
	}
	if opts.Transport == nil {
		t := gateway.NewTransport(opts.Timeout)
		t.ResponseHeaderTimeout = opts.Timeout
		opts.Transport = t
	}
	h := &Handler{opts: opts}
	h.rp = &httputil.ReverseProxy{
		Rewrite:       h.rewrite,
		Transport:     opts.Transport,
		FlushInterval: -1, // stream the product's answer as it comes
		ErrorHandler:  h.productError,
	}
	return h, nil
}

// ServeHTTP checks an egress call and forwards it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t, err := h.check(r)
	if err != nil {
		h.opts.Error(w, r, err)
		return
	}
	h.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, t)))
}

// check decides where the call goes, or why it may not.
func (h *Handler) check(r *http.Request) (*target, error) {
	// Before anything matches the path: a dot segment or an encoded /
	// could step out from under the product base URL.
	if err := gateway.CheckPath(r); err != nil {
		return nil, err
	}
	raw := r.URL.EscapedPath()
	if !strings.HasPrefix(raw, Prefix) {
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "egress calls are %s{clientKey}/{path}; no route for %s", Prefix, r.URL.Path)
	}
	seg, rest, _ := strings.Cut(strings.TrimPrefix(raw, Prefix), "/")
	clientKey, err := url.PathUnescape(seg)
	if err != nil || clientKey == "" {
		return nil, realmhook.Errorf(realmhook.EINVALID, "egress calls are %s{clientKey}/{path}: the clientKey is missing", Prefix)
	}
	if err := h.verify(r, clientKey); err != nil {
		return nil, err
	}
	if q, err := url.ParseQuery(r.URL.RawQuery); err == nil && q.Has("jwt") {
		return nil, realmhook.Errorf(realmhook.EINVALID, "the query carries jwt; realmhook signs the call itself")
	}
	_, tenant, err := h.opts.Realms.Locate(r.Context(), clientKey)
	if realmhook.ErrorCode(err) == realmhook.ENOTFOUND {
		return nil, h.notHere(r.Context(), clientKey)
	} else if err != nil {
		return nil, err
	}
	base, err := url.Parse(tenant.BaseURL)
	if err != nil || base.Host == "" {
		return nil, realmhook.Errorf(realmhook.ECONFLICT, "tenant %q has no usable product base URL", clientKey)
	}
	// Only under the base URL the host gave at install: its path, then the
	// call's, whose dot segments CheckPath refused.
	to := &url.URL{Scheme: base.Scheme, Host: base.Host, RawQuery: r.URL.RawQuery}
	to.RawPath = strings.TrimSuffix(base.EscapedPath(), "/") + "/" + rest
	if to.Path, err = url.PathUnescape(to.RawPath); err != nil {
		return nil, realmhook.Errorf(realmhook.EINVALID, "the path is not validly percent-encoded")
	}
	appKey := h.opts.AppKey
	token, err := connectjwt.Signer{Now: h.opts.Now}.HS256([]byte(tenant.SharedSecret), appKey, r.Method, to.String(), tenant.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("egress: sign for tenant %q: %w", clientKey, err)
	}
	h.opts.Log(r).Info("egress call", slog.String("tenant", clientKey), slog.String("method", r.Method),
		slog.String("product", base.Host), slog.String("path", to.Path))
	return &target{url: to, token: token}, nil
}

// egressClaims are the claims an egress token carries.
type egressClaims struct {
	jwt.RegisteredClaims
}

// verify checks the call's bearer token for clientKey.
func (h *Handler) verify(r *http.Request, clientKey string) error {
	auth := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || len(r.Header.Values("Authorization")) > 1 {
		return errToken
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithAudience(Audience),
		jwt.WithIssuedAt(),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(h.opts.Leeway),
		jwt.WithTimeFunc(h.opts.Now),
	)
	var c egressClaims
	_, err := p.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return h.opts.Secret, nil })
	switch {
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		// The signature held (it is checked first): say what is wrong.
		return realmhook.Errorf(realmhook.EUNAUTHORIZED, "the egress token is not valid now or not for egress: %s", claimProblem(err))
	case err != nil:
		return errToken
	case c.IssuedAt == nil:
		return realmhook.Errorf(realmhook.EUNAUTHORIZED, "the egress token has no iat")
	case c.ExpiresAt.Sub(c.IssuedAt.Time) > MaxTokenLifetime:
		return realmhook.Errorf(realmhook.EUNAUTHORIZED, "the egress token lives %s (exp - iat); at most %s is accepted",
			c.ExpiresAt.Sub(c.IssuedAt.Time), MaxTokenLifetime)
	case c.Subject != clientKey:
		return realmhook.Errorf(realmhook.EUNAUTHORIZED, "the egress token is for another tenant than %q", clientKey)
	}
	return nil
}

// claimProblem names the claim a verified token failed on.
func claimProblem(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "it expired"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued), errors.Is(err, jwt.ErrTokenNotValidYet):
		return "it is not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return fmt.Sprintf("its aud is not %q", Audience)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return fmt.Sprintf("it lacks iat, exp or aud %q", Audience)
	}
	return "a claim is invalid"
}

// notHere is the answer for a tenant that no served realm serves: 421 naming
// the realm when a served realm knows where it moved, else 404.
func (h *Handler) notHere(ctx context.Context, clientKey string) error {
	for _, r := range h.opts.Realms.Served() {
		t, err := r.Store.GetTenant(ctx, clientKey)
		if err == nil && t.MovedAway() && t.MovedTo != "" {
			return realmhook.Errorf(realmhook.EMISDIRECTED,
				"tenant %q is served by realm %s, which this process does not serve; call that realm's egress", clientKey, t.MovedTo).
				With("expectedRealm", t.MovedTo)
		}
	}
	return realmhook.Errorf(realmhook.ENOTFOUND, "no active tenant %q in the realms this process serves", clientKey)
}

// rewrite turns the app's call into the Connect app's call to the product.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	t := pr.In.Context().Value(ctxKey{}).(*target)
	pr.Out.URL = t.url
	pr.Out.Host = ""
	// The app's token and cookies are for realmhook, never the product's;
	// realmhook's own headers are nobody's business there.
	gateway.StripRealmhookHeaders(pr.Out.Header)
	pr.Out.Header.Del("Cookie")
	pr.Out.Header.Set("Authorization", "JWT "+t.token)
}

// productError answers a product that could not be reached (502) or did not
// start to answer in time (504), with the gateway's codes.
func (h *Handler) productError(w http.ResponseWriter, r *http.Request, err error) {
	t := r.Context().Value(ctxKey{}).(*target)
	code, msg := realmhook.EUPSTREAM, "the product at "+t.url.Host+" could not be reached"
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		code, msg = realmhook.EUPSTREAMTIMEOUT, "the product at "+t.url.Host+" did not answer in time"
	}
	if r.Context().Err() != nil {
		return // the app went away
	}
	h.opts.Log(r).Warn("egress call failed", slog.String("product", t.url.Host), slog.String("err", err.Error()))
	h.opts.Error(w, r, &realmhook.Error{Code: code, Message: msg, Err: err})
}
