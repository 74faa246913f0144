package realmhook

import (
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
)

// TenantState says what a realm's database holds for a tenant.
type TenantState string

const (
	// TenantActive: this realm is the tenant's pinned realm and serves it.
	TenantActive TenantState = "active"
	// TenantIncoming: a migration is copying the tenant here; not served yet.
	TenantIncoming TenantState = "incoming"
	// TenantMoved: the tenant was migrated to MovedTo; the copy here waits for
	// the purge sweeper, and calls here are answered 421.
	TenantMoved TenantState = "moved"
	// TenantUninstalled: the host uninstalled the app; data is kept so that a
	// re-install finds it.
	TenantUninstalled TenantState = "uninstalled"
	// TenantPurging: the purge sweeper is deleting a moved tenant's leftover
	// copy. Calls here are answered 421 towards MovedTo, as for TenantMoved,
	// and no migration may move the tenant back in until the record is gone.
	TenantPurging TenantState = "purging"
	// TenantNone stands for "no record" in the transition table: a record is
	// created from it and deleted to it.
	TenantNone TenantState = ""
)

// tenantTransitions is the state machine of one realm's record of a tenant:
// every state it may move to from each state, and who moves it. An update
// that keeps the state (an enable, a freeze, a re-install) is always allowed.
var tenantTransitions = map[TenantState][]TenantState{
	TenantNone: {
		TenantActive,   // installed
		TenantIncoming, // a migration prepares the target
	},
	TenantActive: {
		TenantUninstalled, // uninstalled
		TenantMoved,       // a commit, in the source
		TenantNone,        // a rollback undoes the commit that activated it, in the target
	},
	TenantIncoming: {
		TenantActive, // a commit activates the target
		TenantNone,   // a rollback discards the target's copy
	},
	TenantMoved: {
		TenantActive,   // a rollback of a half-done commit, in the source
		TenantIncoming, // a migration back into this realm
		TenantPurging,  // the purge sweeper, once PurgeAfter passed
	},
	TenantUninstalled: {
		TenantActive, // a re-install
	},
	TenantPurging: {
		TenantNone, // the sweeper deleted the copy
	},
}

// TenantStates lists every state a tenant record may have.
var TenantStates = []TenantState{TenantActive, TenantIncoming, TenantMoved, TenantUninstalled, TenantPurging}

// CheckTenantTransition returns an ECONFLICT error unless a tenant record in
// state from may move to state to (TenantNone: no record), and EINVALID for a
// state it does not know. Every store checks each UpdateTenant with it.
func CheckTenantTransition(from, to TenantState) error {
	next, known := tenantTransitions[from]
	if !known {
		return Errorf(EINVALID, "unknown tenant state %q", from)
	}
	if _, known := tenantTransitions[to]; !known {
		return Errorf(EINVALID, "unknown tenant state %q", to)
	}
	if from == to && from != TenantNone {
		return nil
	}
	for _, s := range next {
		if s == to {
			return nil
		}
	}
	return Errorf(ECONFLICT, "tenant record cannot go from %s to %s", stateName(from), stateName(to))
}

func stateName(s TenantState) string {
	if s == TenantNone {
		return "no record"
	}
	return string(s)
}

// Tenant is one installation of the app on one product site.
type Tenant struct {
	ClientKey                string
	SharedSecret             string
	BaseURL                  string // the product site's base URL
	DisplayURL               string
	ProductType              string
	Description              string
	ServiceEntitlementNumber string
	// InstallationID is the installation's id: from a Connect install body,
	// or the Forge installation (a Forge tenant's first one is its ClientKey;
	// a re-install replaces it here, the key stays).
	InstallationID string
	// CloudID is the product site's cloud id, from a FIT or a Forge
	// lifecycle event ("" when none said): a re-install on the same site
	// finds its tenant by it.
	CloudID        string
	OAuthClientID  string
	PluginsVersion string
	AppKey         string

	State   TenantState
	Enabled bool
	// MigrationID is set while a started migration freezes the tenant's writes.
	MigrationID string
	// MovedTo is the realm key the tenant was committed to (MovedAway).
	MovedTo string
	// PurgeAfter is when a moved tenant's leftover copy may be deleted.
	PurgeAfter time.Time

	InstalledAt time.Time
	UpdatedAt   time.Time
}

// Frozen reports whether writes to the tenant's data are refused because a
// migration holds the tenant.
func (t *Tenant) Frozen() bool { return t.MigrationID != "" }

// MovedAway reports whether the tenant was committed to another realm
// (MovedTo) and this record is only its leftover copy, kept or being purged.
func (t *Tenant) MovedAway() bool { return t.State == TenantMoved || t.State == TenantPurging }

// Property is one entry of the built-in property store.
type Property struct {
	Key   string
	Value []byte // JSON, stored byte for byte
}

// Limits of the built-in property store.
const (
	MaxPropertyKeyBytes   = 255
	MaxPropertyValueBytes = 32 << 10
)

// CheckPropertyKey is the one rule for a property key, applied by the tenant
// API before any store call and again by every store backend, so that a key
// one backend could hold and another could not is refused everywhere: a key
// is 1 to MaxPropertyKeyBytes bytes of UTF-8 without NUL (PostgreSQL text
// holds neither NUL nor invalid UTF-8, and a tenant stored on SQLite with such
// a key could never migrate there).
func CheckPropertyKey(key string) error {
	switch {
	case key == "":
		return Errorf(EINVALID, "property key is empty")
	case len(key) > MaxPropertyKeyBytes:
		return Errorf(EINVALID, "property key is %d bytes; the limit is %d", len(key), MaxPropertyKeyBytes)
	case !utf8.ValidString(key):
		return Errorf(EINVALID, "property key is not valid UTF-8")
	case strings.IndexByte(key, 0) >= 0:
		return Errorf(EINVALID, "property key contains a NUL byte")
	}
	return nil
}

// CheckPropertyValue is the one rule for a property value, applied like
// CheckPropertyKey: at most MaxPropertyValueBytes (ETOOLARGE) of valid JSON
// in UTF-8 (RFC 8259 §8.1; encoding/json alone lets invalid UTF-8 through).
// Valid JSON holds no raw NUL: control characters must be escaped.
func CheckPropertyValue(value []byte) error {
	switch {
	case len(value) > MaxPropertyValueBytes:
		return Errorf(ETOOLARGE, "property value is %d bytes; the limit is %d", len(value), MaxPropertyValueBytes)
	case !utf8.Valid(value):
		return Errorf(EINVALID, "property value is not valid UTF-8 (JSON text must be UTF-8)")
	case !json.Valid(value):
		return Errorf(EINVALID, "property value is not valid JSON")
	}
	return nil
}
