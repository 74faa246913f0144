package storetest

import (
	"fmt"
	"testing"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// testSnapshot: a snapshot's reads see the tenant as it was when it was
// taken, while the store's own reads see every write made since.
func testSnapshot(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	mustPutTenant(t, s, "ck", realmhook.TenantActive)
	put := func(key, value string) {
		t.Helper()
		_, err := s.PutProperty(ctx, "ck", key, []byte(value))
		mustNoErr(t, err, "PutProperty")
	}
	for i := range 5 {
		put(fmt.Sprintf("k%d", i), "1")
	}
	snap, err := s.Snapshot(ctx)
	mustNoErr(t, err, "Snapshot")
	defer snap.Close()

	put("k9", "1")
	put("k0", "2")
	mustNoErr(t, s.DeleteProperty(ctx, "ck", "k1"), "DeleteProperty")

	cols := []string{"client_key", "key", "value"}
	n, err := snap.CountRows(ctx, store.PropertiesTable, "ck")
	mustNoErr(t, err, "snapshot CountRows")
	if n != 5 {
		t.Errorf("snapshot CountRows = %d, want 5 (as when taken)", n)
	}
	rows, err := snap.ReadRows(ctx, store.PropertiesTable, cols, "ck", nil, 100)
	mustNoErr(t, err, "snapshot ReadRows")
	var got string
	for _, r := range rows {
		got += fmt.Sprintf("%v=%s ", r[1], r[2])
	}
	if want := "k0=1 k1=1 k2=1 k3=1 k4=1 "; got != want {
		t.Errorf("snapshot ReadRows = %q, want %q", got, want)
	}
	scanned := 0
	mustNoErr(t, snap.ScanRows(ctx, store.PropertiesTable, cols, "ck", func(store.Row) error { scanned++; return nil }), "snapshot ScanRows")
	if scanned != 5 {
		t.Errorf("snapshot ScanRows saw %d rows, want 5", scanned)
	}
	if n, err := s.CountRows(ctx, store.PropertiesTable, "ck"); err != nil || n != 5 {
		t.Errorf("store CountRows = %d, %v; want 5 (k1 gone, k9 added)", n, err)
	}
	if cs, err := snap.Columns(ctx, store.PropertiesTable.Name); err != nil || len(cs) == 0 {
		t.Errorf("snapshot Columns = %v, %v", cs, err)
	}
	mustNoErr(t, snap.Close(), "Close")
	// The store is still open: Close ended the snapshot only.
	mustNoErr(t, s.Ping(ctx), "Ping after the snapshot's Close")
}
