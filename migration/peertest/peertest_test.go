package peertest_test

import (
	"database/sql"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/realmhook/realmhook/integration/pgtest"
	"github.com/realmhook/realmhook/internalauth"
	"github.com/realmhook/realmhook/migration"
	"github.com/realmhook/realmhook/migration/peertest"
	"github.com/realmhook/realmhook/store"
	"github.com/realmhook/realmhook/store/postgres"
	"github.com/realmhook/realmhook/store/sqlite"
	"github.com/realmhook/realmhook/transfer"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var secret = []byte("peertest internal secret, long enough")

type sqlStore interface {
	store.Store
	SQLDB() (*sql.DB, error)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openSQLite(t *testing.T) sqlStore {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "EU.db"), sqlite.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func openPostgres(t *testing.T) sqlStore {
	st, err := postgres.Open(t.Context(), pgtest.NewDatabase(t), postgres.Options{Logger: quiet(), MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// local is the in-process Peer over the store.
func local(open func(*testing.T) sqlStore) peertest.Harness {
	return func(t *testing.T) peertest.Target {
		st := open(t)
		db, err := st.SQLDB()
		if err != nil {
			t.Fatal(err)
		}
		return peertest.Target{Store: st, DB: db, Peer: migration.LocalPeer(st)}
	}
}

// remote is the transfer API's client, over loopback HTTP, talking to a
// transfer server that serves the store as realm EU.
func remote(open func(*testing.T) sqlStore) peertest.Harness {
	return func(t *testing.T) peertest.Target {
		st := open(t)
		db, err := st.SQLDB()
		if err != nil {
			t.Fatal(err)
		}
		auth := &internalauth.Verifier{Secret: secret, Realms: []string{"EU"}}
		path, h := transfer.NewServer(map[string]store.Store{"EU": st}, migration.PeerOptions{}).Handler(auth)
		srv := httptest.NewUnstartedServer(nil)
		mux := srv.Config
		mux.Handler = routeOnly(path, h)
		srv.Start()
		t.Cleanup(srv.Close)
		c := transfer.NewClient("EU", srv.URL, srv.Client(), internalauth.Signer{Secret: secret, Issuer: "US"})
		return peertest.Target{Store: st, DB: db, Peer: c}
	}
}

func TestLocalPeer_SQLite(t *testing.T)    { t.Parallel(); peertest.Run(t, local(openSQLite)) }
func TestTransferPeer_SQLite(t *testing.T) { t.Parallel(); peertest.Run(t, remote(openSQLite)) }
func TestLocalPeer_Postgres(t *testing.T)  { t.Parallel(); peertest.Run(t, local(openPostgres)) }
func TestTransferPeer_Postgres(t *testing.T) {
	t.Parallel()
	peertest.Run(t, remote(openPostgres))
}
