package storetest

import (
	"fmt"
	"testing"
	"time"
)

func testLeases(t *testing.T, h Harness) {
	s := h.Open(t)
	const ttl = 10 * time.Second
	at := func(d time.Duration) time.Time { return base.Add(d) }

	// Steps run in order against one store: each depends on the ones before.
	steps := []struct {
		name    string
		lease   string
		owner   string
		now     time.Time
		release bool
		want    bool
	}{
		{name: "AcquireFree", lease: "sweeper", owner: "a", now: at(0), want: true},
		{name: "RefusedWhileValid", lease: "sweeper", owner: "b", now: at(5 * time.Second), want: false},
		{name: "OtherLeaseFree", lease: "copier", owner: "b", now: at(5 * time.Second), want: true},
		{name: "RenewOwn", lease: "sweeper", owner: "a", now: at(8 * time.Second), want: true},
		// Renewed until 18s: still a's at 15s, though the first grant ended at 10s.
		{name: "RenewalExtends", lease: "sweeper", owner: "b", now: at(15 * time.Second), want: false},
		{name: "TakenAfterExpiry", lease: "sweeper", owner: "b", now: at(19 * time.Second), want: true},
		{name: "OldOwnerRefused", lease: "sweeper", owner: "a", now: at(20 * time.Second), want: false},
		{name: "ReleaseByNonOwnerIgnored", lease: "sweeper", owner: "a", release: true},
		{name: "StillHeld", lease: "sweeper", owner: "a", now: at(21 * time.Second), want: false},
		{name: "ReleaseByOwner", lease: "sweeper", owner: "b", release: true},
		{name: "FreeAfterRelease", lease: "sweeper", owner: "a", now: at(22 * time.Second), want: true},
		{name: "ReleaseAbsent", lease: "nothing", owner: "a", release: true},
	}
	for i, st := range steps {
		t.Run(fmt.Sprintf("%02d_%s", i, st.name), func(t *testing.T) {
			if st.release {
				mustNoErr(t, s.ReleaseLease(t.Context(), st.lease, st.owner), "ReleaseLease")
				return
			}
			got, err := s.AcquireLease(t.Context(), st.lease, st.owner, ttl, st.now)
			mustNoErr(t, err, "AcquireLease")
			if got != st.want {
				t.Fatalf("AcquireLease(%s, %s, now+%v) = %v, want %v", st.lease, st.owner, st.now.Sub(base), got, st.want)
			}
		})
	}
}
