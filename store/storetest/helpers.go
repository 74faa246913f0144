package storetest

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// base is a fixed instant at microsecond precision, in a zone other than UTC
// so that the suite notices a backend that returns times in the wrong zone.
var base = time.Date(2024, 3, 15, 10, 20, 30, 123456000, time.FixedZone("UTC+5:30", 5*3600+30*60))

// mustCode fails the test unless err carries the given realmhook error code.
func mustCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := realmhook.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

// mustNoErr fails the test on err.
func mustNoErr(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// newTenant returns a tenant with every field set.
func newTenant(clientKey string, state realmhook.TenantState) *realmhook.Tenant {
	return &realmhook.Tenant{
		ClientKey:                clientKey,
		SharedSecret:             "secret-" + clientKey,
		BaseURL:                  "https://" + clientKey + ".atlassian.net",
		DisplayURL:               "https://display-" + clientKey + ".example.com",
		ProductType:              "jira",
		Description:              "Atlassian JIRA at https://" + clientKey + ".atlassian.net",
		ServiceEntitlementNumber: "SEN-" + clientKey,
		InstallationID:           "ari:cloud:ecosystem::installation/" + clientKey,
		CloudID:                  "cloud-" + clientKey,
		OAuthClientID:            "oauth-" + clientKey,
		PluginsVersion:           "1001.0.0-SNAPSHOT",
		AppKey:                   "com.example.app",
		State:                    state,
		Enabled:                  true,
		InstalledAt:              base,
		UpdatedAt:                base.Add(time.Minute),
	}
}

// mustPutTenant stores a tenant with every field set and returns it.
func mustPutTenant(t testing.TB, s store.Store, clientKey string, state realmhook.TenantState) *realmhook.Tenant {
	t.Helper()
	tn := newTenant(clientKey, state)
	mustNoErr(t, s.PutTenant(t.Context(), tn), "PutTenant "+clientKey)
	return tn
}

// mustSameTime fails unless got is want's instant, in UTC (zero stays zero).
func mustSameTime(t testing.TB, what string, got, want time.Time) {
	t.Helper()
	if want.IsZero() {
		if !got.IsZero() {
			t.Errorf("%s = %v, want zero time", what, got)
		}
		return
	}
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
	if got.Location() != time.UTC {
		t.Errorf("%s location = %v, want UTC", what, got.Location())
	}
}

// mustSameTenant compares every field of two tenants.
func mustSameTenant(t testing.TB, got, want *realmhook.Tenant) {
	t.Helper()
	g, w := *got, *want
	mustSameTime(t, "InstalledAt", g.InstalledAt, w.InstalledAt)
	mustSameTime(t, "UpdatedAt", g.UpdatedAt, w.UpdatedAt)
	mustSameTime(t, "PurgeAfter", g.PurgeAfter, w.PurgeAfter)
	g.InstalledAt, g.UpdatedAt, g.PurgeAfter = time.Time{}, time.Time{}, time.Time{}
	w.InstalledAt, w.UpdatedAt, w.PurgeAfter = time.Time{}, time.Time{}, time.Time{}
	if g != w {
		t.Errorf("tenant = %+v\nwant     %+v", g, w)
	}
}

// mustSameMigration compares every field of two migrations.
func mustSameMigration(t testing.TB, got, want *realmhook.Migration) {
	t.Helper()
	g, w := *got, *want
	mustSameTime(t, "StartTime", g.StartTime, w.StartTime)
	mustSameTime(t, "EndTime", g.EndTime, w.EndTime)
	mustSameTime(t, "CreatedAt", g.CreatedAt, w.CreatedAt)
	mustSameTime(t, "UpdatedAt", g.UpdatedAt, w.UpdatedAt)
	g.StartTime, g.EndTime, g.CreatedAt, g.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	w.StartTime, w.EndTime, w.CreatedAt, w.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if g != w {
		t.Errorf("migration = %+v\nwant        %+v", g, w)
	}
}

// sameValue reports whether two normalised row values are equal, with the same
// Go type; times must be UTC.
func sameValue(got, want any) bool {
	switch w := want.(type) {
	case nil:
		return got == nil
	case time.Time:
		g, ok := got.(time.Time)
		return ok && g.Equal(w) && g.Location() == time.UTC
	case []byte:
		g, ok := got.([]byte)
		return ok && g != nil && bytes.Equal(g, w)
	default:
		return got == want
	}
}

// mustSameRows fails unless got and want hold equal rows in the same order.
func mustSameRows(t testing.TB, got, want []store.Row) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d\ngot:  %s\nwant: %s", len(got), len(want), rowsString(got), rowsString(want))
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("row %d has %d values, want %d", i, len(got[i]), len(want[i]))
		}
		for j := range want[i] {
			if !sameValue(got[i][j], want[i][j]) {
				t.Fatalf("row %d column %d = %#v (%T), want %#v (%T)", i, j, got[i][j], got[i][j], want[i][j], want[i][j])
			}
		}
	}
}

func rowsString(rows []store.Row) string {
	var b bytes.Buffer
	for _, r := range rows {
		fmt.Fprintf(&b, "%v ", []any(r))
	}
	return b.String()
}

// WriteRows inserts rows (in columns order) in one transaction through
// s.CopyRows, for tests that have their rows in memory.
func WriteRows(ctx context.Context, s store.Store, t store.Table, columns []string, rows []store.Row) error {
	sent := false
	_, err := s.CopyRows(ctx, t, columns, func() ([]store.Row, error) {
		if sent {
			return nil, nil
		}
		sent = true
		return rows, nil
	})
	return err
}
