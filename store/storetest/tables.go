package storetest

import (
	"strings"
	"testing"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// testCheckTable: a configured table must exist with its tenant and key
// columns and a unique key within them.
func testCheckTable(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	h.CreateAppTable(t, s, appTableName)
	h.Exec(t, s, `CREATE TABLE no_unique (tenant TEXT NOT NULL, id BIGINT NOT NULL, body TEXT)`)
	h.Exec(t, s, `CREATE TABLE partial_unique (tenant TEXT NOT NULL, id BIGINT NOT NULL, body TEXT)`)
	h.Exec(t, s, `CREATE UNIQUE INDEX partial_unique_key ON partial_unique (tenant, id) WHERE body IS NOT NULL`)
	h.Exec(t, s, `CREATE TABLE wide_unique (tenant TEXT NOT NULL, id BIGINT NOT NULL, body TEXT)`)
	h.Exec(t, s, `CREATE UNIQUE INDEX wide_unique_key ON wide_unique (tenant, id, body)`)
	h.Exec(t, s, `CREATE TABLE id_unique (tenant TEXT NOT NULL, id BIGINT NOT NULL, body TEXT)`)
	h.Exec(t, s, `CREATE UNIQUE INDEX id_unique_key ON id_unique (id)`)
	h.Exec(t, s, `CREATE TABLE pk_table (tenant TEXT NOT NULL, id BIGINT NOT NULL, body TEXT, PRIMARY KEY (tenant, id))`)

	for _, tc := range []struct {
		name  string
		table store.Table
		code  string
		say   string
	}{
		{"AppTable", AppTable(appTableName), "", ""},
		{"Properties", store.PropertiesTable, "", ""},
		{"PrimaryKey", store.Table{Name: "pk_table", TenantColumn: "tenant", Key: []string{"id"}}, "", ""},
		{"UniqueWithinKey", store.Table{Name: "id_unique", TenantColumn: "tenant", Key: []string{"id"}}, "", ""},
		{"Missing", store.Table{Name: "issue_notes", TenantColumn: "tenant", Key: []string{"id"}}, realmhook.ENOTFOUND, "issue_notes"},
		{"NoTenantColumn", store.Table{Name: "pk_table", TenantColumn: "client", Key: []string{"id"}}, realmhook.EINVALID, "client"},
		{"NoKeyColumn", store.Table{Name: "pk_table", TenantColumn: "tenant", Key: []string{"nope"}}, realmhook.EINVALID, "nope"},
		{"NoKey", store.Table{Name: "pk_table", TenantColumn: "tenant"}, realmhook.EINVALID, "pk_table"},
		{"NoUniqueKey", store.Table{Name: "no_unique", TenantColumn: "tenant", Key: []string{"id"}}, realmhook.EINVALID, "no_unique"},
		{"PartialUnique", store.Table{Name: "partial_unique", TenantColumn: "tenant", Key: []string{"id"}}, realmhook.EINVALID, "partial_unique"},
		{"UniqueWiderThanKey", store.Table{Name: "wide_unique", TenantColumn: "tenant", Key: []string{"id"}}, realmhook.EINVALID, "wide_unique"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.CheckTable(ctx, tc.table)
			if tc.code == "" {
				mustNoErr(t, err, "CheckTable")
				return
			}
			mustCode(t, err, tc.code)
			if !strings.Contains(err.Error(), tc.say) {
				t.Fatalf("error %q does not name %q", err, tc.say)
			}
		})
	}
}
