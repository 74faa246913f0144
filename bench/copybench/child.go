package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/migration"
	"github.com/realmhook/realmhook/store"
	"github.com/realmhook/realmhook/store/postgres"
	"github.com/realmhook/realmhook/store/sqlite"
)

// The data set: the tenant copied and another tenant in the same tables that
// must stay behind (the tables are the -shape's).
const (
	benchTenant = "tenant-bench-a"
	otherTenant = "tenant-bench-b"
	migrationID = "bench-1"
	sourceRealm = "US"
	targetRealm = "EU"
	// minRows keeps every table of every shape non-empty for the copied tenant.
	minRows = 10
)

// copySpec is one copy for a child process to run.
type copySpec struct {
	Backend    string `json:"backend"`
	Source     string `json:"source"` // SQLite path or postgres URL
	Target     string `json:"target"`
	Shape      string `json:"shape"`
	Rows       int    `json:"rows"` // the tenant's rows over all its tables
	Batch      int    `json:"batch"`
	Checkpoint int    `json:"checkpoint"`
	CPUProfile string `json:"cpuprofile,omitempty"`
	// Transfer: the target is written through another process's transfer
	// API (see regional.go).
	Transfer bool `json:"transfer,omitempty"`
}

// copyResult is what a child reports. Copy and Verify come from the
// migration's own audit events, so they measure the engine, not the polling.
type copyResult struct {
	Copy   time.Duration `json:"copy"`
	Verify time.Duration `json:"verify"`
	// Wall is from Start to Wait seeing ready-to-commit.
	Wall time.Duration `json:"wall"`
	// Copied is the tenant's rows in the target afterwards; OtherCopied the
	// other tenant's (must be 0).
	Copied      int64 `json:"copied"`
	OtherCopied int64 `json:"otherCopied"`
}

// runChild is the child side: run the copy in spec and print its result as
// JSON on stdout.
func (m *Main) runChild(ctx context.Context) error {
	var spec copySpec
	if err := json.Unmarshal([]byte(m.Child), &spec); err != nil {
		return fmt.Errorf("child spec: %w", err)
	}
	if spec.CPUProfile != "" {
		f, err := os.Create(spec.CPUProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	res, err := runCopy(ctx, spec, m.Logger)
	if err != nil {
		return err
	}
	return json.NewEncoder(m.Stdout).Encode(res)
}

// openStore opens one side of a copy.
func openStore(ctx context.Context, backend, where string, log *slog.Logger) (store.Store, error) {
	switch backend {
	case "sqlite":
		return sqlite.Open(ctx, where, sqlite.Options{Logger: log})
	case "postgres":
		return postgres.Open(ctx, where, postgres.Options{Logger: log})
	}
	return nil, realmhook.Errorf(realmhook.EINVALID, "unknown backend %q", backend)
}

// runCopy migrates benchTenant from spec.Source to spec.Target with the real
// engine, up to ready-to-commit, and checks what landed in the target.
func runCopy(ctx context.Context, spec copySpec, log *slog.Logger) (copyResult, error) {
	shape, err := lookupShape(spec.Shape)
	if err != nil {
		return copyResult{}, err
	}
	src, err := openStore(ctx, spec.Backend, spec.Source, log)
	if err != nil {
		return copyResult{}, fmt.Errorf("open source: %w", err)
	}
	defer src.Close()
	dst, err := openStore(ctx, spec.Backend, spec.Target, log)
	if err != nil {
		return copyResult{}, fmt.Errorf("open target: %w", err)
	}
	defer dst.Close()

	served := map[string]store.Store{sourceRealm: src, targetRealm: dst}
	peers := map[string]migration.Peer{sourceRealm: migration.LocalPeer(src), targetRealm: migration.LocalPeer(dst)}
	if spec.Transfer {
		// This process holds the source only; dst stays open to count
		// what landed once the copy is done.
		profile := ""
		if spec.CPUProfile != "" {
			profile = spec.CPUProfile + ".target"
		}
		target, err := startTarget(ctx, spec.Backend, spec.Target, profile, os.Stderr)
		if err != nil {
			return copyResult{}, err
		}
		defer target.stop()
		delete(served, targetRealm)
		peers[targetRealm] = target.peer()
	}
	svc := migration.New(migration.Config{
		Enabled:        true,
		BatchRows:      spec.Batch,
		CheckpointRows: spec.Checkpoint,
		Tables:         appTables(shape),
	}, served, peers, migration.Options{Logger: log})
	defer svc.Close()

	tenant, err := src.GetTenant(ctx, benchTenant)
	if err != nil {
		return copyResult{}, fmt.Errorf("source tenant: %w", err)
	}
	now := time.Now()
	req := migration.Request{MigrationID: migrationID, Location: targetRealm, StartTime: now, EndTime: now.Add(24 * time.Hour)}
	if _, err := svc.Schedule(ctx, sourceRealm, tenant, req); err != nil {
		return copyResult{}, fmt.Errorf("schedule: %w", err)
	}
	began := time.Now()
	if _, err := svc.Start(ctx, sourceRealm, tenant, req); err != nil {
		return copyResult{}, fmt.Errorf("start: %w", err)
	}
	mig, err := svc.Wait(ctx, sourceRealm, benchTenant, migrationID, realmhook.MigrationReadyToCommit, realmhook.MigrationFailed)
	if err != nil {
		return copyResult{}, err
	}
	res := copyResult{Wall: time.Since(began)}
	if mig.State == realmhook.MigrationFailed {
		return copyResult{}, fmt.Errorf("migration failed: %s (%s)", mig.Message, mig.ErrorResponseCode)
	}
	events, err := svc.Events(ctx, sourceRealm, benchTenant, migrationID)
	if err != nil {
		return copyResult{}, err
	}
	if res.Copy, res.Verify, err = phases(events); err != nil {
		return copyResult{}, err
	}

	for _, bt := range shape {
		t := bt.table
		n, err := dst.CountRows(ctx, t, benchTenant)
		if err != nil {
			return copyResult{}, fmt.Errorf("count target: %w", err)
		}
		res.Copied += n
		if n, err = dst.CountRows(ctx, t, otherTenant); err != nil {
			return copyResult{}, fmt.Errorf("count target: %w", err)
		}
		res.OtherCopied += n
	}
	if res.Copied != int64(spec.Rows) || res.OtherCopied != 0 {
		return copyResult{}, fmt.Errorf("target holds %d rows of the tenant (want %d) and %d of the other tenant (want 0)",
			res.Copied, spec.Rows, res.OtherCopied)
	}
	return res, nil
}

// phases reads the copy and verify durations from a migration's events: the
// copy runs from entering copying to entering verifying, the verification
// from there to ready-to-commit.
func phases(events []realmhook.MigrationEvent) (copyDur, verifyDur time.Duration, err error) {
	var copying, verifying, ready time.Time
	for _, e := range events {
		if e.From == e.To {
			continue // checkpoints
		}
		switch e.To {
		case realmhook.MigrationCopying:
			if copying.IsZero() {
				copying = e.At
			}
		case realmhook.MigrationVerifying:
			verifying = e.At
		case realmhook.MigrationReadyToCommit:
			ready = e.At
		}
	}
	if copying.IsZero() || verifying.IsZero() || ready.IsZero() {
		return 0, 0, errors.New("migration events lack the copying, verifying or ready-to-commit transition")
	}
	return verifying.Sub(copying), ready.Sub(verifying), nil
}

// spawnCopy runs spec in a child process (this binary with -child) and
// returns its result and its peak RSS in bytes.
func (m *Main) spawnCopy(ctx context.Context, spec copySpec) (copyResult, int64, error) {
	exe, err := os.Executable()
	if err != nil {
		return copyResult{}, 0, fmt.Errorf("find own binary: %w", err)
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return copyResult{}, 0, err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, exe, "-child", string(js))
	cmd.Stdout = &out
	cmd.Stderr = m.Stderr
	if err := cmd.Run(); err != nil {
		return copyResult{}, 0, fmt.Errorf("copy child (%d rows): %w", spec.Rows, err)
	}
	var res copyResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return copyResult{}, 0, fmt.Errorf("copy child (%d rows): result %q: %w", spec.Rows, out.String(), err)
	}
	return res, peakRSS(cmd.ProcessState), nil
}

// peakRSS is a finished process's maximum resident set size in bytes
// (Linux reports ru_maxrss in KiB).
func peakRSS(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss * 1024
	}
	return 0
}

// profilePath names one child's CPU profile.
func (m *Main) profilePath(rows int) string {
	if m.CPUProfile == "" {
		return ""
	}
	return fmt.Sprintf("%s.%s-%d.prof", m.CPUProfile, m.Backend, rows)
}
