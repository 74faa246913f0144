package migration

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// failingPeer fails every copy of the notes table with err.
type failingPeer struct {
	Peer
	err error
}

func (p failingPeer) CopyRows(ctx context.Context, clientKey, id string, t store.Table, cols []string, next func() ([]store.Row, error)) (int64, error) {
	if t.Name == notesTable.Name {
		return 0, p.err
	}
	return p.Peer.CopyRows(ctx, clientKey, id, t, cols, next)
}

// TestCopyErrorsClassifiedOnce: an error that is not the database being
// unavailable fails the migration at once (E9999), rather than leaving it
// copying until the window ends; a refused row is named in the events, not
// in what the host is told.
func TestCopyErrorsClassifiedOnce(t *testing.T) {
	t.Run("UnclassifiedErrorFails", func(t *testing.T) {
		e := newEnv(t, "EU", "US")
		s := e.service(e.cfg, func(r string, p Peer) Peer {
			return failingPeer{p, errors.New(`unable to encode "infinity" into binary format for date`)}
		})
		tn := e.mustTenant("EU", "acme", 1, 4)
		m := mustMigrate(t, s, "EU", tn, e.req("m1", "US"))
		if m.State != realmhook.MigrationFailed || m.ErrorResponseCode != realmhook.ResponseOther {
			t.Fatalf("migration = %s %s, want failed E9999", m.State, m.ErrorResponseCode)
		}
	})
	t.Run("UnavailableResumes", func(t *testing.T) {
		if permanent(errors.Join(errors.New("copy notes"), realmhook.ErrUnavailable)) {
			t.Fatal("an unavailable database is treated as permanent")
		}
	})
	t.Run("RowErrorNamedInEventsOnly", func(t *testing.T) {
		e := newEnv(t, "EU", "US")
		// The target refuses one value the source holds.
		if _, err := e.dbs["US"].ExecContext(t.Context(), `DROP TABLE notes; CREATE TABLE notes(tenant TEXT NOT NULL, id INTEGER NOT NULL, body TEXT CHECK (body NOT LIKE 'note 3 %'), PRIMARY KEY(tenant,id))`); err != nil {
			t.Fatal(err)
		}
		s := e.service(e.cfg, nil)
		tn := e.mustTenant("EU", "acme", 1, 4)
		m := mustMigrate(t, s, "EU", tn, e.req("m1", "US"))
		if m.State != realmhook.MigrationFailed || m.ErrorResponseCode != realmhook.ResponseOther {
			t.Fatalf("migration = %s %s, want failed E9999", m.State, m.ErrorResponseCode)
		}
		if strings.Contains(m.Message, "notes") || strings.Contains(m.Message, "constraint") {
			t.Fatalf("host message %q names the tenant's data", m.Message)
		}
		ev := must(s.Events(t.Context(), "EU", "acme", "m1"))(t)
		last := ev[len(ev)-1]
		if last.To != realmhook.MigrationFailed || !strings.Contains(last.Detail, "table notes") || !strings.Contains(last.Detail, "constraint") {
			t.Fatalf("failure event = %+v, want it to name table notes and the constraint", last)
		}
	})
}
