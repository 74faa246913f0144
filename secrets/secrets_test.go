package secrets_test

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/secrets"
	"github.com/realmhook/realmhook/store"
	"github.com/realmhook/realmhook/store/sqlite"
	"github.com/realmhook/realmhook/store/storetest"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, secrets.KeyBytes) }

func mustRing(t *testing.T, keys ...[]byte) *secrets.Keyring {
	t.Helper()
	r, err := secrets.NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestKeyring(t *testing.T) {
	newKey, oldKey := key(1), key(2)
	ring := mustRing(t, newKey, oldKey)
	old := mustRing(t, oldKey)

	t.Run("RoundTrip", func(t *testing.T) {
		sealed, err := ring.Seal("ck", "the secret")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(sealed, "the secret") || !secrets.Sealed(sealed) || !ring.Current(sealed) {
			t.Fatalf("sealed = %q", sealed)
		}
		if got, err := ring.Open("ck", sealed); err != nil || got != "the secret" {
			t.Fatalf("Open = %q, %v", got, err)
		}
		again, _ := ring.Seal("ck", "the secret")
		if again == sealed {
			t.Fatal("two seals of one secret are equal: the nonce is not random")
		}
	})
	t.Run("OpensWithOlderKey", func(t *testing.T) {
		sealed, _ := old.Seal("ck", "s")
		if ring.Current(sealed) {
			t.Fatal("a value sealed with the old key reads as current")
		}
		if got, err := ring.Open("ck", sealed); err != nil || got != "s" {
			t.Fatalf("Open = %q, %v", got, err)
		}
	})
	t.Run("MovedToAnotherTenantFails", func(t *testing.T) {
		sealed, _ := ring.Seal("tenant-a", "a's secret")
		if got, err := ring.Open("tenant-b", sealed); err == nil {
			t.Fatalf("a's ciphertext opened for b: %q", got)
		}
	})
	t.Run("UnknownKeyFails", func(t *testing.T) {
		sealed, _ := mustRing(t, key(3)).Seal("ck", "s")
		if _, err := ring.Open("ck", sealed); err == nil || !strings.Contains(err.Error(), "not in secrets.keys") {
			t.Fatalf("Open with no matching key: %v", err)
		}
	})
	t.Run("AlteredFails", func(t *testing.T) {
		sealed, _ := ring.Seal("ck", "s")
		b := []byte(sealed)
		b[len(b)-2] ^= 1
		if _, err := ring.Open("ck", string(b)); err == nil {
			t.Fatal("an altered ciphertext opened")
		}
	})
	t.Run("PlaintextPassesThrough", func(t *testing.T) {
		if got, err := ring.Open("ck", "legacy"); err != nil || got != "legacy" {
			t.Fatalf("Open(plaintext) = %q, %v", got, err)
		}
	})
	t.Run("DuplicateKeys", func(t *testing.T) {
		if _, err := secrets.NewKeyring(newKey, newKey); err == nil {
			t.Fatal("a ring of two equal keys")
		}
	})
}

func TestParseKey(t *testing.T) {
	good := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	for _, tc := range []struct{ in, err string }{
		{good, ""},
		{strings.TrimRight(good, "="), ""},
		{"", "empty"},
		{"%%%", "not base64"},
		{"c2hvcnQ=", "5 bytes"},
	} {
		_, err := secrets.ParseKey(tc.in)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ParseKey(%q) = %v, want %q", tc.in, err, tc.err)
		}
	}
}

// harness runs the store contract over a sealing SQLite store.
type harness struct{}

func (harness) Open(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "realm.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r, err := secrets.NewKeyring(key(7))
	if err != nil {
		t.Fatal(err)
	}
	return secrets.Store(st, r)
}

func (harness) Replica(t testing.TB, s store.Store) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), s.(*secrets.SealedStore).Unwrap().(*sqlite.Store).Path(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r, err := secrets.NewKeyring(key(7))
	if err != nil {
		t.Fatal(err)
	}
	return secrets.Store(st, r)
}

func (harness) Exec(t testing.TB, s store.Store, q string) {
	t.Helper()
	db, err := sql.Open("sqlite", s.(*secrets.SealedStore).Unwrap().(*sqlite.Store).Path())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func (h harness) CreateAppTable(t testing.TB, s store.Store, name string) {
	h.Exec(t, s, `CREATE TABLE "`+name+`" (tenant TEXT NOT NULL, id INTEGER NOT NULL, sub TEXT NOT NULL,
		body TEXT, score REAL, data BLOB, flag BOOLEAN, at TIMESTAMP, PRIMARY KEY (tenant, id, sub))`)
}

// ReadBack is SQLite's: the wrapper leaves rows as the backend stores them.
func (harness) ReadBack(v any) any {
	switch x := v.(type) {
	case bool:
		if x {
			return int64(1)
		}
		return int64(0)
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05.000000-07:00")
	}
	return v
}

// TestStoreContract: the sealing store keeps the store contract.
func TestStoreContract(t *testing.T) { storetest.Run(t, harness{}) }

// rawSecret reads the stored shared_secret column as it is on disk.
func rawSecret(t *testing.T, s store.Store, clientKey string) string {
	t.Helper()
	db, err := sql.Open("sqlite", s.(*secrets.SealedStore).Unwrap().(*sqlite.Store).Path())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRow(`SELECT shared_secret FROM realmhook_tenants WHERE client_key = ?`, clientKey).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSealedStore(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "realm.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	put := func(s store.Store, ck, secret string) {
		t.Helper()
		if err := s.PutTenant(ctx, &realmhook.Tenant{ClientKey: ck, SharedSecret: secret, State: realmhook.TenantActive}); err != nil {
			t.Fatal(err)
		}
	}
	oldKey, newKey := key(1), key(2)
	put(st, "legacy", "plain-secret") // written before keys were configured
	oldStore := secrets.Store(st, mustRing(t, oldKey))
	put(oldStore, "a", "secret-a")
	put(oldStore, "b", "secret-b")

	t.Run("AtRestSealed", func(t *testing.T) {
		if raw := rawSecret(t, oldStore, "a"); strings.Contains(raw, "secret-a") || !secrets.Sealed(raw) {
			t.Fatalf("stored %q", raw)
		}
		got, err := oldStore.GetTenant(ctx, "a")
		if err != nil || got.SharedSecret != "secret-a" {
			t.Fatalf("GetTenant = %+v, %v", got, err)
		}
	})
	t.Run("CiphertextMovedToAnotherRowFails", func(t *testing.T) {
		h := harness{}
		h.Exec(t, oldStore, `UPDATE realmhook_tenants SET shared_secret = (SELECT shared_secret FROM realmhook_tenants WHERE client_key = 'a') WHERE client_key = 'b'`)
		if got, err := oldStore.GetTenant(ctx, "b"); err == nil {
			t.Fatalf("b opened a's ciphertext: %q", got.SharedSecret)
		}
		put(oldStore, "b", "secret-b")
	})
	t.Run("RotateAndReseal", func(t *testing.T) {
		rotated := secrets.Store(st, mustRing(t, newKey, oldKey))
		n, err := rotated.Reseal(ctx)
		if err != nil || n != 3 {
			t.Fatalf("Reseal = %d, %v; want 3 (two old-key rows, one plaintext)", n, err)
		}
		if n, err := rotated.Reseal(ctx); err != nil || n != 0 {
			t.Fatalf("second Reseal = %d, %v; want 0", n, err)
		}
		newOnly := secrets.Store(st, mustRing(t, newKey))
		for ck, want := range map[string]string{"a": "secret-a", "b": "secret-b", "legacy": "plain-secret"} {
			got, err := newOnly.GetTenant(ctx, ck)
			if err != nil || got.SharedSecret != want {
				t.Fatalf("after reseal, %s = %+v, %v", ck, got, err)
			}
		}
	})
	t.Run("UpdateTenantSeesOpenSecret", func(t *testing.T) {
		s := secrets.Store(st, mustRing(t, newKey))
		got, err := s.UpdateTenant(ctx, "a", func(t *realmhook.Tenant) error {
			if t.SharedSecret != "secret-a" {
				return realmhook.Errorf(realmhook.EINVALID, "change saw %q", t.SharedSecret)
			}
			t.SharedSecret = "rotated-a"
			return nil
		})
		if err != nil || got.SharedSecret != "rotated-a" {
			t.Fatalf("UpdateTenant = %+v, %v", got, err)
		}
		if raw := rawSecret(t, s, "a"); !secrets.Sealed(raw) {
			t.Fatalf("UpdateTenant stored %q", raw)
		}
	})
}
