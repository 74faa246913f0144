package integration

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/realmhook/realmhook/connectjwt"
	"github.com/realmhook/realmhook/integration/suitereport"
)

// isolationTenant is one tenant of the isolation family, with a property
// and notes whose values name it, so a leak shows in any answer.
type isolationTenant struct {
	tenant
	realm string
	mig   *hostMigration // scheduled, not started: the victim's migration
}

// TestIsolation_TenantsNeverCross: tenant A's token never reads, lists,
// writes or deletes another tenant's data, nor drives its migration, on any
// realm's base URL; afterwards every realm database is scanned: a tenant's
// rows sit only in its pinned realm, or in the source or target of its
// migration (incoming, or moved during the grace period), and no shared
// secret is stored in plain text.
func TestIsolation_TenantsNeverCross(t *testing.T) {
	ks := mustKeyServer(t)
	dbs := mustRealmDBs(t, mixed)
	s := mustStartServer(t, serverConfig{KeysURL: ks.URL, Databases: dbs.databases(), Extra: notesTable})
	realmsOf := []string{"global", "EU", "US"}

	var tenants []*isolationTenant
	for _, realm := range []string{"EU", "EU", "global", "US"} {
		it := &isolationTenant{tenant: newTenant(t), realm: realm}
		mustInstall(t, s, ks, it.tenant, realm)
		mustStatus(t, call(t, s, it.tenant, realm, http.MethodPut, "/api/v1/properties/shared", []byte(`"owned by `+it.ClientKey+`"`)), http.StatusCreated, "put")
		dbs[realm].mustInsertNotes(t, it.ClientKey, 20)
		it.mig = newHostMigration(t, s, it.tenant, realm, otherRealm(realm), time.Hour)
		it.mig.mustHook("schedule")
		tenants = append(tenants, it)
	}
	// One tenant moves and is in its grace period: rows in two realms.
	mover := tenants[3]
	moved := newHostMigration(t, s, mover.tenant, "US", "EU", time.Hour)
	mover.mig.mustHook("rollback") // its scheduled one makes room
	moved.mustHook("schedule")
	moved.mustHook("start")
	moved.waitStatus(60*time.Second, "ready-to-commit")
	moved.mustHook("commit")
	mover.realm = "EU"

	attempts, refused := 0, 0
	leaked := 0
	// try sends one cross-tenant request and checks it is refused and that
	// its answer holds nothing of the victim.
	try := func(what string, victim *isolationTenant, r response, ok func(response) bool) {
		t.Helper()
		attempts++
		if strings.Contains(string(r.Body), victim.ClientKey) && !strings.Contains(what, "names victim") {
			leaked++
			t.Errorf("%s: answer names the victim: %d %s", what, r.Status, r.Body)
			return
		}
		if !ok(r) {
			t.Errorf("%s: %d %s", what, r.Status, r.Body)
			return
		}
		refused++
	}
	notVictims := func(r response) bool {
		return r.Status/100 == 4 || r.Status == http.StatusNoContent || r.Status/100 == 2
	}
	for _, a := range tenants {
		for _, v := range tenants {
			if a == v {
				continue
			}
			for _, realm := range realmsOf {
				tag := fmt.Sprintf("%s→%s via %s", a.ClientKey, v.ClientKey, realm)
				// A's own token reads, lists, writes and deletes only A's
				// data, wherever it is sent.
				try(tag+": get", v, call(t, s, a.tenant, realm, http.MethodGet, "/api/v1/properties/shared", nil), notVictims)
				try(tag+": list", v, call(t, s, a.tenant, realm, http.MethodGet, "/api/v1/properties?prefix=", nil), notVictims)
				try(tag+": put", v, call(t, s, a.tenant, realm, http.MethodPut, "/api/v1/properties/from-"+a.ClientKey, []byte(`1`)), notVictims)
				try(tag+": delete", v, call(t, s, a.tenant, realm, http.MethodDelete, "/api/v1/properties/from-"+a.ClientKey, nil), notVictims)
				// A's secret under B's name is refused outright.
				for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
					r := callAs(t, s, a.Secret, v.ClientKey, realm, method, "/api/v1/properties/shared", []byte(`"stolen"`))
					try(tag+": forged iss "+method+" (names victim)", v, r, func(r response) bool { return r.Status == http.StatusUnauthorized })
				}
				// B's migration cannot be driven or read with A's token: to
				// A's name it does not exist.
				for _, hook := range []string{"status", "start", "commit", "rollback"} {
					h := *v.mig
					h.ten, h.realm = a.tenant, realm
					try(tag+": "+hook+" of the victim's migration", v, h.hook(hook), func(r response) bool {
						return r.Status == http.StatusNotFound && r.JSON(t)["errorResponseCode"] == "E0001"
					})
					forged := callAs(t, s, a.Secret, v.ClientKey, realm, hookMethod(hook), hookPath(hook, v.mig.id), v.mig.body())
					try(tag+": forged iss "+hook+" (names victim)", v, forged, func(r response) bool { return r.Status == http.StatusUnauthorized })
				}
			}
		}
	}
	// Nothing of any victim changed: its own property and migration.
	for _, v := range tenants {
		r := call(t, s, v.tenant, v.realm, http.MethodGet, "/api/v1/properties/shared", nil)
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "owned by "+v.ClientKey) {
			t.Errorf("%s's property after the attempts: %d %s", v.ClientKey, r.Status, r.Body)
		}
		if v != mover {
			if st := v.mig.status()["status"]; st != "scheduled" {
				t.Errorf("%s's migration is %v after the attempts, want scheduled", v.ClientKey, st)
			}
		}
	}

	scanned, misplaced, plaintext := scanRealms(t, dbs, tenants)
	suitereport.Record(t, "isolation", "%d cross-tenant attempts, %d refused, %d leaked; %d rows scanned in %d realm databases, %d misplaced, %d secrets in plain text",
		attempts, refused, leaked, scanned, len(dbs), misplaced, plaintext)
	if refused != attempts || misplaced+plaintext > 0 {
		t.Fatalf("isolation broken: %d of %d attempts not refused, %d rows misplaced, %d plaintext secrets", attempts-refused, attempts, misplaced, plaintext)
	}
}

func otherRealm(realm string) string {
	if realm == "US" {
		return "EU"
	}
	return "US"
}

func hookMethod(hook string) string {
	if hook == "status" {
		return http.MethodGet
	}
	return http.MethodPost
}

func hookPath(hook, id string) string {
	if hook == "status" {
		return "/dare-migration/status?migrationId=" + id
	}
	return "/dare-migration/" + hook
}

// callAs signs a request with secret but names iss: a token forged by a
// tenant who knows only its own secret.
func callAs(t testing.TB, s *server, secret, iss, realm, method, path string, body []byte) response {
	t.Helper()
	base := s.realmURL(realm)
	tok, err := connectjwt.Signer{}.HS256([]byte(secret), iss, method, base+path, base)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, method, base+path, http.Header{"Authorization": {"JWT " + tok}}, body)
}

// scanRealms reads every tenant-keyed row of every realm database and counts
// rows of a tenant in a realm that holds no record of it as active (its
// pinned realm), incoming (a migration's target) or moved (the source in
// the grace period); and shared secrets stored as the tenant sent them.
func scanRealms(t *testing.T, dbs realmDBs, tenants []*isolationTenant) (scanned, misplaced, plaintext int) {
	t.Helper()
	secretOf := map[string]string{}
	for _, it := range tenants {
		secretOf[it.ClientKey] = it.Secret
	}
	for realm, a := range dbs {
		states := map[string]string{}
		rows, err := a.db.Query(`SELECT client_key, state, shared_secret FROM realmhook_tenants`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var ck, state, secret string
			if err := rows.Scan(&ck, &state, &secret); err != nil {
				t.Fatal(err)
			}
			scanned++
			states[ck] = state
			if secret == secretOf[ck] || strings.Contains(secret, secretOf[ck]) {
				plaintext++
				t.Errorf("realm %s stores %s's shared secret in plain text", realm, ck)
			}
		}
		rows.Close()
		for _, q := range []string{
			`SELECT client_key FROM realmhook_properties`,
			`SELECT tenant FROM notes`,
			`SELECT client_key FROM realmhook_migrations`,
		} {
			rows, err := a.db.Query(q)
			if err != nil {
				t.Fatalf("%s in %s: %v", q, realm, err)
			}
			for rows.Next() {
				var ck string
				if err := rows.Scan(&ck); err != nil {
					t.Fatal(err)
				}
				scanned++
				switch states[ck] {
				case "active", "incoming", "moved":
				default:
					misplaced++
					t.Errorf("realm %s holds a row of %s (%s) with no active, incoming or moved record of it", realm, ck, q)
				}
			}
			rows.Close()
		}
	}
	return scanned, misplaced, plaintext
}
