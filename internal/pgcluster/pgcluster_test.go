package pgcluster_test

import (
	"errors"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/realmhook/realmhook/internal/pgcluster"
)

// TestStart: a durable cluster (the bench's kind) answers on TCP and on its
// unix socket, with the settings asked for, and Stop leaves nothing behind.
func TestStart(t *testing.T) {
	c, err := pgcluster.Start(t.Context(), pgcluster.Options{Durable: true, Settings: []string{"work_mem=7MB"}})
	if errors.Is(err, pgcluster.ErrNoBinaries) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = c.Stop()
		}
	})
	for _, u := range []string{c.URL("postgres"), c.SocketURL("postgres")} {
		conn, err := pgx.Connect(t.Context(), u)
		if err != nil {
			t.Fatalf("connect %s: %v", u, err)
		}
		var fsync, workMem string
		if err := conn.QueryRow(t.Context(), "SELECT current_setting('fsync'), current_setting('work_mem')").Scan(&fsync, &workMem); err != nil {
			t.Fatal(err)
		}
		_ = conn.Close(t.Context())
		if fsync != "on" || workMem != "7MB" {
			t.Fatalf("%s: fsync=%s work_mem=%s, want on and 7MB", u, fsync, workMem)
		}
	}
	if err := c.Restart(t.Context()); err != nil {
		t.Fatalf("restart: %v", err)
	}
	stopped = true
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.Connect(t.Context(), c.URL("postgres")); err == nil {
		t.Fatal("the cluster still answers after Stop")
	}
}
