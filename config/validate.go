package config

import (
	"net"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/forgefit"
	"github.com/realmhook/realmhook/secrets"
)

var (
	identifierPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// ReservedTablePrefix starts the name of every table realmhook keeps for
// itself; an app table may not use it, so a migration never copies or
// overwrites realmhook's own bookkeeping.
const ReservedTablePrefix = "realmhook_"

// MinInternalSecretLen is the shortest internal.secret accepted.
const MinInternalSecretLen = 16

// MinAdminTokenLen is the shortest admin.token accepted: a token guessed
// opens every tenant's records and the purge.
const MinAdminTokenLen = 16

// Validate checks the config after defaults were applied and returns the first
// problem as a *realmhook.Error (EINVALID) whose message is one line naming
// the key, e.g. "config: realms.EU.baseUrl: must be an absolute http(s) URL".
//
// Base URLs of two realms may not be equal (ignoring a trailing "/") and may
// not overlap: on the same scheme and host, one realm's path may not be a
// segment prefix of another's ("/eu" and "/eu/x"), because a request path
// would then belong to both. The one exception is a realm at the root path:
// the embedded shape puts global at "http://host:port" and nests the other
// realms under it ("/realms/eu") on purpose; the router gives a request to the
// realm with the longest matching base path, so the nested realms' routes never
// reach global.
func (c *Config) Validate() error {
	if err := checkListen("listen", c.Listen); err != nil {
		return err
	}
	if err := c.validateAdmin(); err != nil {
		return err
	}
	if c.DataDir == "" {
		return invalidf("dataDir", "required")
	}
	if err := checkHTTPURL("installKeys.url", c.InstallKeys.URL); err != nil {
		return err
	}
	if err := positive("installKeys.timeout", c.InstallKeys.Timeout); err != nil {
		return err
	}
	if c.InstallKeys.MaxBytes < 1 {
		return invalidf("installKeys.maxBytes", "must be at least 1, got %d", c.InstallKeys.MaxBytes)
	}
	if err := positive("jwt.leeway", c.JWT.Leeway); err != nil {
		return err
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"http.readHeaderTimeout", c.HTTP.ReadHeaderTimeout}, {"http.readTimeout", c.HTTP.ReadTimeout},
		{"http.writeTimeout", c.HTTP.WriteTimeout}, {"http.idleTimeout", c.HTTP.IdleTimeout},
	} {
		if err := positive(d.key, d.v); err != nil {
			return err
		}
	}
	if c.HTTP.MaxHeaderBytes < 4096 {
		return invalidf("http.maxHeaderBytes", "must be at least 4096, got %d", c.HTTP.MaxHeaderBytes)
	}
	if err := c.validateServe(); err != nil {
		return err
	}
	if err := c.validateRealms(); err != nil {
		return err
	}
	if err := c.validateMigration(); err != nil {
		return err
	}
	if err := c.validateTables(); err != nil {
		return err
	}
	if err := c.validateSecrets(); err != nil {
		return err
	}
	if err := c.validateForge(); err != nil {
		return err
	}
	if err := c.validateGateway(); err != nil {
		return err
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return invalidf("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		return invalidf("log.format", "want json or text, got %q", c.Log.Format)
	}
	return nil
}

func (c *Config) validateRealms() error {
	if _, ok := c.Realms[realmhook.GlobalRealm]; !ok {
		return invalidf("realms.global", "required (the realm behind the descriptor's baseUrl)")
	}
	type base struct {
		key        string
		schemeHost string
		path       string // without trailing "/"
	}
	var bases []base
	needSecret := ""
	for _, key := range realmOrder(c.Realms) {
		r := c.Realms[key]
		p := "realms." + key
		if !realmhook.IsRealmKey(key) {
			return invalidf(p, "realm key must be %s", realmhook.RealmKeyRule)
		}
		if err := checkHTTPURL(p+".baseUrl", r.BaseURL); err != nil {
			return err
		}
		u, _ := url.Parse(r.BaseURL)
		b := base{key: key, schemeHost: strings.ToLower(u.Scheme + "://" + u.Host), path: strings.TrimRight(u.Path, "/")}
		for _, o := range bases {
			if o.schemeHost != b.schemeHost {
				continue
			}
			if o.path == b.path {
				return invalidf(p+".baseUrl", "same URL as realms.%s.baseUrl", o.key)
			}
			short, long := o.path, b.path
			if len(short) > len(long) {
				short, long = long, short
			}
			if short != "" && strings.HasPrefix(long, short+"/") {
				return invalidf(p+".baseUrl", "overlaps realms.%s.baseUrl (one path is inside the other)", o.key)
			}
		}
		bases = append(bases, b)
		if err := c.checkRealmDatabase(key, r); err != nil {
			return err
		}
		if r.MaxConns < 0 {
			return invalidf(p+".maxConns", "must not be negative, got %d", r.MaxConns)
		}
		if r.ConnectTimeout < 0 {
			// 0 is the default, as for every duration.
			return invalidf(p+".connectTimeout", "must not be negative, got %s", r.ConnectTimeout)
		}
		if r.InternalURL != "" {
			if err := checkHTTPURL(p+".internalUrl", r.InternalURL); err != nil {
				return err
			}
			needSecret = p + ".internalUrl"
		}
	}
	if needSecret != "" && c.Internal.Secret == "" {
		return invalidf("internal.secret", "required when %s is set (write it as ${VAR})", needSecret)
	}
	if c.Internal.Secret != "" && len(c.Internal.Secret) < MinInternalSecretLen {
		return invalidf("internal.secret", "too short, want at least %d characters", MinInternalSecretLen)
	}
	return c.validateInternal()
}

// validateInternal checks the internal listener: its address, the secret it
// needs, and TLS, which it serves when a realm it serves is reached over
// https.
func (c *Config) validateInternal() error {
	in := c.Internal
	if (in.TLSCert == "") != (in.TLSKey == "") {
		if in.TLSCert == "" {
			return invalidf("internal.tlsCert", "required with internal.tlsKey")
		}
		return invalidf("internal.tlsKey", "required with internal.tlsCert")
	}
	if in.Listen == "" {
		return nil
	}
	if err := checkListen("internal.listen", in.Listen); err != nil {
		return err
	}
	if in.Secret == "" {
		return invalidf("internal.secret", "required when internal.listen is set (write it as ${VAR})")
	}
	for _, key := range c.ServedRealms() {
		if strings.HasPrefix(c.Realms[key].InternalURL, "https://") && in.TLSCert == "" {
			return invalidf("internal.tlsCert", "required: realms.%s.internalUrl is https and this process serves %s", key, key)
		}
	}
	return nil
}

// checkListen checks a listener's address: host:port, a port number (0:
// any free port).
func checkListen(path, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return invalidf(path, "want host:port, got %q", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return invalidf(path, "invalid port %q", port)
	}
	return nil
}

// validateSecrets checks each key's form, and that a served PostgreSQL realm
// (a server whose dumps and backups travel) never keeps secrets in plain text
// unless secrets.plaintext says so.
func (c *Config) validateSecrets() error {
	if _, err := c.SecretKeys(); err != nil {
		return err
	}
	if len(c.Secrets.Keys) > 0 && c.Secrets.Plaintext {
		return invalidf("secrets.plaintext", "true while secrets.keys are set; choose one")
	}
	if len(c.Secrets.Keys) > 0 || c.Secrets.Plaintext {
		return nil
	}
	for _, key := range c.ServedRealms() {
		if db := c.Realms[key].Database; strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://") {
			return invalidf("secrets.keys", "required: realm %s keeps its data in PostgreSQL and shared secrets must not be stored in plain text there (or set secrets.plaintext: true)", key)
		}
	}
	return nil
}

// SecretKeys returns secrets.keys decoded, the first the one that seals;
// none when no keys are configured. The error names the key.
func (c *Config) SecretKeys() ([][]byte, error) {
	var keys [][]byte
	seen := map[string]int{}
	for i, k := range c.Secrets.Keys {
		p := "secrets.keys[" + strconv.Itoa(i) + "]"
		b, err := secrets.ParseKey(k)
		if err != nil {
			return nil, invalidf(p, "%v", err)
		}
		if j, dup := seen[string(b)]; dup {
			return nil, invalidf(p, "same key as secrets.keys[%d]", j)
		}
		seen[string(b)] = i
		keys = append(keys, b)
	}
	return keys, nil
}

// checkRealmDatabase checks a served realm's database, and that a realm
// this process does not serve names none: in the regional shape a process
// holds no other realm's database credentials, and reaches that realm's
// process at its internalUrl instead.
func (c *Config) checkRealmDatabase(key string, r Realm) error {
	p := "realms." + key
	if c.Serves(key) {
		return checkDatabase(p+".database", r.Database)
	}
	if r.Database != "" {
		return invalidf(p+".database", "must not be set: this process does not serve %s (serve: [%s]) and holds no other realm's database credentials", key, strings.Join(c.Serve, ", "))
	}
	if r.InternalURL == "" {
		return invalidf(p+".internalUrl", "required: this process does not serve %s (serve: [%s]) and reaches the process that does at its internal API", key, strings.Join(c.Serve, ", "))
	}
	return nil
}

// Serves reports whether this process serves the realm: every configured
// realm when serve is empty.
func (c *Config) Serves(key string) bool {
	return len(c.Serve) == 0 || slices.Contains(c.Serve, key)
}

func (c *Config) validateAdmin() error {
	a := c.Admin
	if a.Listen == "" {
		if a.Token != "" {
			return invalidf("admin.listen", "required when admin.token is set (the admin API listens only there)")
		}
		return nil
	}
	if err := checkListen("admin.listen", a.Listen); err != nil {
		return err
	}
	// Port 0 (any free port) twice is two listeners; anything else equal is one.
	if _, port, _ := net.SplitHostPort(a.Listen); a.Listen == c.Listen && port != "0" {
		return invalidf("admin.listen", "must differ from listen (%s): the admin API has a listener of its own", c.Listen)
	}
	switch {
	case a.Token == "":
		return invalidf("admin.token", "required when admin.listen is set (write it as ${VAR})")
	case len(a.Token) < MinAdminTokenLen:
		return invalidf("admin.token", "too short, want at least %d characters", MinAdminTokenLen)
	}
	return positive("admin.probeInterval", a.ProbeInterval)
}

func (c *Config) validateServe() error {
	seen := make(map[string]bool, len(c.Serve))
	for i, key := range c.Serve {
		p := "serve[" + strconv.Itoa(i) + "]"
		if _, ok := c.Realms[key]; !ok {
			return invalidf(p, "realm %q is not configured under realms", key)
		}
		if seen[key] {
			return invalidf(p, "realm %q is listed twice", key)
		}
		seen[key] = true
	}
	return nil
}

func (c *Config) validateMigration() error {
	m := c.Migration
	for _, d := range []struct {
		path string
		v    time.Duration
	}{
		{"migration.purgeAfter", m.PurgeAfter},
		{"migration.leaseTTL", m.LeaseTTL},
		{"migration.sweepInterval", m.SweepInterval},
	} {
		if err := positive(d.path, d.v); err != nil {
			return err
		}
	}
	for _, n := range []struct {
		path string
		v    int
	}{
		{"migration.maxConcurrent", m.MaxConcurrent},
		{"migration.batchRows", m.BatchRows},
		{"migration.checkpointRows", m.CheckpointRows},
	} {
		if n.v < 1 {
			return invalidf(n.path, "must be at least 1, got %d", n.v)
		}
	}
	if m.CheckpointRows < m.BatchRows {
		return invalidf("migration.checkpointRows", "must be at least migration.batchRows (%d), got %d", m.BatchRows, m.CheckpointRows)
	}
	return nil
}

func (c *Config) validateTables() error {
	names := make(map[string]int, len(c.Tables))
	for i, t := range c.Tables {
		p := "tables[" + strconv.Itoa(i) + "]"
		if err := checkIdentifier(p+".name", t.Name); err != nil {
			return err
		}
		lower := strings.ToLower(t.Name)
		if strings.HasPrefix(lower, ReservedTablePrefix) {
			return invalidf(p+".name", "%q is reserved: names starting with %q are realmhook's own tables", t.Name, ReservedTablePrefix)
		}
		// Unquoted SQL identifiers ignore case, so "Notes" and "notes" are one table.
		if j, dup := names[lower]; dup {
			return invalidf(p+".name", "table %q is listed twice (also tables[%d])", t.Name, j)
		}
		names[lower] = i
		if err := checkIdentifier(p+".tenantColumn", t.TenantColumn); err != nil {
			return err
		}
		if len(t.Key) == 0 {
			return invalidf(p+".key", "required: the columns that identify a row")
		}
		cols := make(map[string]bool, len(t.Key))
		for j, col := range t.Key {
			kp := p + ".key[" + strconv.Itoa(j) + "]"
			if err := checkIdentifier(kp, col); err != nil {
				return err
			}
			if cols[strings.ToLower(col)] {
				return invalidf(kp, "column %q is listed twice", col)
			}
			cols[strings.ToLower(col)] = true
		}
	}
	return nil
}

func checkIdentifier(path, s string) error {
	if s == "" {
		return invalidf(path, "required")
	}
	if !identifierPattern.MatchString(s) {
		return invalidf(path, "%q is not a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*)", s)
	}
	return nil
}

func checkHTTPURL(path, raw string) error {
	if raw == "" {
		return invalidf(path, "required")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalidf(path, "must be an absolute http(s) URL, got %q", raw)
	}
	if u.User != nil {
		return invalidf(path, "must not carry user info")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#") {
		return invalidf(path, "must not have a query or fragment, got %q", raw)
	}
	return nil
}

// checkDatabase never echoes the value: a PostgreSQL URL may hold a password.
func checkDatabase(path, raw string) error {
	if rest, ok := strings.CutPrefix(raw, "sqlite:"); ok {
		if rest == "" {
			return invalidf(path, "sqlite: needs a file path (sqlite:PATH)")
		}
		return nil
	}
	if strings.HasPrefix(raw, "postgres://") || strings.HasPrefix(raw, "postgresql://") {
		if _, err := url.Parse(raw); err != nil {
			return invalidf(path, "invalid PostgreSQL URL")
		}
		return nil
	}
	return invalidf(path, "want sqlite:PATH or a postgres:// URL")
}

func positive(path string, d time.Duration) error {
	if d <= 0 {
		return invalidf(path, "must be positive, got %s", d)
	}
	return nil
}

// realmOrder lists realm keys global first, then sorted, so validation and
// ServedRealms are deterministic.
func realmOrder[V any](realms map[string]V) []string {
	keys := make([]string, 0, len(realms))
	for k := range realms {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		gi, gj := keys[i] == realmhook.GlobalRealm, keys[j] == realmhook.GlobalRealm
		if gi != gj {
			return gi
		}
		return keys[i] < keys[j]
	})
	return keys
}

// RealmKeys is every configured realm key, global first, then sorted.
func (c *Config) RealmKeys() []string { return realmOrder(c.Realms) }

// ServedRealms is the realm keys this process serves: those under serve, or
// every configured realm when serve is empty; global first, then sorted.
func (c *Config) ServedRealms() []string {
	if len(c.Serve) == 0 {
		return realmOrder(c.Realms)
	}
	set := make(map[string]struct{}, len(c.Serve))
	for _, k := range c.Serve {
		set[k] = struct{}{}
	}
	return realmOrder(set)
}

// MigrationEnabled reports whether data residency migrations are accepted;
// they are unless migration.enabled is false.
func (c *Config) MigrationEnabled() bool {
	return c.Migration.Enabled == nil || *c.Migration.Enabled
}

// forgeRemoteKey is the manifest reference's rule for a remote's key.
var forgeRemoteKey = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,23}$`)

// validateForge checks the forge section; every key but appId has a
// default, so any forge key written without an appId is a mistake.
func (c *Config) validateForge() error {
	f := c.Forge
	if !f.Enabled() {
		for _, set := range []struct {
			key string
			set bool
		}{
			{"forge.jwksUrl", f.JWKSURL != ""}, {"forge.migrationPath", f.MigrationPath != ""}, {"forge.eventsPath", f.EventsPath != ""},
			{"forge.maxMigrationDurationHours", f.MaxMigrationDurationHours != 0}, {"forge.remote", f.Remote != ""}, {"forge.connect", f.Connect},
		} {
			if set.set {
				return invalidf("forge.appId", "required to turn Forge on (%s is set)", set.key)
			}
		}
		return nil
	}
	if _, err := forgefit.AppARI(f.AppID); err != nil {
		return invalidf("forge.appId", "want the app's UUID or ARI (%s<uuid>), got %q", forgefit.AppARIPrefix, f.AppID)
	}
	if err := checkHTTPURL("forge.jwksUrl", f.JWKSURL); err != nil {
		return err
	}
	for _, p := range []struct{ key, v string }{{"forge.migrationPath", f.MigrationPath}, {"forge.eventsPath", f.EventsPath}} {
		if err := checkRoutePath(p.key, p.v); err != nil {
			return err
		}
	}
	if f.MigrationPath == f.EventsPath || strings.HasPrefix(f.EventsPath, f.MigrationPath+"/") {
		return invalidf("forge.eventsPath", "%q lies on forge.migrationPath %q", f.EventsPath, f.MigrationPath)
	}
	if err := realmhook.CheckMigrationHours(f.MaxMigrationDurationHours); err != nil {
		return invalidf("forge.maxMigrationDurationHours", "%s", realmhook.ErrorMessage(err))
	}
	if !forgeRemoteKey.MatchString(f.Remote) {
		return invalidf("forge.remote", "want 1 to 23 of a-z A-Z 0-9 _ -, got %q", f.Remote)
	}
	return nil
}

// routePath is a path realmhook registers routes under: segments of
// unreserved characters, no trailing slash.
var routePath = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+$`)

func checkRoutePath(key, p string) error {
	if !routePath.MatchString(p) {
		return invalidf(key, "want an absolute path such as /migration (segments of letters, digits, . _ ~ -, no trailing /), got %q", p)
	}
	return nil
}
