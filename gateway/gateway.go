// Package gateway forwards the app's own requests — those under a realm's
// base URL that are none of realmhook's routes — to the app's server (the
// realm's upstream), streaming both ways, and tells it who is calling in
// X-Realmhook-Identity, the one header it trusts. Whether a request may be
// forwarded (its token, its realm, the write freeze) is the caller's to
// decide, with package identity; this package moves the bytes.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/identitytoken"
)

// Options configure a Proxy.
type Options struct {
	// Upstreams is the app's URL by realm key; a realm without one has no
	// gateway.
	Upstreams map[string]*url.URL
	// Public are path patterns, relative to a realm's base URL, that are
	// forwarded without a token ("*" one segment, "**" any depth).
	Public []string
	// Key signs X-Realmhook-Identity.
	Key identitytoken.Key
	// MaxBodyBytes bounds a forwarded request body.
	MaxBodyBytes int64
	// Timeout bounds the wait for the upstream's response to start.
	Timeout time.Duration
	// Transport reaches the upstreams; nil is one tuned for many concurrent
	// requests to few hosts.
	Transport http.RoundTripper
	// Now is the clock of the identity token; nil is time.Now.
	Now func() time.Time
	// Error answers a refused or failed request with the HTTP layer's one
	// error mapping; required.
	Error func(http.ResponseWriter, *http.Request, error)
	// Log returns the logger of a request; nil is slog.Default().
	Log func(*http.Request) *slog.Logger
}

// Proxy forwards requests to the realms' upstreams.
type Proxy struct {
	opts Options
	rp   *httputil.ReverseProxy
}

// New returns a Proxy; Error and a Key are required, and every pattern in
// Public must be valid.
func New(opts Options) (*Proxy, error) {
	if opts.Error == nil {
		return nil, errors.New("gateway: Options.Error is required")
	}
	if _, err := identitytoken.NewKey(string(opts.Key)); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	for _, p := range opts.Public {
		if !strings.HasPrefix(p, "/") || !doublestar.ValidatePattern(p) {
			return nil, fmt.Errorf("gateway: invalid public pattern %q", p)
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = func(*http.Request) *slog.Logger { return slog.Default() }
	}
	if opts.Transport == nil {
		opts.Transport = NewTransport(opts.Timeout)
	}
	p := &Proxy{opts: opts}
	p.rp = &httputil.ReverseProxy{
		Rewrite:   p.rewrite,
		Transport: opts.Transport,
		// FlushInterval 0: ReverseProxy flushes every write of an answer
		// that streams (text/event-stream, or no Content-Length) at once,
		// and a sized answer when it ends; flushing every sized answer
		// write by write cost a syscall each (8% of the routed GET).
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.upstreamError,
		ErrorLog:       slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn),
	}
	return p, nil
}

// NewTransport keeps many connections to each upstream alive: the default
// two per host would make every concurrent request beyond two dial anew.
func NewTransport(timeout time.Duration) *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// The client's Accept-Encoding goes through as it is; the transport
		// must not ask for gzip itself and unpack the answer.
		DisableCompression: true,
	}
}

// Serves reports whether realm has an upstream.
func (p *Proxy) Serves(realm string) bool { return p.opts.Upstreams[realm] != nil }

// Public reports whether rel, a decoded path relative to a realm's base URL
// that passed CheckPath, is forwarded without a token.
func (p *Proxy) Public(rel string) bool {
	for _, pat := range p.opts.Public {
		if ok, _ := doublestar.Match(pat, rel); ok {
			return true
		}
	}
	return false
}

// CheckPath refuses (EINVALID) a request path with a dot segment ("." or
// "..", percent-encoded or not) or an encoded "/": such a path means one
// thing to realmhook's matching and another to a server that cleans or
// decodes it, so "/static/../admin" could pass for public.
func CheckPath(r *http.Request) error {
	raw := r.URL.EscapedPath()
	for _, seg := range strings.Split(raw, "/") {
		if strings.Contains(seg, "%2f") || strings.Contains(seg, "%2F") {
			return realmhook.Errorf(realmhook.EINVALID, "the path has an encoded / (%%2F), which the gateway never forwards")
		}
		dec, err := url.PathUnescape(seg)
		if err != nil {
			return realmhook.Errorf(realmhook.EINVALID, "the path is not validly percent-encoded")
		}
		if dec == "." || dec == ".." {
			return realmhook.Errorf(realmhook.EINVALID, "the path has a dot segment (. or ..), which the gateway never forwards")
		}
	}
	return nil
}

// RelativePath is the request's path relative to basePath (a realm's,
// escaped), decoded and escaped; "/" for the base URL itself.
func RelativePath(r *http.Request, basePath string) (path, rawPath string) {
	rawPath = strings.TrimPrefix(r.URL.EscapedPath(), basePath)
	if rawPath == "" {
		rawPath = "/"
	}
	path, err := url.PathUnescape(rawPath)
	if err != nil {
		path = rawPath
	}
	return path, rawPath
}

// Target is one request to forward.
type Target struct {
	// Realm is the key of the realm the request came to.
	Realm string
	// Path and RawPath are the request path relative to the realm's base
	// URL (RelativePath).
	Path, RawPath string
	// Identity is who is calling, for X-Realmhook-Identity; nil on a public
	// path, where no tenant is known.
	Identity *identitytoken.Identity
}

// forwarding is one request's state, from Forward to the proxy's hooks.
type forwarding struct {
	upstream *url.URL
	target   Target
	token    string
	body     *limitedBody
	timer    *time.Timer
	timedOut atomic.Bool
}

type forwardingKey struct{}

// errTimedOut is the answer that started after Timeout.
var errTimedOut = errors.New("gateway: upstream answered after the timeout")

// Forward sends r to the upstream of t.Realm and streams its answer back.
// A body over MaxBodyBytes is answered 413 (ETOOLARGE): at once when its
// Content-Length says so, else when the upstream would read past the limit.
// An upstream that cannot be reached is 502 (EUPSTREAM), one that has not
// started to answer within Timeout 504 (EUPSTREAMTIMEOUT).
func (p *Proxy) Forward(w http.ResponseWriter, r *http.Request, t Target) {
	up := p.opts.Upstreams[t.Realm]
	if up == nil {
		p.opts.Error(w, r, realmhook.Errorf(realmhook.ENOTFOUND, "no route for %s %s", r.Method, r.URL.Path))
		return
	}
	if r.ContentLength > p.opts.MaxBodyBytes {
		p.tooLarge(w, r)
		return
	}
	f := &forwarding{upstream: up, target: t}
	if t.Identity != nil {
		token, err := p.opts.Key.Mint(*t.Identity, p.opts.Now())
		if err != nil {
			p.opts.Error(w, r, err)
			return
		}
		f.token = token
	}
	if r.Body != nil && r.Body != http.NoBody {
		f.body = &limitedBody{ReadCloser: r.Body, left: p.opts.MaxBodyBytes}
		r.Body = f.body
	}
	ctx, cancel := context.WithCancel(context.WithValue(r.Context(), forwardingKey{}, f))
	defer cancel()
	f.timer = time.AfterFunc(p.opts.Timeout, func() {
		f.timedOut.Store(true)
		cancel()
	})
	defer f.timer.Stop()
	p.rp.ServeHTTP(w, r.WithContext(ctx))
}

func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	f := pr.In.Context().Value(forwardingKey{}).(*forwarding)
	out := pr.Out
	out.URL.Scheme = f.upstream.Scheme
	out.URL.Host = f.upstream.Host
	out.URL.Path = strings.TrimSuffix(f.upstream.Path, "/") + f.target.Path
	out.URL.RawPath = strings.TrimSuffix(f.upstream.EscapedPath(), "/") + f.target.RawPath
	out.Host = ""
	pr.SetXForwarded()
	StripRealmhookHeaders(out.Header)
	if f.token != "" {
		out.Header.Set(identitytoken.Header, f.token)
	}
}

const headerPrefix = "X-Realmhook-"

// StripRealmhookHeaders drops every X-Realmhook-* header: only realmhook
// speaks under that prefix, so whatever a client sent there goes before
// realmhook sets its own.
func StripRealmhookHeaders(h http.Header) {
	for k := range h {
		if len(k) >= len(headerPrefix) && strings.EqualFold(k[:len(headerPrefix)], headerPrefix) {
			delete(h, k)
		}
	}
}

// modifyResponse stops the timeout once the upstream has started to answer;
// from then on the answer streams for as long as it lasts.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	f := resp.Request.Context().Value(forwardingKey{}).(*forwarding)
	if !f.timer.Stop() {
		return errTimedOut
	}
	return nil
}

func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	f := r.Context().Value(forwardingKey{}).(*forwarding)
	switch {
	case f.body != nil && f.body.over.Load():
		p.tooLarge(w, r)
	case f.timedOut.Load():
		p.opts.Error(w, r, realmhook.Errorf(realmhook.EUPSTREAMTIMEOUT,
			"the app's server for realm %s did not answer within %s", f.target.Realm, p.opts.Timeout))
	case r.Context().Err() != nil && errors.Is(err, context.Canceled):
		// The client went away; nobody reads an answer.
		p.opts.Log(r).Debug("gateway: client went away", slog.String("realm", f.target.Realm))
	default:
		p.opts.Log(r).Warn("gateway: upstream unavailable", slog.String("realm", f.target.Realm), slog.String("err", err.Error()))
		p.opts.Error(w, r, realmhook.Errorf(realmhook.EUPSTREAM, "the app's server for realm %s is unavailable", f.target.Realm))
	}
}

func (p *Proxy) tooLarge(w http.ResponseWriter, r *http.Request) {
	// The rest of the body is not read: the connection cannot be reused.
	w.Header().Set("Connection", "close")
	p.opts.Error(w, r, realmhook.Errorf(realmhook.ETOOLARGE, "the request body is larger than gateway.maxBodyBytes (%d bytes)", p.opts.MaxBodyBytes))
}

// limitedBody ends a request body that grows past its limit with an error,
// and remembers that it did, so the answer is 413 rather than 502.
type limitedBody struct {
	io.ReadCloser
	left int64
	over atomic.Bool
}

var errBodyTooLarge = errors.New("gateway: request body over the limit")

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errBodyTooLarge
	}
	// Read one byte past the limit to tell a body of exactly the limit
	// from a longer one.
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		b.over.Store(true)
		return 0, errBodyTooLarge
	}
	return n, err
}
