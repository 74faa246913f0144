// Package suitereport collects the one-line summaries that the fault and
// adversarial families print (e.g. "faults: 40 injected, 40 survived, 0 rows
// lost, 0 duplicated"), so `make test` can show them even though `go test`
// hides a passing test's output.
package suitereport

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// EnvFile names the file that summary lines are appended to; `make test` sets
// it and prints the file when the run ends.
const EnvFile = "REALMHOOK_SUITE_SUMMARY"

var mu sync.Mutex

// Record logs one family's summary line and appends it to the file named by
// EnvFile, when set. family is the line's first word ("faults", "tokens", …).
func Record(tb testing.TB, family, format string, args ...any) {
	tb.Helper()
	line := family + ": " + fmt.Sprintf(format, args...)
	tb.Log(line)
	path := os.Getenv(EnvFile)
	if path == "" {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		tb.Fatalf("suitereport: %v", err)
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, line); err != nil {
		tb.Fatalf("suitereport: %v", err)
	}
}
