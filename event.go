package realmhook

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// EventType names a lifecycle event the gateway delivers to the app behind it.
type EventType string

// The lifecycle events. The migration events carry the migration's id and
// its source and target realms.
const (
	EventInstalled   EventType = "installed"
	EventUninstalled EventType = "uninstalled"
	EventEnabled     EventType = "enabled"
	EventDisabled    EventType = "disabled"
	// EventMigrationStarted: the tenant's write freeze has begun.
	EventMigrationStarted EventType = "migration.started"
	// EventMigrationCommitted goes to both realms' apps: the source's (the
	// tenant left) and the target's (it arrived).
	EventMigrationCommitted  EventType = "migration.committed"
	EventMigrationRolledBack EventType = "migration.rolled-back"
)

// EventTypes lists every event type.
var EventTypes = []EventType{EventInstalled, EventUninstalled, EventEnabled, EventDisabled,
	EventMigrationStarted, EventMigrationCommitted, EventMigrationRolledBack}

// Event is one lifecycle event for the app behind the gateway, as it is
// delivered (its JSON is the body the app receives). It is written to the
// outbox of the realm whose app receives it, in the same transaction as the
// change it announces, so that a crash can delay it but never lose it.
type Event struct {
	// ID is unique per event: the app may see an event twice (delivery is
	// at least once) and tells the repeat by it.
	ID        string    `json:"id"`
	Type      EventType `json:"type"`
	ClientKey string    `json:"clientKey"`
	// Realm is the realm of the app receiving the event.
	Realm string `json:"realm"`
	// ProductBaseURL is the tenant's product site.
	ProductBaseURL string `json:"productBaseUrl"`
	MigrationID    string `json:"migrationId,omitempty"`
	// From and To are a migration's source and target realms.
	From string    `json:"from,omitempty"`
	To   string    `json:"to,omitempty"`
	At   time.Time `json:"at"`
}

// NewEvent returns an event of tenant t for the app of realm, with a fresh id.
func NewEvent(typ EventType, t *Tenant, realm string, at time.Time) Event {
	var id [16]byte
	_, _ = rand.Read(id[:])
	return Event{ID: hex.EncodeToString(id[:]), Type: typ, ClientKey: t.ClientKey, Realm: realm,
		ProductBaseURL: t.BaseURL, At: at.UTC()}
}

// NewMigrationEvent returns an event of migration m of tenant t for the app
// of realm.
func NewMigrationEvent(typ EventType, t *Tenant, m *Migration, realm string, at time.Time) Event {
	e := NewEvent(typ, t, realm, at)
	e.MigrationID, e.From, e.To = m.ID, m.SourceRealm, m.TargetRealm
	return e
}
