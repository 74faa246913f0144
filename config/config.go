// Package config reads realmhook's YAML configuration, expands ${VAR} from the
// environment, applies defaults and validates it, so that bad config fails
// start-up with one line naming the key.
package config

import "time"

// Config is the whole configuration file. YAML key names are part of the
// external contract (outside tools write them); each is documented in README.md.
type Config struct {
	// Listen is the address the public HTTP server binds ("127.0.0.1:8080").
	Listen string `yaml:"listen"`
	// DataDir is where default SQLite databases live ("./data").
	DataDir     string      `yaml:"dataDir"`
	App         App         `yaml:"app"`
	InstallKeys InstallKeys `yaml:"installKeys"`
	JWT         JWT         `yaml:"jwt"`
	HTTP        HTTP        `yaml:"http"`
	// Serve lists the realm keys this process serves; empty means all.
	Serve []string `yaml:"serve"`
	// Realms by key: "global" (required) and upper-case realm keys.
	Realms    map[string]Realm `yaml:"realms"`
	Migration Migration        `yaml:"migration"`
	// Tables are the app's own tenant-scoped tables that migrations copy.
	Tables []Table `yaml:"tables"`
	Log    Log     `yaml:"log"`
	// Internal authenticates the realm-to-realm transfer API of the regional
	// shape.
	Internal Internal `yaml:"internal"`
	// Secrets seals tenants' shared secrets in every served realm's database.
	Secrets Secrets `yaml:"secrets"`
	// Forge serves the app as a Forge remote too (on when forge.appId is set).
	Forge Forge `yaml:"forge"`
	// Gateway, when present, forwards the app's own routes to its server.
	Gateway *Gateway `yaml:"gateway"`
	// Admin is the operators' API (realmctl, the /admin page), on a
	// listener of its own.
	Admin Admin `yaml:"admin"`
}

// Admin configures the admin API. It is off unless Listen is set.
type Admin struct {
	// Listen is the admin API's host:port, apart from the public listener so
	// that it can stay on a private network.
	Listen string `yaml:"listen"`
	// Token is the bearer token every admin call carries; required with
	// Listen. Write it as ${VAR}.
	Token string `yaml:"token"`
	// ProbeInterval is how often the admin API probes every realm's health
	// (database ping, internal API); default 10s.
	ProbeInterval time.Duration `yaml:"probeInterval"`
}

// Forge configures the Forge remote: the realms' base URLs are the remote's
// baseUrl map (global as its default), its calls carry Forge Invocation
// Tokens, and its migration hooks and lifecycle events arrive under the
// paths below. Connect stays on beside it (a Connect-on-Forge app).
type Forge struct {
	// AppID is the Forge app's id (a UUID or its ARI,
	// ari:cloud:ecosystem::app/<uuid>); set, it turns Forge on.
	AppID string `yaml:"appId"`
	// JWKSURL is where the keys that sign FITs are published.
	JWKSURL string `yaml:"jwksUrl"`
	// MigrationPath is the migration:dataResidency module's path: the five
	// hooks arrive at {realm base URL}{path}/schedule|start|status|commit|rollback.
	MigrationPath string `yaml:"migrationPath"`
	// EventsPath is the remote endpoint lifecycle events are delivered to.
	EventsPath string `yaml:"eventsPath"`
	// MaxMigrationDurationHours is the module's migration window.
	MaxMigrationDurationHours float64 `yaml:"maxMigrationDurationHours"`
	// Remote is the key of the remote in manifest.yml.
	Remote string `yaml:"remote"`
	// Connect marks a Connect app moving to Forge: the manifest names the
	// remote in app.connect.remote so each tenant keeps its realm.
	Connect bool `yaml:"connect"`
}

// Enabled reports whether the app is served as a Forge remote.
func (f Forge) Enabled() bool { return f.AppID != "" }

// Secrets configures how tenants' shared secrets are kept at rest.
type Secrets struct {
	// Keys are AES-256 keys, each the standard base64 of 32 random bytes
	// (`openssl rand -base64 32`), written as "${VAR}". The first seals;
	// every one opens, so a key is rotated by putting the new one first and
	// dropping the old one once realmhook has re-sealed every row.
	Keys []string `yaml:"keys"`
	// Plaintext, set to true, allows a PostgreSQL realm to keep secrets in
	// plain text when no keys are configured.
	Plaintext bool `yaml:"plaintext"`
}

// Internal is the realm-to-realm API of the regional shape: where this
// process listens for other realms' processes, and how calls between them
// are authenticated.
type Internal struct {
	// Listen is the address of the internal API's listener ("host:port");
	// empty: none (the embedded shape).
	Listen string `yaml:"listen"`
	// Secret authenticates calls between realms' processes; write it as
	// "${VAR}" so it never sits in the file.
	Secret string `yaml:"secret"`
	// TLSCert and TLSKey are PEM files: the internal listener serves TLS
	// with them. Required when a served realm's internalUrl is https.
	TLSCert string `yaml:"tlsCert"`
	TLSKey  string `yaml:"tlsKey"`
	// TLSCA is a PEM file of the CA that signs the other realms' internal
	// certificates; empty: the system's roots.
	TLSCA string `yaml:"tlsCA"`
}

// App names the app and its descriptor template.
type App struct {
	// Descriptor is a path to the descriptor template; empty means the one
	// built into the binary (the repository's atlassian-connect.json).
	Descriptor string `yaml:"descriptor"`
	// Key overrides the template's "key" when set.
	Key string `yaml:"key"`
	// Name overrides the template's "name" when set.
	Name string `yaml:"name"`
}

// InstallKeys is the signed-install public key server.
type InstallKeys struct {
	URL      string        `yaml:"url"`
	Timeout  time.Duration `yaml:"timeout"`
	MaxBytes int64         `yaml:"maxBytes"`
}

// JWT tunes Connect JWT verification.
type JWT struct {
	// Leeway is the clock skew allowed on exp and iat.
	Leeway time.Duration `yaml:"leeway"`
}

// HTTP bounds what one client may hold of the public HTTP server, so slow or
// huge requests cannot tie it up.
type HTTP struct {
	// ReadHeaderTimeout bounds reading a request's headers (slowloris).
	ReadHeaderTimeout time.Duration `yaml:"readHeaderTimeout"`
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout time.Duration `yaml:"readTimeout"`
	// WriteTimeout bounds writing a response to a client that does not read.
	WriteTimeout time.Duration `yaml:"writeTimeout"`
	// IdleTimeout bounds a kept-alive connection between requests.
	IdleTimeout time.Duration `yaml:"idleTimeout"`
	// MaxHeaderBytes bounds a request's headers; larger ones are refused 431.
	MaxHeaderBytes int `yaml:"maxHeaderBytes"`
}

// Realm is one realm: where it is reached and where its data lives.
type Realm struct {
	BaseURL string `yaml:"baseUrl"`
	// Database is "sqlite:PATH" or a postgres:// URL.
	Database string `yaml:"database"`
	// MaxConns sizes the PostgreSQL pool (0: the driver's default).
	MaxConns int32 `yaml:"maxConns"`
	// ConnectTimeout is how long start-up waits for the realm's PostgreSQL
	// to accept a first connection, retrying with backoff.
	ConnectTimeout time.Duration `yaml:"connectTimeout"`
	// InternalURL is where other realms' processes reach this realm's
	// transfer API in the regional shape; empty in the embedded shape.
	InternalURL string `yaml:"internalUrl"`
	// Upstream overrides gateway.upstream for this realm.
	Upstream string `yaml:"upstream"`
}

// Migration limits and tuning.
type Migration struct {
	// Enabled switches data residency migrations on (default true); off, every
	// schedule is refused with E0003.
	Enabled *bool `yaml:"enabled"`
	// MaxConcurrent caps migrations scheduled or running at once (E0004 beyond).
	MaxConcurrent int `yaml:"maxConcurrent"`
	// BatchRows is how many rows one read/write batch moves.
	BatchRows int `yaml:"batchRows"`
	// CheckpointRows is how many rows are copied between checkpoints.
	CheckpointRows int `yaml:"checkpointRows"`
	// PurgeAfter is how long a moved tenant's source copy is kept.
	PurgeAfter time.Duration `yaml:"purgeAfter"`
	// LeaseTTL is how long a replica's claim on a job lasts without renewal.
	LeaseTTL time.Duration `yaml:"leaseTTL"`
	// SweepInterval is how often the purge sweeper runs.
	SweepInterval time.Duration `yaml:"sweepInterval"`
}

// Table is an app-owned tenant-scoped table to migrate.
type Table struct {
	Name         string   `yaml:"name"`
	TenantColumn string   `yaml:"tenantColumn"`
	Key          []string `yaml:"key"`
	// AllowTriggers accepts that the table's triggers fire for the rows a
	// migration copies into it and deletes from it, where the database gives
	// realmhook no way to keep them quiet (SQLite; PostgreSQL when the role
	// may not set session_replication_role). Without it start-up refuses
	// such a table, naming the trigger.
	AllowTriggers bool `yaml:"allowTriggers"`
}

// Log configures log/slog output.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or text
}
