package realms

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/realmhook/realmhook/config"
	"github.com/realmhook/realmhook/secrets"
	"github.com/realmhook/realmhook/store"
	"github.com/realmhook/realmhook/store/postgres"
	"github.com/realmhook/realmhook/store/sqlite"
)

// OpenStore opens the database of a realm's config: "sqlite:PATH" or a
// postgres:// URL. The prefix picks the backend.
func OpenStore(ctx context.Context, rc config.Realm, logger *slog.Logger) (store.Store, error) {
	database := rc.Database
	switch {
	case strings.HasPrefix(database, "sqlite:"):
		return sqlite.Open(ctx, strings.TrimPrefix(database, "sqlite:"), sqlite.Options{Logger: logger})
	case strings.HasPrefix(database, "postgres://"), strings.HasPrefix(database, "postgresql://"):
		return postgres.Open(ctx, database, postgres.Options{MaxConns: rc.MaxConns, ConnectTimeout: rc.ConnectTimeout, Logger: logger})
	}
	return nil, fmt.Errorf("database %q: want sqlite:PATH or a postgres:// URL", RedactDatabase(database))
}

// RedactDatabase hides a password in a database URL so it can be printed.
func RedactDatabase(database string) string {
	if strings.HasPrefix(database, "sqlite:") {
		return database
	}
	u, err := url.Parse(database)
	if err != nil {
		return "(unparsable database URL)"
	}
	return u.Redacted()
}

// Open builds the registry from config, opening the database of every realm
// this process serves; with secrets.keys configured, each store seals
// tenants' shared secrets (secrets.Store). On error, whatever was opened is closed again.
func Open(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*Registry, error) {
	served := map[string]bool{}
	for _, key := range cfg.ServedRealms() {
		served[key] = true
	}
	var ring *secrets.Keyring
	if keys, err := cfg.SecretKeys(); err != nil {
		return nil, err
	} else if len(keys) > 0 {
		if ring, err = secrets.NewKeyring(keys...); err != nil {
			return nil, fmt.Errorf("secrets.keys: %w", err)
		}
	}
	var list []*Realm
	closeAll := func() {
		for _, r := range list {
			if r.Store != nil {
				_ = r.Store.Close()
			}
		}
	}
	for key, rc := range cfg.Realms {
		var s store.Store
		if served[key] {
			var err error
			s, err = OpenStore(ctx, rc, logger.With(slog.String("realm", key)))
			if err != nil {
				closeAll()
				return nil, fmt.Errorf("realms.%s.database: %w", key, err)
			}
			if ring != nil {
				s = secrets.Store(s, ring)
			}
		}
		r, err := NewRealm(key, rc.BaseURL, s)
		if err != nil {
			if s != nil {
				_ = s.Close()
			}
			closeAll()
			return nil, err
		}
		list = append(list, r)
	}
	g, err := NewRegistry(list...)
	if err != nil {
		closeAll()
		return nil, err
	}
	return g, nil
}

// Close closes every served realm's database.
func (g *Registry) Close() error {
	var first error
	for _, r := range g.Served() {
		if err := r.Store.Close(); err != nil && first == nil {
			first = fmt.Errorf("close realm %s: %w", r.Key, err)
		}
	}
	return first
}
