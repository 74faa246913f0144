// Package server assembles realmhook from its configuration, for a Go program
// that embeds it: realms and their databases, the migration engine, and the
// HTTP handler of every public route, plus a middleware that puts a verified
// tenant, its realm and that realm's database on the app's own requests.
// cmd/realmhook is a thin main around it.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/realmhook/realmhook/admin"
	"github.com/realmhook/realmhook/config"
	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/descriptor"
	"github.com/realmhook/realmhook/egress"
	"github.com/realmhook/realmhook/forgefit"
	"github.com/realmhook/realmhook/gateway"
	"github.com/realmhook/realmhook/hooks"
	"github.com/realmhook/realmhook/identitytoken"
	"github.com/realmhook/realmhook/migration"
	"github.com/realmhook/realmhook/outbox"
	"github.com/realmhook/realmhook/realms"
	"github.com/realmhook/realmhook/secrets"
	"github.com/realmhook/realmhook/store"
)

// Options are what a config file does not say.
type Options struct {
	// Logger receives realmhook's structured logs; slog.Default() if nil.
	Logger *slog.Logger
}

// Server is realmhook assembled: call Handler to mount it, Run to run its
// background work (the migration engine), Close to release its databases.
type Server struct {
	cfg        *config.Config
	logger     *slog.Logger
	registry   *realms.Registry
	migrations *migration.Service
	hooks      *hooks.Server
	// admin is the operators' API; nil unless admin.listen is set.
	admin *admin.Service
	// BaseURL is the descriptor's baseUrl (the global realm).
	baseURL string
	// stopForge ends the Forge JWKS refreshes.
	stopForge func()
	// internal is the internal API's handler (nil without internal.secret).
	internal http.Handler
	// outbox delivers lifecycle events to the gateway's upstreams; nil
	// without a gateway.
	outbox *outbox.Deliverer
	// egress is the app's door to the product's REST API; nil without
	// gateway.egressListen.
	egress *egress.Handler
}

// Load reads a config file (as `realmhook serve --config` does) and builds
// the Server.
func Load(ctx context.Context, path string, opts Options) (*Server, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return New(ctx, cfg, opts)
}

// New opens the database of every realm cfg serves and builds the Server.
// cfg must be valid (config.Load and config.Default return valid values;
// after changing one, call its Validate).
func New(ctx context.Context, cfg *config.Config, opts Options) (*Server, error) {
	if cfg == nil {
		return nil, errors.New("server: config is nil")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	desc, err := descriptor.FromConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("descriptor: %w", err)
	}
	parsed, err := descriptor.Parse(desc)
	if err != nil {
		return nil, fmt.Errorf("descriptor: %w", err)
	}
	registry, err := realms.Open(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	if len(cfg.Secrets.Keys) == 0 && !cfg.Secrets.Plaintext {
		// Config refuses this for a PostgreSQL realm; SQLite files on the
		// operator's own disk are let through, with this one warning.
		logger.Warn("secrets.keys is not set: tenants' shared secrets are stored in plain text (set secrets.keys, see README)")
	}

	// With a gateway, every change the app behind it must hear of is
	// written to its realm's outbox; without one, nothing is.
	events := cfg.Gateway != nil
	peers := map[string]migration.Peer{}
	served := map[string]store.Store{}
	for _, r := range registry.Served() {
		served[r.Key] = r.Store
		peers[r.Key] = migration.LocalPeerWith(r.Store, migration.PeerOptions{Events: events})
	}
	// A realm another process serves is reached through its internal API.
	transferPeers, err := remotePeers(cfg)
	if err != nil {
		_ = registry.Close()
		return nil, err
	}
	for k, p := range transferPeers {
		peers[k] = p
	}
	tables := make([]store.Table, 0, len(cfg.Tables))
	for _, t := range cfg.Tables {
		tables = append(tables, store.Table{Name: t.Name, TenantColumn: t.TenantColumn, Key: t.Key, AllowTriggers: t.AllowTriggers})
	}
	migrations := migration.New(migration.Config{
		Enabled:        cfg.MigrationEnabled(),
		MaxConcurrent:  cfg.Migration.MaxConcurrent,
		BatchRows:      cfg.Migration.BatchRows,
		CheckpointRows: cfg.Migration.CheckpointRows,
		PurgeAfter:     cfg.Migration.PurgeAfter,
		LeaseTTL:       cfg.Migration.LeaseTTL,
		SweepInterval:  cfg.Migration.SweepInterval,
		Tables:         tables,
		Events:         events,
	}, served, peers, migration.Options{Logger: logger})
	if err := migrations.CheckSchema(ctx); err != nil {
		_ = registry.Close()
		return nil, fmt.Errorf("migrated tables: %w", err)
	}

	gw, err := gatewayOptions(cfg, registry)
	if err != nil {
		_ = registry.Close()
		return nil, err
	}
	forge, stopForge, err := forgeRemote(cfg)
	if err != nil {
		_ = registry.Close()
		return nil, err
	}
	var remote hooks.Remote
	if lc, err := newLocateClient(cfg, logger); err != nil {
		stopForge()
		_ = registry.Close()
		return nil, err
	} else if lc != nil {
		remote = lc
	}
	metrics := hooks.NewMetrics()
	h, err := hooks.New(hooks.Options{
		Realms:     registry,
		Descriptor: desc,
		AppKey:     parsed.Key,
		Lifecycle: hooks.Lifecycle{
			Installed:     parsed.Lifecycle.Installed,
			Uninstalled:   parsed.Lifecycle.Uninstalled,
			Enabled:       parsed.Lifecycle.Enabled,
			Disabled:      parsed.Lifecycle.Disabled,
			DareMigration: parsed.Lifecycle.DareMigration,
		},
		Migrations:  migrations,
		Verifier:    connectjwt.Verifier{Leeway: cfg.JWT.Leeway},
		InstallKeys: &connectjwt.KeyServer{BaseURL: cfg.InstallKeys.URL, Timeout: cfg.InstallKeys.Timeout, MaxBytes: cfg.InstallKeys.MaxBytes},
		Logger:      logger,
		Forge:       forge,
		Remote:      remote,
		Metrics:     metrics,
		Events:      events,
		Gateway:     gw,
	})
	if err != nil {
		stopForge()
		_ = registry.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, logger: logger, registry: registry, migrations: migrations, hooks: h, baseURL: parsed.BaseURL, stopForge: stopForge,
		internal: internalHandler(cfg, registry, h)}
	if err := errors.Join(s.wireGatewayEvents(metrics), s.wireEgress(parsed.Key)); err != nil {
		stopForge()
		_ = registry.Close()
		return nil, err
	}
	if cfg.Admin.Listen != "" {
		internal := map[string]string{}
		for key, r := range cfg.Realms {
			if r.InternalURL != "" {
				internal[key] = r.InternalURL
			}
		}
		s.admin, err = admin.New(admin.Options{
			Realms:        registry,
			Migrations:    migrations,
			InternalURLs:  internal,
			Token:         cfg.Admin.Token,
			ProbeInterval: cfg.Admin.ProbeInterval,
			Misdirected:   metrics.Misdirected,
			Metrics:       promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}),
			Logger:        logger,
		})
		if err != nil {
			stopForge()
			_ = registry.Close()
			return nil, err
		}
	}
	return s, nil
}

// AdminHandler answers the admin API (and /metrics, behind its token) for
// the admin.listen listener; nil when admin.listen is not set. Run runs its
// health prober.
func (s *Server) AdminHandler() http.Handler {
	if s.admin == nil {
		return nil
	}
	return s.admin.Handler()
}

// forgeRemote is the Forge side of the hooks when forge.appId is set: FIT
// verification with the keys of forge.jwksUrl, refreshed in the background
// until the returned stop is called.
func forgeRemote(cfg *config.Config) (*hooks.Forge, func(), error) {
	if !cfg.Forge.Enabled() {
		return nil, func() {}, nil
	}
	ari, err := forgefit.AppARI(cfg.Forge.AppID)
	if err != nil {
		return nil, nil, fmt.Errorf("forge.appId: %w", err)
	}
	// The keys outlive start-up: their refreshes run until Close.
	ctx, cancel := context.WithCancel(context.Background())
	keys, err := forgefit.NewRemoteKeys(ctx, cfg.Forge.JWKSURL, nil)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return &hooks.Forge{
		Verifier:      &forgefit.Verifier{AppARI: ari, Keys: keys, Leeway: cfg.JWT.Leeway},
		MigrationPath: cfg.Forge.MigrationPath,
		EventsPath:    cfg.Forge.EventsPath,
		Window:        time.Duration(cfg.Forge.MaxMigrationDurationHours * float64(time.Hour)),
	}, cancel, nil
}

// gatewayOptions is cfg's gateway section for the served realms; nil
// without one.
func gatewayOptions(cfg *config.Config, registry *realms.Registry) (*gateway.Options, error) {
	g := cfg.Gateway
	if g == nil {
		return nil, nil
	}
	key, err := identitytoken.NewKey(g.IdentitySecret)
	if err != nil {
		return nil, fmt.Errorf("gateway.identitySecret: %w", err)
	}
	upstreams := map[string]*url.URL{}
	for _, r := range registry.Served() {
		raw := cfg.Upstream(r.Key)
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("realms.%s.upstream: %w", r.Key, err)
		}
		upstreams[r.Key] = u
	}
	return &gateway.Options{
		Upstreams:    upstreams,
		Public:       g.Public,
		Key:          key,
		MaxBodyBytes: int64(g.MaxBodyBytes),
		Timeout:      g.Timeout,
	}, nil
}

// Handler answers every realmhook route: the descriptor, lifecycle and
// migration hooks and the tenant API under each served realm's base URL, and
// /healthz, /readyz, /metrics. Mount it at "/" beside the app's own routes.
func (s *Server) Handler() http.Handler { return s.hooks.Handler() }

// InternalHandler answers the internal API that other realms' processes
// call (on internal.listen); nil when internal.secret is not set.
func (s *Server) InternalHandler() http.Handler { return s.internal }

// Run runs the migration engine (copies, resumption after a crash, purges)
// and, with a gateway, the delivery of lifecycle events, until ctx is done,
// then returns nil.
func (s *Server) Run(ctx context.Context) error {
	if err := s.CheckTables(ctx); err != nil {
		return err
	}
	resealed := make(chan struct{})
	go func() {
		defer close(resealed)
		s.resealSecrets(ctx)
	}()
	defer func() { <-resealed }()
	if s.outbox != nil {
		delivered := make(chan struct{})
		go func() {
			defer close(delivered)
			_ = s.outbox.Run(ctx)
		}()
		defer func() { <-delivered }()
	}
	if s.admin != nil {
		probed := make(chan struct{})
		probeCtx, stopProbes := context.WithCancel(ctx)
		go func() {
			defer close(probed)
			s.admin.Run(probeCtx)
		}()
		defer func() { stopProbes(); <-probed }()
	}
	if err := s.migrations.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("migration engine: %w", err)
	}
	return nil
}

// CheckTables checks that every migrated table exists in every served
// realm's database with its tenant column and a unique key on tenant column
// + key, naming realm and table otherwise. Run checks it first; the binary
// checks it at start-up, before it listens. An app embedding realmhook
// creates its tables between New and Run.
func (s *Server) CheckTables(ctx context.Context) error {
	if err := s.migrations.CheckTables(ctx); err != nil {
		return fmt.Errorf("migrated tables: %w", err)
	}
	return nil
}

// resealSecrets seals, with the first of secrets.keys, every shared secret
// still in plain text or sealed with an older key, realm by realm; Run
// starts it beside the engine and waits for it on return.
func (s *Server) resealSecrets(ctx context.Context) {
	for _, r := range s.registry.Served() {
		sealed, ok := r.Store.(*secrets.SealedStore)
		if !ok {
			continue
		}
		n, err := sealed.Reseal(ctx)
		if err != nil && ctx.Err() == nil {
			s.logger.Warn("re-seal shared secrets", slog.String("realm", r.Key), slog.Int("resealed", n), slog.String("err", err.Error()))
		} else if n > 0 {
			s.logger.Info("re-sealed shared secrets with the first of secrets.keys", slog.String("realm", r.Key), slog.Int("tenants", n))
		}
	}
}

// Close closes every served realm's database. Stop Run (cancel its context)
// and the HTTP server first.
func (s *Server) Close() error {
	s.stopForge()
	return s.registry.Close()
}

// Realms is every configured realm.
func (s *Server) Realms() *realms.Registry { return s.registry }

// Config is the configuration the Server was built from.
func (s *Server) Config() *config.Config { return s.cfg }

// BaseURL is the descriptor's baseUrl, the global realm's.
func (s *Server) BaseURL() string { return s.baseURL }

// Migrations is the migration engine, for a Go program that drives or
// watches migrations itself (tests, an operator tool in-process).
func (s *Server) Migrations() *migration.Service { return s.migrations }
