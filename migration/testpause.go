package migration

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PauseEnv names the test-only environment variable that makes the engine
// stop at named steps of a migration, so the crash suite (integration) can
// SIGKILL the process at an exact point: "step[:n][=duration],…" pauses the
// n-th time (default the first) the step is reached, forever or for the
// duration. Unset, as outside the suite it always is, pauseAt does nothing.
const PauseEnv = "REALMHOOK_TEST_PAUSE_AT"

// Steps pauseAt is called at.
const (
	stepCopyBatch       = "copy-batch"       // a batch handed to the target's open transaction
	stepCopyWritten     = "copy-written"     // an interval committed in the target, its checkpoint not saved
	stepCopyCheckpoint  = "copy-checkpoint"  // a checkpoint saved
	stepVerifyTable     = "verify-table"     // a table verified, the next not yet
	stepCommitRecorded  = "commit-recorded"  // committing recorded, nothing applied
	stepCommitActivated = "commit-activated" // target activated, source not yet marked moved
	stepRollbackDiscard = "rollback-discarded"
	stepPurgeRows       = "purge-rows" // a moved tenant's rows deleted, its record not yet
)

type pausePoint struct {
	at  int
	dur time.Duration // 0: forever
}

var pauses = struct {
	sync.Mutex
	points map[string]pausePoint
	seen   map[string]int
}{points: parsePauses(os.Getenv(PauseEnv)), seen: map[string]int{}}

func parsePauses(v string) map[string]pausePoint {
	out := map[string]pausePoint{}
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p := pausePoint{at: 1}
		if name, d, ok := strings.Cut(item, "="); ok {
			item = name
			p.dur, _ = time.ParseDuration(d)
		}
		if name, n, ok := strings.Cut(item, ":"); ok {
			item = name
			p.at, _ = strconv.Atoi(n)
		}
		out[item] = p
	}
	return out
}

// pauseAt is the test-only hook at a named step (see PauseEnv).
func pauseAt(step string) {
	if len(pauses.points) == 0 {
		return
	}
	pauses.Lock()
	p, ok := pauses.points[step]
	pauses.seen[step]++
	hit := ok && pauses.seen[step] == p.at
	pauses.Unlock()
	if !hit {
		return
	}
	fmt.Fprintf(os.Stderr, "%s: paused at %s\n", PauseEnv, step)
	if p.dur > 0 {
		time.Sleep(p.dur)
		fmt.Fprintf(os.Stderr, "%s: resumed after %s\n", PauseEnv, step)
		return
	}
	select {}
}
