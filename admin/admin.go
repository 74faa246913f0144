// Package admin is realmhook's operator API: the connect-go AdminService
// (realms with probed health, tenants, migrations with progress and events,
// purge now, rehearsals), served on its own listener behind a bearer token,
// and the /admin page that reads it.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"

	"github.com/realmhook/realmhook/connecterr"
	"github.com/realmhook/realmhook/gen/realmhook/admin/v1/adminv1connect"
	"github.com/realmhook/realmhook/migration"
	"github.com/realmhook/realmhook/realms"
)

// Options wire a Service.
type Options struct {
	Realms     *realms.Registry
	Migrations *migration.Service
	// InternalURLs maps a realm key to its internalUrl, where one is
	// configured: the internal API the prober asks.
	InternalURLs map[string]string
	// Token is the bearer token every call must carry (admin.token).
	Token string
	// ProbeInterval is how often every realm's health is probed.
	ProbeInterval time.Duration
	// Misdirected counts the calls on a realm's base URL answered 421.
	Misdirected func(realm string) int64
	// Metrics, when set, is served at /metrics behind the token too.
	Metrics http.Handler
	// HTTPClient asks the internal APIs in probes (default: a client with
	// the probe's timeout).
	HTTPClient *http.Client
	Logger     *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service answers the admin API.
type Service struct {
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	prober *prober
}

// New returns the Service; Run starts its health prober.
func New(opts Options) (*Service, error) {
	if opts.Realms == nil || opts.Migrations == nil {
		return nil, errors.New("admin: Realms and Migrations are required")
	}
	if opts.Token == "" {
		return nil, errors.New("admin: a Token is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Misdirected == nil {
		opts.Misdirected = func(string) int64 { return 0 }
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = 10 * time.Second
	}
	log := opts.Logger.With("component", "admin")
	return &Service{
		opts:   opts,
		log:    log,
		now:    opts.Now,
		prober: newProber(opts.Realms, opts.InternalURLs, opts.ProbeInterval, opts.HTTPClient, opts.Now),
	}, nil
}

// Run probes every realm's health every ProbeInterval until ctx ends.
func (s *Service) Run(ctx context.Context) { s.prober.run(ctx) }

// Handler serves the admin API, /metrics when Options.Metrics is set (both
// behind the bearer token), and the /admin page, which holds no data and
// signs in to the API with the token.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	path, h := adminv1connect.NewAdminServiceHandler(&rpc{s},
		connect.WithInterceptors(s.authInterceptor(), s.errorInterceptor()))
	mux.Handle(path, h)
	page := pageHandler()
	mux.Handle("GET /admin", page)
	mux.Handle("GET /admin/", page)
	if s.opts.Metrics != nil {
		mux.Handle("GET /metrics", s.requireToken(s.opts.Metrics))
	}
	return mux
}

// errorInterceptor turns a handler's error into its RPC answer in one
// place: the Connect code of its realmhook code and the message for a
// person. An internal error is logged whole, as the caller sees none of it.
func (s *Service) errorInterceptor() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			resp, err := next(ctx, req)
			if err == nil {
				return resp, nil
			}
			ce := connecterr.Error(err)
			if ce.Code() == connect.CodeInternal || ce.Code() == connect.CodeUnavailable {
				s.log.Error("admin call failed", "procedure", req.Spec().Procedure, "err", err)
			}
			return nil, ce
		}
	}
}

// wrap adds context to an error from a store or the engine.
func wrap(err error, format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, err)...)
}
