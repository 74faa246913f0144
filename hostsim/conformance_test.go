package hostsim_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/realmhook/realmhook/hostsim"
	"github.com/realmhook/realmhook/hostsim/fakeapp"
)

// allChecks are every check a run against a reachable app records, in order.
var allChecks = []string{
	hostsim.CheckDescriptorFetch, hostsim.CheckRegionBaseURLs, hostsim.CheckLifecycle, hostsim.CheckSignedInstallDeclared,
	hostsim.CheckInstallSigned, hostsim.CheckInstallForgedSignature, hostsim.CheckInstallUnknownKid, hostsim.CheckInstallWrongAudience,
	hostsim.CheckEnabledDisabled, hostsim.CheckBadQSH, hostsim.CheckContextQSH,
	hostsim.CheckStartWithoutSchedule, hostsim.CheckUnknownRealm,
	hostsim.CheckSchedule, hostsim.CheckScheduleIdempotent, hostsim.CheckStart, hostsim.CheckStartIdempotent, hostsim.CheckStatus,
	hostsim.CheckCommit, hostsim.CheckCommitIdempotent, hostsim.CheckCommitMoves,
	hostsim.CheckRollback, hostsim.CheckRollbackIdempotent, hostsim.CheckRollbackRestores,
	hostsim.CheckConcurrentLimit, hostsim.CheckUninstall,
}

func TestHost_Conformance(t *testing.T) {
	tests := []struct {
		name       string
		defects    fakeapp.Defects
		probe      hostsim.DataProbe
		wantFailed []string
		wantDetail string // in the first failed check's detail, or in the output
	}{
		{name: "Conformant", probe: hostsim.PropertyProbe{}, wantDetail: "probe properties: data served in EU, not in global"},
		{name: "ConformantWithoutProbe", wantDetail: "no data probe: hook answers only"},
		{
			name: "IgnoresQSH", defects: fakeapp.Defects{IgnoreQSH: true}, probe: hostsim.PropertyProbe{},
			wantFailed: []string{hostsim.CheckBadQSH, hostsim.CheckContextQSH},
			wantDetail: "want 401 or 403",
		},
		{
			name: "AcceptsForgedInstall", defects: fakeapp.Defects{AcceptForgedInstall: true}, probe: hostsim.PropertyProbe{},
			wantFailed: []string{hostsim.CheckInstallForgedSignature, hostsim.CheckInstallUnknownKid, hostsim.CheckInstallWrongAudience},
			wantDetail: "was accepted",
		},
		{
			name: "NeverE0004", defects: fakeapp.Defects{NoConcurrencyLimit: true}, probe: hostsim.PropertyProbe{},
			wantFailed: []string{hostsim.CheckConcurrentLimit},
			wantDetail: "E0004 not reached after 8 concurrent migrations",
		},
		{
			name: "ScheduleNotIdempotent", defects: fakeapp.Defects{ScheduleNotIdempotent: true}, probe: hostsim.PropertyProbe{},
			wantFailed: []string{hostsim.CheckScheduleIdempotent},
			wantDetail: "409 Conflict",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := mustEnv(t, tc.defects)
			e.host.Now = e.clock.Tick
			_, forged := mustKeys(t)
			rep, err := e.host.Conformance(context.Background(), hostsim.ConformanceOptions{
				DescriptorURL: e.descriptorURL, Probe: tc.probe, ForgedKey: forged, ConcurrencyAttempts: 8,
			})
			t.Log(e.out.String())
			if err != nil {
				t.Fatal(err)
			}
			var names, failed []string
			for _, c := range rep.Checks {
				names = append(names, c.Name)
			}
			for _, c := range rep.Failed() {
				failed = append(failed, c.Name)
			}
			if !slices.Equal(names, allChecks) {
				t.Errorf("checks run:\n%v\nwant:\n%v", names, allChecks)
			}
			if !slices.Equal(failed, tc.wantFailed) {
				t.Fatalf("failed checks %v, want %v", failed, tc.wantFailed)
			}
			if rep.OK() != (len(tc.wantFailed) == 0) {
				t.Errorf("report OK() = %v with %d failures", rep.OK(), len(failed))
			}
			if !strings.Contains(e.out.String(), tc.wantDetail) {
				t.Errorf("output does not mention %q", tc.wantDetail)
			}
			for _, name := range tc.wantFailed {
				if !strings.Contains(e.out.String(), "FAIL "+name+" — ") {
					t.Errorf("output has no FAIL line for %s", name)
				}
			}
			mustJUnitMatch(t, rep)
		})
	}
}

// mustJUnitMatch checks that the JUnit XML says what the report says.
func mustJUnitMatch(t *testing.T, rep hostsim.Report) {
	t.Helper()
	var buf bytes.Buffer
	if err := rep.WriteJUnit(&buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Time     string `xml:"time,attr"`
		Suites   []struct {
			Time  string `xml:"time,attr"`
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("junit is not XML: %v\n%s", err, buf.String())
	}
	if doc.Tests != len(rep.Checks) || doc.Failures != len(rep.Failed()) || len(doc.Suites) != 1 {
		t.Fatalf("junit tests=%d failures=%d suites=%d; report has %d checks, %d failed",
			doc.Tests, doc.Failures, len(doc.Suites), len(rep.Checks), len(rep.Failed()))
	}
	// The run as a whole takes at least as long as its checks (the test's
	// clock ticks on every reading).
	var checks time.Duration
	for _, c := range rep.Checks {
		checks += c.Duration
	}
	if checks == 0 || rep.Duration < checks {
		t.Fatalf("report took %s, its checks %s: want the run's time to cover its checks, and some time to pass", rep.Duration, checks)
	}
	if want := fmt.Sprintf("%.3f", rep.Duration.Seconds()); doc.Time != want || doc.Suites[0].Time != want {
		t.Fatalf("junit time %q, suite time %q; want %s (the report's duration)", doc.Time, doc.Suites[0].Time, want)
	}
	for i, c := range doc.Suites[0].Cases {
		want := rep.Checks[i]
		if c.Name != want.Name || (c.Failure != nil) == want.Passed {
			t.Fatalf("junit case %d = %s failed=%v, report %s passed=%v", i, c.Name, c.Failure != nil, want.Name, want.Passed)
		}
	}
}

func TestHost_Conformance_Unreachable(t *testing.T) {
	e := mustEnv(t, fakeapp.Defects{})
	_, forged := mustKeys(t)
	rep, err := e.host.Conformance(context.Background(), hostsim.ConformanceOptions{
		DescriptorURL: e.appURL + "/no-such-descriptor.json", ForgedKey: forged,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Checks) != 1 || rep.Checks[0].Name != hostsim.CheckDescriptorFetch || rep.Checks[0].Passed {
		t.Fatalf("checks %+v, want one failed %s", rep.Checks, hostsim.CheckDescriptorFetch)
	}
	if !strings.Contains(rep.Checks[0].Detail, "404") {
		t.Fatalf("detail %q does not give the status", rep.Checks[0].Detail)
	}
}

func TestHost_Conformance_KeyServerMissing(t *testing.T) {
	e := mustEnv(t, fakeapp.Defects{})
	e.host.KeysURL = ""
	_, err := e.host.Conformance(context.Background(), hostsim.ConformanceOptions{DescriptorURL: e.descriptorURL})
	if err == nil || !strings.Contains(err.Error(), "no key server") {
		t.Fatalf("err %v, want one saying there is no key server", err)
	}
}

func TestHost_Conformance_GatewayProbe(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		wantFailed []string
	}{
		{"PageServed", "/page", nil},
		{"NoSuchPage", "/no-such-page", []string{hostsim.CheckGatewaySigned, hostsim.CheckGatewayUnsigned}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := mustEnv(t, fakeapp.Defects{})
			e.host.Now = e.clock.Tick
			_, forged := mustKeys(t)
			rep, err := e.host.Conformance(context.Background(), hostsim.ConformanceOptions{
				DescriptorURL: e.descriptorURL, ForgedKey: forged, ConcurrencyAttempts: 8, GatewayPath: tc.path,
			})
			if err != nil {
				t.Fatal(err)
			}
			var failed []string
			for _, c := range rep.Failed() {
				failed = append(failed, c.Name)
			}
			if !slices.Equal(failed, tc.wantFailed) {
				t.Fatalf("failed checks %v, want %v\n%s", failed, tc.wantFailed, e.out.String())
			}
			for _, name := range []string{hostsim.CheckGatewaySigned, hostsim.CheckGatewayUnsigned} {
				if _, ok := rep.Check(name); !ok {
					t.Errorf("check %s not run", name)
				}
			}
		})
	}
}
