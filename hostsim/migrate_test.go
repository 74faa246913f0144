package hostsim_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/realmhook/realmhook/hostsim"
	"github.com/realmhook/realmhook/hostsim/fakeapp"
)

func TestHost_Migrate(t *testing.T) {
	tests := []struct {
		name    string
		defects fakeapp.Defects
		setup   func(e *env)
		opts    hostsim.MigrateOptions
		// want
		wantErr      error
		wantOutcome  hostsim.Outcome
		wantRealm    string // where the app and the host's state have the tenant
		wantCalls    map[string]int
		wantOut      string
		wantMinSlept time.Duration
	}{
		{
			name: "Commit", opts: hostsim.MigrateOptions{To: "us"},
			setup:       func(e *env) { e.app.PollsUntilReady = 2 },
			wantOutcome: hostsim.OutcomeCommitted, wantRealm: "US",
			wantCalls: map[string]int{"schedule": 1, "start": 1, "status": 3, "commit": 1, "rollback": 0},
			wantOut:   "tables 2/2, rows 20/20, 100.0%",
		},
		{
			name: "RollbackAsked", opts: hostsim.MigrateOptions{To: "US", Rollback: true},
			wantOutcome: hostsim.OutcomeRolledBack, wantRealm: "EU",
			wantCalls: map[string]int{"commit": 0, "rollback": 1},
		},
		{
			name: "AppReportsFailed", defects: fakeapp.Defects{FailMigrations: true}, opts: hostsim.MigrateOptions{To: "US"},
			wantErr: hostsim.ErrNotCommitted, wantOutcome: hostsim.OutcomeRolledBack, wantRealm: "EU",
			wantCalls: map[string]int{"commit": 0, "rollback": 1},
			wantOut:   "app reported failed E9999",
		},
		{
			name: "WindowEnds", opts: hostsim.MigrateOptions{To: "US", Window: 10 * time.Second, Poll: 3 * time.Second},
			setup:   func(e *env) { e.app.PollsUntilReady = 1 << 20 },
			wantErr: hostsim.ErrNotCommitted, wantOutcome: hostsim.OutcomeRolledBack, wantRealm: "EU",
			wantCalls:    map[string]int{"status": 5, "commit": 0, "rollback": 1},
			wantOut:      "window ended",
			wantMinSlept: 10 * time.Second,
		},
		{
			name: "CancelAfter", opts: hostsim.MigrateOptions{To: "US", Poll: time.Second, CancelAfter: 3 * time.Second},
			setup:       func(e *env) { e.app.PollsUntilReady = 1 << 20 },
			wantOutcome: hostsim.OutcomeRolledBack, wantRealm: "EU",
			wantCalls:    map[string]int{"status": 4, "commit": 0, "rollback": 1},
			wantOut:      "cancelled after 3s",
			wantMinSlept: 3 * time.Second,
		},
		{
			name: "UnsupportedRealmIsFinal", opts: hostsim.MigrateOptions{To: "JP"},
			wantErr: hostsim.ErrNotCommitted, wantOutcome: hostsim.OutcomeFailed, wantRealm: "EU",
			wantCalls: map[string]int{"schedule": 1, "start": 0, "rollback": 0},
			wantOut:   "E0002",
		},
		{
			name: "RetryWithoutCode", opts: hostsim.MigrateOptions{To: "US"},
			setup:       func(e *env) { e.app.FailNext("start", 2, 503, "") },
			wantOutcome: hostsim.OutcomeCommitted, wantRealm: "US",
			wantCalls:    map[string]int{"start": 3, "commit": 1},
			wantOut:      "503 without errorResponseCode; retry 2/2 in 5s",
			wantMinSlept: 10 * time.Second,
		},
		{
			name: "RetriesExhausted", opts: hostsim.MigrateOptions{To: "US"},
			setup:   func(e *env) { e.app.FailNext("commit", 3, 503, "") },
			wantErr: hostsim.ErrNotCommitted, wantOutcome: hostsim.OutcomeRolledBack, wantRealm: "EU",
			wantCalls: map[string]int{"commit": 3, "rollback": 1},
		},
		{
			name: "CodedFailureIsFinal", opts: hostsim.MigrateOptions{To: "US"},
			setup:   func(e *env) { e.app.FailNext("start", 1, 500, "E9999") },
			wantErr: hostsim.ErrNotCommitted, wantOutcome: hostsim.OutcomeRolledBack, wantRealm: "EU",
			wantCalls: map[string]int{"start": 1, "status": 0, "rollback": 1},
		},
		{
			name: "RollbackRefused", opts: hostsim.MigrateOptions{To: "US", Rollback: true},
			setup:   func(e *env) { e.app.FailNext("rollback", 1, 409, "E9999") },
			wantErr: hostsim.ErrNotRolledBack, wantOutcome: hostsim.OutcomeFailed, wantRealm: "EU",
			wantCalls: map[string]int{"rollback": 1, "commit": 0},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := mustEnv(t, tc.defects)
			if tc.setup != nil {
				tc.setup(e)
			}
			tn := e.mustInstall(t, "EU")
			opts := tc.opts
			opts.ClientKey = tn.ClientKey
			before := e.clock.Now()

			res, err := e.host.Migrate(context.Background(), opts)
			if tc.wantErr == nil && err != nil {
				t.Fatalf("migrate: %v\n%s", err, e.out)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("migrate err %v, want %v\n%s", err, tc.wantErr, e.out)
			}
			if res.Outcome != tc.wantOutcome {
				t.Fatalf("outcome %q (%s), want %q\n%s", res.Outcome, res.Reason, tc.wantOutcome, e.out)
			}
			t.Log(e.out.String())
			if got := e.app.TenantRealm(tn.ClientKey); got != tc.wantRealm {
				t.Errorf("app has the tenant in %q, want %q", got, tc.wantRealm)
			}
			if got, _ := e.host.Tenant(tn.ClientKey); got.Realm != tc.wantRealm {
				t.Errorf("host state has the tenant in %q, want %q", got.Realm, tc.wantRealm)
			}
			for hook, n := range tc.wantCalls {
				if got := e.app.Calls(hook); got != n {
					t.Errorf("app got %d %s calls, want %d", got, hook, n)
				}
			}
			if !strings.Contains(e.out.String(), tc.wantOut) {
				t.Errorf("output does not contain %q:\n%s", tc.wantOut, e.out)
			}
			if slept := e.clock.Now().Sub(before); slept < tc.wantMinSlept {
				t.Errorf("host waited %s, want at least %s", slept, tc.wantMinSlept)
			}
		})
	}
}

func TestHost_Migrate_CallsFollowTheTenant(t *testing.T) {
	ctx := context.Background()
	e := mustEnv(t, fakeapp.Defects{})
	tn := e.mustInstall(t, "global")
	if resp, err := e.host.CallRealm(ctx, tn.ClientKey, "", "PUT", "/api/v1/properties/k", []byte(`"v"`)); err != nil || resp.StatusCode != 204 {
		t.Fatalf("put: %v %+v", err, resp)
	}
	if _, err := e.host.Migrate(ctx, hostsim.MigrateOptions{ClientKey: tn.ClientKey, To: "EU"}); err != nil {
		t.Fatal(err)
	}
	// After the commit Call goes to EU, where the fake app kept the data.
	resp, err := e.host.CallRealm(ctx, tn.ClientKey, "", "GET", "/api/v1/properties/k", nil)
	if err != nil || resp.StatusCode != 200 || strings.TrimSpace(string(resp.Body)) != `"v"` {
		t.Fatalf("get after migration: %v %+v", err, resp)
	}
	if !strings.HasSuffix(resp.URL, "/realms/eu/api/v1/properties/k") {
		t.Fatalf("call went to %s, want the EU base URL", resp.URL)
	}
}

func TestHost_Migrate_BadInput(t *testing.T) {
	e := mustEnv(t, fakeapp.Defects{})
	tn := e.mustInstall(t, "EU")
	tests := []struct {
		name string
		opts hostsim.MigrateOptions
		want string
	}{
		{"ErrUnknownTenant", hostsim.MigrateOptions{ClientKey: "nobody", To: "US"}, "no tenant"},
		{"ErrNoTarget", hostsim.MigrateOptions{ClientKey: tn.ClientKey}, "target realm is empty"},
		{"ErrSameRealm", hostsim.MigrateOptions{ClientKey: tn.ClientKey, To: "eu"}, "already lives in realm EU"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.host.Migrate(context.Background(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one saying %q", err, tc.want)
			}
		})
	}
	if n := e.app.Calls("schedule"); n != 0 {
		t.Fatalf("bad input reached the app: %d schedule calls", n)
	}
}
