package realmhook

import (
	"math"
	"time"
)

// MigrationState is where a data residency migration stands. The states the
// host reads are "ready-to-commit" and "failed"; the rest are ours.
type MigrationState string

const (
	MigrationScheduled     MigrationState = "scheduled"
	MigrationCopying       MigrationState = "copying"
	MigrationVerifying     MigrationState = "verifying"
	MigrationReadyToCommit MigrationState = "ready-to-commit"
	MigrationFailed        MigrationState = "failed"
	MigrationCommitting    MigrationState = "committing"
	MigrationCommitted     MigrationState = "committed"
	MigrationRollingBack   MigrationState = "rolling-back"
	MigrationRolledBack    MigrationState = "rolled-back"
)

// Host-facing error response codes of the data residency protocol.
const (
	ResponseNotScheduled      = "E0001"
	ResponseRealmNotSupported = "E0002"
	ResponseNotSupported      = "E0003"
	ResponseTooManyConcurrent = "E0004"
	ResponseOther             = "E9999"
)

// Migration is one data residency migration of one tenant, identified by
// (ClientKey, ID). Its record lives in the source realm's database; on commit a
// copy is written to the target realm's database too, so that repeated hooks
// find it wherever the tenant now lives.
type Migration struct {
	ClientKey   string
	ID          string
	SourceRealm string
	TargetRealm string
	State       MigrationState
	StartTime   time.Time
	EndTime     time.Time

	// ErrorResponseCode (E0001…E9999) and Message explain a failure.
	ErrorResponseCode string
	Message           string

	Progress Progress
	// Checkpoint is the copy engine's opaque resume point.
	Checkpoint string

	CreatedAt time.Time
	UpdatedAt time.Time
}

// Progress of a migration's copy.
type Progress struct {
	TablesDone  int   `json:"tablesDone"`
	TablesTotal int   `json:"tablesTotal"`
	RowsCopied  int64 `json:"rowsCopied"`
	RowsTotal   int64 `json:"rowsTotal"`
}

// Percent is the share of rows copied, 0 to 100.
func (p Progress) Percent() float64 {
	if p.RowsTotal <= 0 {
		if p.TablesTotal > 0 && p.TablesDone >= p.TablesTotal {
			return 100
		}
		return 0
	}
	pct := float64(p.RowsCopied) * 100 / float64(p.RowsTotal)
	if pct > 100 {
		pct = 100
	}
	return pct
}

// MigrationEvent is one audit row: a migration moved from one state to another.
type MigrationEvent struct {
	At          time.Time
	ClientKey   string
	MigrationID string
	From        MigrationState // "" for the first event
	To          MigrationState
	Detail      string
}

// Limits of a migration window as an app declares it (Connect's
// dataResidency.maxMigrationDurationHours, Forge's migration:dataResidency
// module): the host takes it in steps of MigrationHoursStep.
const (
	MinMigrationHours  = 0.5
	MaxMigrationHours  = 24
	MigrationHoursStep = 0.5
	// ForgeMigrationHours is Forge's default window.
	ForgeMigrationHours = 1.5
)

// CheckMigrationHours is the one rule for a declared migration window:
// EINVALID unless h is from MinMigrationHours to MaxMigrationHours in steps
// of MigrationHoursStep.
func CheckMigrationHours(h float64) error {
	if h < MinMigrationHours || h > MaxMigrationHours || math.Mod(h, MigrationHoursStep) != 0 {
		return Errorf(EINVALID, "must be from %g to %g hours in steps of %g, got %g", float64(MinMigrationHours), float64(MaxMigrationHours), MigrationHoursStep, h)
	}
	return nil
}
