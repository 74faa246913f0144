package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
)

// testUnavailable: a database that does not answer (here: a closed store) is
// EUNAVAILABLE, which callers answer "retry", never EINTERNAL, which is a bug.
func testUnavailable(t *testing.T, h Harness) {
	s := h.Open(t)
	mustPutTenant(t, s, "ck", realmhook.TenantActive)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	ctx := context.Background()
	calls := []struct {
		name string
		call func() error
	}{
		{"Ping", func() error { return s.Ping(ctx) }},
		{"GetTenant", func() error { _, err := s.GetTenant(ctx, "ck"); return err }},
		{"PutTenant", func() error { return s.PutTenant(ctx, newTenant("ck2", realmhook.TenantActive)) }},
		{"UpdateTenant", func() error {
			_, err := s.UpdateTenant(ctx, "ck", func(*realmhook.Tenant) error { return nil })
			return err
		}},
		{"GetProperty", func() error { _, err := s.GetProperty(ctx, "ck", "k"); return err }},
		{"PutProperty", func() error { _, err := s.PutProperty(ctx, "ck", "k", []byte(`1`)); return err }},
		{"ListMigrations", func() error { _, err := s.ListMigrations(ctx, realmhook.MigrationCopying); return err }},
		{"AcquireLease", func() error { _, err := s.AcquireLease(ctx, "l", "me", time.Minute, base); return err }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) { mustCode(t, c.call(), realmhook.EUNAVAILABLE) })
	}
}
