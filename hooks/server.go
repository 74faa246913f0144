// Package hooks is realmhook's public HTTP surface, everything the host product
// and a tenant call: the descriptor, the lifecycle hooks, the data residency
// migration hooks and the tenant API, all behind Connect JWT verification and
// routed to the realm that holds the tenant; plus health and metrics.
package hooks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/forgefit"
	"github.com/realmhook/realmhook/gateway"
	"github.com/realmhook/realmhook/identity"
	"github.com/realmhook/realmhook/locate"
	"github.com/realmhook/realmhook/migration"
	"github.com/realmhook/realmhook/realms"
)

// Lifecycle holds the descriptor's lifecycle paths, relative to a realm's base URL.
type Lifecycle struct {
	Installed, Uninstalled, Enabled, Disabled, DareMigration string
}

// Options wire a Server.
type Options struct {
	Realms *realms.Registry
	// Descriptor is the built app descriptor, served as is.
	Descriptor []byte
	AppKey     string
	Lifecycle  Lifecycle
	Migrations *migration.Service
	Verifier   connectjwt.Verifier
	// InstallKeys resolves the signed-install public keys.
	InstallKeys connectjwt.KeySource
	Logger      *slog.Logger
	Metrics     *Metrics
	// Forge, set, serves the app as a Forge remote too.
	Forge *Forge
	// Remote reaches the realms other processes serve (the regional
	// shape): where a tenant no served realm holds lives, and the process
	// its migration hooks are forwarded to. nil: every realm is served here.
	Remote Remote
	// Events writes a lifecycle event (installed, uninstalled, enabled,
	// disabled) to the realm's outbox with each change a lifecycle hook
	// makes, for the gateway to deliver to the app. Off, none are written.
	Events bool
	// Gateway, when set, forwards every request under a realm with an
	// upstream that is none of realmhook's routes to the app's server; its
	// Error and Log are the Server's own.
	Gateway *gateway.Options
}

// Remote is the other realms' processes, as the hooks need them.
type Remote interface {
	identity.Remote
	// Find returns the realm holding a tenant whose request was verified
	// here (a signed install); "" when none; EUNAVAILABLE when a realm did
	// not answer.
	Find(ctx context.Context, clientKey string) (string, error)
	// Forward runs a call on the process of realm and returns its answer.
	Forward(ctx context.Context, realm string, r *http.Request, basePath string, body []byte) (*locate.Response, error)
}

// Server answers every public route.
type Server struct {
	opts    Options
	router  *httprouter.Router
	metrics *Metrics
	logger  *slog.Logger
	ident   *identity.Layer
	seen    *lastSeen
	gateway *gateway.Proxy
}

type ctxKey int

const (
	requestIDKey ctxKey = iota
	tenantAttrKey
	calledRealmKey
)

// New builds the routes for every served realm.
func New(opts Options) (*Server, error) {
	if opts.Realms == nil || opts.Migrations == nil || opts.InstallKeys == nil {
		return nil, fmt.Errorf("hooks: Realms, Migrations and InstallKeys are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	s := &Server{opts: opts, metrics: opts.Metrics, logger: opts.Logger, seen: newLastSeen()}
	s.ident = identity.New(identity.Options{
		Realms:      opts.Realms,
		Verifier:    opts.Verifier,
		InstallKeys: opts.InstallKeys,
		Log:         s.log,
		Rejected:    func(reason string) { s.metrics.jwtRejections.WithLabelValues(reason).Inc() },
		Misdirected: func(called, expected string) { s.metrics.misdirected.WithLabelValues(called, expected).Inc() },
		LastSeen:    s.seen.tenant,
		Forge:       forgeVerifier(opts.Forge),
		Remote:      opts.Remote,
	})
	s.router = httprouter.New()
	s.router.RedirectTrailingSlash = false
	s.router.RedirectFixedPath = false
	s.router.HandleMethodNotAllowed = true
	s.router.NotFound = http.HandlerFunc(s.notFound)
	if opts.Gateway != nil {
		g := *opts.Gateway
		g.Error, g.Log = s.writeError, s.log
		proxy, err := gateway.New(g)
		if err != nil {
			return nil, err
		}
		s.gateway = proxy
		toUpstream := s.instrument("gateway", s.toUpstream)
		s.router.NotFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { toUpstream(w, r, nil) })
	}
	s.router.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{
			"error": "method_not_allowed", "message": fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path),
		})
	})
	s.router.PanicHandler = func(w http.ResponseWriter, r *http.Request, v any) {
		s.writeError(w, r, fmt.Errorf("panic serving request: %v", v))
	}

	lc := opts.Lifecycle
	for _, p := range opts.Realms.BasePaths() {
		s.handle(http.MethodGet, p, "/atlassian-connect.json", s.serveDescriptor)
		s.handle(http.MethodPost, p, lc.Installed, s.installed)
		s.handle(http.MethodPost, p, lc.Uninstalled, s.uninstalled)
		s.handle(http.MethodPost, p, lc.Enabled, s.enabled(true))
		s.handle(http.MethodPost, p, lc.Disabled, s.enabled(false))
		s.handle(http.MethodPost, p, lc.DareMigration+"/schedule", s.migrationSchedule)
		s.handle(http.MethodPost, p, lc.DareMigration+"/start", s.migrationStart)
		s.handle(http.MethodGet, p, lc.DareMigration+"/status", s.migrationStatus)
		s.handle(http.MethodPost, p, lc.DareMigration+"/commit", s.migrationCommit)
		s.handle(http.MethodPost, p, lc.DareMigration+"/rollback", s.migrationRollback)
		if f := opts.Forge; f != nil {
			s.handle(http.MethodPost, p, f.EventsPath, s.forgeEvents)
			if f.MigrationPath != lc.DareMigration {
				s.handle(http.MethodPost, p, f.MigrationPath+"/schedule", s.migrationSchedule)
				s.handle(http.MethodPost, p, f.MigrationPath+"/start", s.migrationStart)
				s.handle(http.MethodGet, p, f.MigrationPath+"/status", s.migrationStatus)
				s.handle(http.MethodPost, p, f.MigrationPath+"/commit", s.migrationCommit)
				s.handle(http.MethodPost, p, f.MigrationPath+"/rollback", s.migrationRollback)
			}
		}
		s.handle(http.MethodGet, p, "/api/v1/properties", s.tenantAPI(s.listProperties))
		s.handle(http.MethodGet, p, "/api/v1/properties/*key", s.tenantAPI(s.getProperty))
		s.handle(http.MethodPut, p, "/api/v1/properties/*key", s.tenantAPI(s.putProperty))
		s.handle(http.MethodDelete, p, "/api/v1/properties/*key", s.tenantAPI(s.deleteProperty))
	}
	s.handleRoot(http.MethodGet, "/healthz", s.healthz)
	s.handleRoot(http.MethodGet, "/readyz", s.readyz)
	metrics := promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{})
	s.handleRoot(http.MethodGet, "/metrics", func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		metrics.ServeHTTP(w, r)
	})
	return s, nil
}

func forgeVerifier(f *Forge) *forgefit.Verifier {
	if f == nil {
		return nil
	}
	return f.Verifier
}

// Handler is the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.router }

// LimitHeaders refuses, with a 431 JSON error, a request whose request line
// and headers are larger than limit bytes, counted as net/http counts its
// MaxHeaderBytes. The http.Server's own MaxHeaderBytes must be set higher
// (ServerMaxHeaderBytes): Go answers its own refusal in plain text.
func LimitHeaders(h http.Handler, limit int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + len(r.Host) + 8
		for k, vs := range r.Header {
			for _, v := range vs {
				n += len(k) + len(v) + 4
			}
		}
		if n > limit {
			w.Header().Set("Connection", "close")
			writeJSON(w, statusOf(realmhook.EHEADERSTOOLARGE), errorBody(realmhook.Errorf(realmhook.EHEADERSTOOLARGE,
				"the request line and headers are %d bytes; the limit is %d", n, limit)))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ServerMaxHeaderBytes is the http.Server MaxHeaderBytes to pair with
// LimitHeaders(limit): far enough above it that what Go itself refuses is
// huge.
func ServerMaxHeaderBytes(limit int) int { return max(1<<20, 4*limit) }

// handle registers route under a realm base path. The metrics label is the
// route without the realm prefix, so series don't multiply with realms.
func (s *Server) handle(method, basePath, route string, h httprouter.Handle) {
	s.router.Handle(method, basePath+route, s.instrument(route, h))
}

func (s *Server) handleRoot(method, route string, h httprouter.Handle) {
	s.router.Handle(method, route, s.instrument(route, h))
}

// statusRecorder remembers the status a handler wrote, for logs and metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.ResponseController reach the connection's writer (an
// app handler behind App may stream or hijack).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush passes a flush on, for handlers that assert http.Flusher.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// tenantAttr is filled by handlers once they know the tenant, so the access log
// line names it.
type tenantAttr struct{ clientKey, realm string }

func (s *Server) instrument(route string, h httprouter.Handle) httprouter.Handle {
	// Resolved once per route, not per request.
	duration := s.metrics.duration.WithLabelValues(route)
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !requestIDPattern.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		ta := &tenantAttr{}
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		ctx = context.WithValue(ctx, tenantAttrKey, ta)
		// The realm a request was addressed to is resolved once, here; the
		// handlers, the metrics and the access log all use this answer.
		realmLabel := "-"
		realm, matchErr := s.opts.Realms.Match(r.Host, connectjwt.RequestPath(r), r.URL.Path)
		if matchErr == nil {
			ctx = context.WithValue(ctx, calledRealmKey, realm)
			realmLabel = realm.Key
		}
		r = r.WithContext(ctx)
		rec := &statusRecorder{ResponseWriter: w}
		if realmhook.ErrorCode(matchErr) == realmhook.EINVALID {
			// Routed by the decoded path, the request would be served by
			// one realm's routes while it was sent to another's base URL.
			s.writeError(rec, r, matchErr)
		} else {
			h(rec, r, ps)
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		elapsed := time.Since(start)
		s.metrics.requests.WithLabelValues(realmLabel, route, strconv.Itoa(rec.status)).Inc()
		duration.Observe(elapsed.Seconds())
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelError
		}
		if !s.logger.Enabled(ctx, level) {
			return
		}
		// The path only: the query may carry a JWT, which is never logged.
		// LogAttrs with the request id first reads like s.log(r) but does
		// not build a logger per request.
		attrs := make([]slog.Attr, 0, 8)
		attrs = append(attrs, slog.String("request_id", id),
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("route", route),
			slog.Int("status", rec.status), slog.Duration("duration", elapsed))
		if ta.clientKey != "" {
			attrs = append(attrs, slog.String("tenant", ta.clientKey), slog.String("tenant_realm", ta.realm))
		}
		s.logger.LogAttrs(ctx, level, "request", attrs...)
	}
}

// log returns the logger carrying the request id.
func (s *Server) log(r *http.Request) *slog.Logger {
	if id, ok := r.Context().Value(requestIDKey).(string); ok {
		return s.logger.With(slog.String("request_id", id))
	}
	return s.logger
}

// noteTenant records the tenant for the access log.
func noteTenant(r *http.Request, clientKey, realm string) {
	if ta, ok := r.Context().Value(tenantAttrKey).(*tenantAttr); ok {
		ta.clientKey, ta.realm = clientKey, realm
	}
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Server) serveDescriptor(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.opts.Descriptor)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

// readyz answers 200 only when every served realm's database answers.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	realmsStatus := map[string]string{}
	ready := true
	for _, realm := range s.opts.Realms.Served() {
		if err := realm.Store.Ping(ctx); err != nil {
			ready = false
			realmsStatus[realm.Key] = "unavailable"
			s.log(r).Warn("realm database not ready", slog.String("realm", realm.Key), slog.String("err", err.Error()))
			continue
		}
		realmsStatus[realm.Key] = "ok"
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ready, "realms": realmsStatus})
}

// Identity is the identity layer the routes verify callers with, for the
// internal API, which verifies a tenant's token the same way.
func (s *Server) Identity() identity.Authenticator { return s.ident }
