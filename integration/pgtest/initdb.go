package pgtest

import (
	"context"

	"github.com/realmhook/realmhook/internal/pgcluster"
)

// fromInitdb starts a throwaway cluster from the machine's PostgreSQL
// binaries, tuned for tests: no fsync, room for many connections.
func fromInitdb(ctx context.Context) (*server, error) {
	c, err := pgcluster.Start(ctx, pgcluster.Options{Settings: []string{"max_connections=300", "shared_buffers=128MB"}})
	if err != nil {
		return nil, err
	}
	admin := c.URL("postgres")
	v, err := serverVersion(ctx, admin)
	if err != nil {
		_ = c.Stop()
		return nil, err
	}
	return &server{source: SourceInitdb, adminURL: admin, version: v, cluster: c, stop: c.Stop}, nil
}
