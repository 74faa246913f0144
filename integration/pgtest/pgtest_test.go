package pgtest_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/realmhook/realmhook/integration/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func mustConnect(t *testing.T, u string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("connect %s: %v", u, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func mustUserTables(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	var n int
	err := conn.QueryRow(context.Background(),
		`SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`).Scan(&n)
	if err != nil {
		t.Fatalf("count relations: %v", err)
	}
	return n
}

func TestNewDatabase(t *testing.T) {
	t.Run("DistinctAndEmpty", func(t *testing.T) {
		a, b := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
		if a == b {
			t.Fatalf("two databases share a URL: %s", a)
		}
		ca, cb := mustConnect(t, a), mustConnect(t, b)
		for _, c := range []*pgx.Conn{ca, cb} {
			if n := mustUserTables(t, c); n != 0 {
				t.Fatalf("new database has %d relations, want 0", n)
			}
		}
		if _, err := ca.Exec(context.Background(), "CREATE TABLE only_in_a (x int)"); err != nil {
			t.Fatalf("create table: %v", err)
		}
		if n := mustUserTables(t, cb); n != 0 {
			t.Fatalf("table created in one database shows in the other: %d relations", n)
		}
		var na, nb string
		if err := ca.QueryRow(context.Background(), "SELECT current_database()").Scan(&na); err != nil {
			t.Fatal(err)
		}
		if err := cb.QueryRow(context.Background(), "SELECT current_database()").Scan(&nb); err != nil {
			t.Fatal(err)
		}
		if na == nb {
			t.Fatalf("both URLs reach database %q", na)
		}
	})

	t.Run("URLConnectsOverTCP", func(t *testing.T) {
		u := pgtest.NewDatabase(t)
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatalf("parse %s: %v", u, err)
		}
		if parsed.Scheme != "postgres" || parsed.Port() == "" {
			t.Fatalf("URL %s: want postgres://host:port/db", u)
		}
		var one int
		if err := mustConnect(t, u).QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
			t.Fatalf("SELECT 1 = %d, %v", one, err)
		}
	})

	t.Run("DroppedAtCleanup", func(t *testing.T) {
		var name string
		t.Run("inner", func(t *testing.T) {
			u := pgtest.NewDatabase(t)
			parsed, err := url.Parse(u)
			if err != nil {
				t.Fatal(err)
			}
			name = parsed.Path[1:]
		})
		admin := mustConnect(t, pgtest.AdminURL(t))
		var n int
		if err := admin.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("database %s still exists after its test ended", name)
		}
	})
}

func TestRestart(t *testing.T) {
	if pgtest.Source(t) != pgtest.SourceInitdb {
		t.Logf("server from %s cannot be restarted; checking only the source", pgtest.Source(t))
		return
	}
	u := pgtest.NewDatabase(t)
	conn := mustConnect(t, u)
	var before int
	if err := conn.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&before); err != nil {
		t.Fatal(err)
	}
	pgtest.Restart(t)
	if err := conn.Ping(context.Background()); err == nil {
		t.Fatal("a session opened before the restart still answers")
	}
	var one int
	if err := mustConnect(t, u).QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("after restart SELECT 1 = %d, %v", one, err)
	}
}

// TestSource names the PostgreSQL the suite runs against; CI runs it with -v
// so that its log says which of the three sources was used.
func TestSource(t *testing.T) {
	src := pgtest.Source(t)
	switch src {
	case pgtest.SourceEnv, pgtest.SourceTestcontainers, pgtest.SourceInitdb:
	default:
		t.Fatalf("unknown source %q", src)
	}
	t.Logf("PostgreSQL for the integration tests comes from: %s", src)
}
