package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/internal/pgcluster"
)

// EnvPostgres names a PostgreSQL server (a postgres:// URL whose user may
// CREATE DATABASE) for the bench; without it the bench runs its own.
const EnvPostgres = "REALMHOOK_BENCH_POSTGRES"

// pgServer is where the PostgreSQL bench creates its databases.
type pgServer struct {
	// admin is a URL of a database to run CREATE/DROP DATABASE from.
	admin string
	// stop shuts a throwaway cluster down; nil for a server from the env.
	stop func() error
}

// dbURL is the URL of database name on the server.
func (s *pgServer) dbURL(name string) string {
	u, _ := url.Parse(s.admin) // checked by openPGServer
	u.Path = "/" + name
	return u.String()
}

// openPGServer returns the server from EnvPostgres, or starts a throwaway
// cluster (the one the integration tests use) with durability as in
// production: fsync, synchronous_commit and full_page_writes on, as the bench
// measures what production pays. It is reached over its unix socket, as a
// database on the same machine would be.
func openPGServer(ctx context.Context) (*pgServer, error) {
	if env := os.Getenv(EnvPostgres); env != "" {
		u, err := url.Parse(env)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, realmhook.Errorf(realmhook.EINVALID, "%s must be a postgres:// URL", EnvPostgres)
		}
		return &pgServer{admin: env}, nil
	}
	c, err := pgcluster.Start(ctx, pgcluster.Options{Durable: true, Settings: []string{"max_wal_size=4GB"}})
	if errors.Is(err, pgcluster.ErrNoBinaries) {
		return nil, fmt.Errorf("%w; or set %s to use a server", err, EnvPostgres)
	} else if err != nil {
		return nil, err
	}
	return &pgServer{admin: c.SocketURL("postgres"), stop: c.Stop}, nil
}
