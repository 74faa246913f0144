package migration

import (
	"slices"

	"github.com/realmhook/realmhook"
)

// transitions is the migration state machine: every state a migration may move
// to from each state. An update that keeps the state (from == to) is only
// allowed where listed, which is how the copy saves checkpoints.
var transitions = map[realmhook.MigrationState][]realmhook.MigrationState{
	realmhook.MigrationScheduled: {
		realmhook.MigrationCopying,
		// A migration to the realm the tenant already lives in has nothing to copy.
		realmhook.MigrationReadyToCommit,
		// The window ended before /start.
		realmhook.MigrationFailed,
		realmhook.MigrationRollingBack,
	},
	realmhook.MigrationCopying: {
		realmhook.MigrationCopying,
		realmhook.MigrationVerifying,
		realmhook.MigrationFailed,
		realmhook.MigrationRollingBack,
	},
	realmhook.MigrationVerifying: {
		realmhook.MigrationReadyToCommit,
		realmhook.MigrationFailed,
		realmhook.MigrationRollingBack,
	},
	realmhook.MigrationReadyToCommit: {
		realmhook.MigrationCommitting,
		realmhook.MigrationRollingBack,
	},
	realmhook.MigrationFailed: {
		realmhook.MigrationRollingBack,
	},
	realmhook.MigrationCommitting: {
		realmhook.MigrationCommitted,
		// The host answers a failed /commit with /rollback; the partial commit
		// is undone rather than finished so that we agree with the host.
		realmhook.MigrationRollingBack,
	},
	realmhook.MigrationRollingBack: {
		realmhook.MigrationRolledBack,
	},
	realmhook.MigrationCommitted:  nil,
	realmhook.MigrationRolledBack: nil,
}

// allStates lists every migration state, in lifecycle order.
var allStates = []realmhook.MigrationState{
	realmhook.MigrationScheduled,
	realmhook.MigrationCopying,
	realmhook.MigrationVerifying,
	realmhook.MigrationReadyToCommit,
	realmhook.MigrationFailed,
	realmhook.MigrationCommitting,
	realmhook.MigrationCommitted,
	realmhook.MigrationRollingBack,
	realmhook.MigrationRolledBack,
}

// activeStates are the states that count against Config.MaxConcurrent: the
// migration holds (or is about to hold) a tenant and a copy.
var activeStates = []realmhook.MigrationState{
	realmhook.MigrationScheduled,
	realmhook.MigrationCopying,
	realmhook.MigrationVerifying,
	realmhook.MigrationReadyToCommit,
	realmhook.MigrationCommitting,
	realmhook.MigrationRollingBack,
}

// holdingStates are what a schedule must look at: the active states, and
// failed, since a failed migration holds its tenant until its rollback.
var holdingStates = append(append([]realmhook.MigrationState(nil), activeStates...), realmhook.MigrationFailed)

// checkTransition returns an ECONFLICT error unless a migration in state from
// may move to state to.
func checkTransition(from, to realmhook.MigrationState) error {
	next, known := transitions[from]
	if !known {
		return realmhook.Errorf(realmhook.EINVALID, "unknown migration state %q", from)
	}
	for _, s := range next {
		if s == to {
			return nil
		}
	}
	return realmhook.Errorf(realmhook.ECONFLICT, "migration cannot go from %s to %s", from, to)
}

// States lists every migration state, in lifecycle order.
func States() []realmhook.MigrationState { return slices.Clone(allStates) }

// ActiveStates lists the states of a migration under way: it holds (or is
// about to hold) a tenant and a copy, and counts against MaxConcurrent.
func ActiveStates() []realmhook.MigrationState { return slices.Clone(activeStates) }
