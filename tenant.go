package realmhook

import "time"

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
)

// Tenant is one installation of the app on one product site.
type Tenant struct {
	ClientKey                string
	SharedSecret             string
	BaseURL                  string // the product site's base URL
	DisplayURL               string
	ProductType              string
	Description              string
	ServiceEntitlementNumber string
	InstallationID           string
	OAuthClientID            string
	PluginsVersion           string
	AppKey                   string

	State   TenantState
	Enabled bool
	// MigrationID is set while a started migration freezes the tenant's writes.
	MigrationID string
	// MovedTo is the realm key the tenant was committed to (State == TenantMoved).
	MovedTo string
	// PurgeAfter is when a moved tenant's leftover copy may be deleted.
	PurgeAfter time.Time

	InstalledAt time.Time
	UpdatedAt   time.Time
}

// Frozen reports whether writes to the tenant's data are refused.
func (t *Tenant) Frozen() bool { return t.MigrationID != "" }

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
