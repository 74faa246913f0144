package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/migration"
)

// env is a fake environment for parse.
type env map[string]string

func (e env) lookup(name string) (string, bool) {
	v, ok := e[name]
	return v, ok
}

const minimalYAML = `
realms:
  global:
    baseUrl: https://app.example.com
`

func mustParse(t *testing.T, src string, e env) *Config {
	t.Helper()
	cfg, err := parse([]byte(src), e.lookup)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return cfg
}

// mustFailWith asserts err is one line, EINVALID, and carries want.
func mustFailWith(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %q", want)
	}
	if code := realmhook.ErrorCode(err); code != realmhook.EINVALID {
		t.Errorf("code = %q, want %q (err: %v)", code, realmhook.EINVALID, err)
	}
	msg := realmhook.ErrorMessage(err)
	if strings.Contains(msg, "\n") {
		t.Errorf("message is more than one line: %q", msg)
	}
	if !strings.HasPrefix(msg, "config: ") {
		t.Errorf("message %q does not start with \"config: \"", msg)
	}
	if !strings.Contains(msg, want) {
		t.Errorf("message = %q, want it to contain %q", msg, want)
	}
}

func TestLoad_AppliesDefaults(t *testing.T) {
	cfg := mustParse(t, minimalYAML, nil)
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", cfg.Listen, DefaultListen},
		{"dataDir", cfg.DataDir, DefaultDataDir},
		{"installKeys.url", cfg.InstallKeys.URL, DefaultInstallKeysURL},
		{"installKeys.timeout", cfg.InstallKeys.Timeout, DefaultInstallTimeout},
		{"installKeys.maxBytes", cfg.InstallKeys.MaxBytes, int64(DefaultInstallMaxBytes)},
		{"jwt.leeway", cfg.JWT.Leeway, DefaultJWTLeeway},
		{"http.readHeaderTimeout", cfg.HTTP.ReadHeaderTimeout, DefaultReadHeaderTimeout},
		{"http.writeTimeout", cfg.HTTP.WriteTimeout, DefaultWriteTimeout},
		{"http.maxHeaderBytes", cfg.HTTP.MaxHeaderBytes, DefaultMaxHeaderBytes},
		{"migration.enabled", cfg.MigrationEnabled(), true},
		{"migration.maxConcurrent", cfg.Migration.MaxConcurrent, DefaultMaxConcurrent},
		{"migration.batchRows", cfg.Migration.BatchRows, migration.DefaultBatchRows},
		{"migration.checkpointRows", cfg.Migration.CheckpointRows, migration.DefaultCheckpointRows},
		{"migration.purgeAfter", cfg.Migration.PurgeAfter, migration.DefaultPurgeAfter},
		{"migration.leaseTTL", cfg.Migration.LeaseTTL, migration.DefaultLeaseTTL},
		{"migration.sweepInterval", cfg.Migration.SweepInterval, migration.DefaultSweepInterval},
		{"log.level", cfg.Log.Level, DefaultLogLevel},
		{"log.format", cfg.Log.Format, DefaultLogFormat},
		{"realms.global.database", cfg.Realms["global"].Database, "sqlite:" + DefaultDataDir + "/global.db"},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
			}
		})
	}
}

// TestLoad_MigrationDefaultsAreTheEngines: the binary (config) and a Go
// caller of migration.New get one set of defaults, the ones the README shows.
func TestLoad_MigrationDefaultsAreTheEngines(t *testing.T) {
	m := mustParse(t, minimalYAML, nil).Migration
	got := [...]any{m.BatchRows, m.CheckpointRows, m.PurgeAfter, m.LeaseTTL, m.SweepInterval}
	engine := [...]any{migration.DefaultBatchRows, migration.DefaultCheckpointRows, migration.DefaultPurgeAfter,
		migration.DefaultLeaseTTL, migration.DefaultSweepInterval}
	if got != engine {
		t.Errorf("config defaults %v, migration.New's %v", got, engine)
	}
	readme := [...]any{5000, 50000, 168 * time.Hour, 30 * time.Second, time.Minute}
	if got != readme {
		t.Errorf("config defaults %v, README's table %v", got, readme)
	}
}

func TestLoad_ReadsValues(t *testing.T) {
	src := `
listen: 0.0.0.0:9000
dataDir: /var/lib/realmhook/
app: {key: com.acme.app, name: Acme, descriptor: ./desc.json}
installKeys: {url: "http://127.0.0.1:9999/keys", timeout: 2s, maxBytes: 1024}
jwt:
  leeway: 10s
http: {readHeaderTimeout: 3s, readTimeout: 4s, writeTimeout: 5s, idleTimeout: 6s, maxHeaderBytes: 8192}
serve: [EU]
internal: {secret: "0123456789abcdef"}
realms:
  global: {baseUrl: "https://app.example.com", internalUrl: "http://global.internal:7000"}
  EU:
    baseUrl: https://eu.app.example.com
    database: postgres://rh:pw@db.eu/realmhook
    maxConns: 7
    connectTimeout: 90s
migration:
  enabled: false
  maxConcurrent: 3
  batchRows: 50
  checkpointRows: 50
  purgeAfter: 24h
  leaseTTL: 1m
  sweepInterval: 10s
tables:
  - {name: notes, tenantColumn: client_key, key: [id], allowTriggers: true}
log: {level: debug, format: text}
secrets: {keys: ["MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="]}
admin: {listen: "127.0.0.1:9443", token: 0123456789abcdef0123, probeInterval: 5s}
`
	cfg := mustParse(t, src, nil)
	want := &Config{
		Listen:      "0.0.0.0:9000",
		DataDir:     "/var/lib/realmhook/",
		App:         App{Descriptor: "./desc.json", Key: "com.acme.app", Name: "Acme"},
		InstallKeys: InstallKeys{URL: "http://127.0.0.1:9999/keys", Timeout: 2 * time.Second, MaxBytes: 1024},
		JWT:         JWT{Leeway: 10 * time.Second},
		HTTP:        HTTP{ReadHeaderTimeout: 3 * time.Second, ReadTimeout: 4 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: 6 * time.Second, MaxHeaderBytes: 8192},
		Serve:       []string{"EU"},
		Realms: map[string]Realm{
			"global": {BaseURL: "https://app.example.com", InternalURL: "http://global.internal:7000"},
			"EU":     {BaseURL: "https://eu.app.example.com", Database: "postgres://rh:pw@db.eu/realmhook", MaxConns: 7, ConnectTimeout: 90 * time.Second},
		},
		Migration: Migration{Enabled: new(bool), MaxConcurrent: 3, BatchRows: 50, CheckpointRows: 50,
			PurgeAfter: 24 * time.Hour, LeaseTTL: time.Minute, SweepInterval: 10 * time.Second},
		Tables:   []Table{{Name: "notes", TenantColumn: "client_key", Key: []string{"id"}, AllowTriggers: true}},
		Log:      Log{Level: "debug", Format: "text"},
		Secrets:  Secrets{Keys: []string{"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}},
		Internal: Internal{Secret: "0123456789abcdef"},
		Admin:    Admin{Listen: "127.0.0.1:9443", Token: "0123456789abcdef0123", ProbeInterval: 5 * time.Second},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
	if cfg.MigrationEnabled() {
		t.Error("MigrationEnabled() = true, want false")
	}
}

func TestLoad_EnvExpansion(t *testing.T) {
	src := `
internal:
  secret: "${RH_SECRET}"
realms:
  global:
    baseUrl: ${RH_BASE:-https://app.example.com}
  EU:
    baseUrl: https://eu.app.example.com
    database: ${RH_EU_DB}
    internalUrl: http://eu.internal:7000
serve: ${RH_SERVE}
migration:
  maxConcurrent: ${RH_MAX}
secrets: {plaintext: true}
# database: ${UNSET_IN_A_COMMENT}
`
	secret := `s3cr"et\with#hash: and 'quotes'`
	e := env{
		"RH_SECRET": secret,
		"RH_EU_DB":  "postgres://rh:p%40ss@db.eu:5432/rh?sslmode=require",
		"RH_SERVE":  "[EU, global]",
		"RH_MAX":    "4",
	}
	cfg := mustParse(t, src, e)
	checks := []struct {
		name      string
		got, want any
	}{
		{"secret survives quoting", cfg.Internal.Secret, secret},
		{"default used when unset", cfg.Realms["global"].BaseURL, "https://app.example.com"},
		{"database from env", cfg.Realms["EU"].Database, e["RH_EU_DB"]},
		{"flow list from env", cfg.Serve, []string{"EU", "global"}},
		{"integer from env", cfg.Migration.MaxConcurrent, 4},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("got %#v, want %#v", c.got, c.want)
			}
		})
	}

	t.Run("EmptyValueTakesDefault", func(t *testing.T) {
		e2 := env{"RH_SECRET": secret, "RH_BASE": "", "RH_EU_DB": "sqlite:x.db", "RH_SERVE": "[]", "RH_MAX": "1"}
		if got := mustParse(t, src, e2).Realms["global"].BaseURL; got != "https://app.example.com" {
			t.Errorf("baseUrl = %q, want the default", got)
		}
	})
	t.Run("SetValueBeatsDefault", func(t *testing.T) {
		e2 := env{"RH_SECRET": secret, "RH_BASE": "https://other.example.com", "RH_EU_DB": "sqlite:x.db", "RH_SERVE": "[]", "RH_MAX": "1"}
		if got := mustParse(t, src, e2).Realms["global"].BaseURL; got != "https://other.example.com" {
			t.Errorf("baseUrl = %q, want the environment's", got)
		}
	})
}

func TestLoad_FromFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "realmhook.yaml")
	src := minimalYAML + "internal:\n  secret: ${REALMHOOK_TEST_SECRET}\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REALMHOOK_TEST_SECRET", "0123456789abcdef0123")
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Internal.Secret != "0123456789abcdef0123" {
		t.Errorf("secret = %q, want it from the environment", cfg.Internal.Secret)
	}

	t.Run("MissingFile", func(t *testing.T) {
		_, err := Load(filepath.Join(dir, "nope.yaml"))
		if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
			t.Errorf("err = %v, want one naming the file", err)
		}
	})
}

func TestLoad_Errors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		env  env
		want string
	}{
		{"UnknownTopLevelKey", minimalYAML + "lisen: :80\n", nil, "config: lisen: unknown key"},
		{"UnknownRealmKey", minimalYAML + "  EU:\n    baseUrl: https://eu.example.com\n    databse: sqlite:x\n", nil,
			"config: realms.EU.databse: unknown key"},
		{"UnknownNestedKey", minimalYAML + "migration:\n  batchrows: 5\n", nil, "config: migration.batchrows: unknown key"},
		{"UnknownTableKey", minimalYAML + "tables:\n  - {name: a, tenantColumn: b, key: [c], keys: [d]}\n", nil,
			"config: tables[0].keys: unknown key"},
		{"BadDuration", minimalYAML + "jwt:\n  leeway: banana\n", nil, `config: jwt.leeway: invalid duration "banana"`},
		{"DurationWithoutUnit", minimalYAML + "jwt:\n  leeway: 30\n", nil, `config: jwt.leeway: invalid duration "30"`},
		{"BadInteger", minimalYAML + "migration:\n  batchRows: lots\n", nil, `config: migration.batchRows: want an integer, got "lots"`},
		{"BadBool", minimalYAML + "migration:\n  enabled: maybe\n", nil, `config: migration.enabled: want true or false`},
		{"ListWhereStringWanted", minimalYAML + "listen: [a, b]\n", nil, "config: listen: want a string, got a list"},
		{"StringWhereListWanted", minimalYAML + "serve: EU\n", nil, `config: serve: want a list, got "EU"`},
		{"NotAMapping", "- a\n- b\n", nil, "config: want a mapping of keys, got a list"},
		{"SyntaxError", "realms: [\n", nil, "config: yaml:"},
		{"UnsetVariable", minimalYAML + "  EU:\n    baseUrl: https://eu.example.com\n    database: ${PG_EU_URL}\n", nil,
			"config: realms.EU.database: environment variable PG_EU_URL is not set (write ${PG_EU_URL:-default} for a default) (line 7)"},
		{"UnsetVariableInFlowList", minimalYAML + "serve: [${REALM}]\n", nil, "config: serve: environment variable REALM is not set"},
		// The README's PostgreSQL shape: several keys on one line, so the
		// line alone does not say which value holds the reference.
		{"UnsetVariableInFlowMap", "realms:\n  global: { baseUrl: https://app.example.com,    database: \"${GLOBAL_DATABASE_URL}\" }\n", nil,
			"config: realms.global.database: environment variable GLOBAL_DATABASE_URL is not set"},
		{"UnsetVariableInFlowMapUnquoted", "realms:\n  global: {baseUrl: https://app.example.com, database: ${DB}, maxConns: 3}\n", nil,
			"config: realms.global.database: environment variable DB is not set"},
		{"UnsetVariableInFlowMapFirst", "realms:\n  global: {baseUrl: '${BASE}', database: 'sqlite:x'}\n", nil,
			"config: realms.global.baseUrl: environment variable BASE is not set"},
		{"BadVariableName", minimalYAML + "listen: ${1X}\n", nil, "config: listen: invalid variable reference ${1X}"},
		{"UnterminatedReference", minimalYAML + "listen: ${X\n", nil, "config: listen: unterminated ${"},
		{"TwoDocuments", minimalYAML + "---\nlisten: :80\n", nil, "config: one YAML document expected"},
		{"ValidateRunsInLoad", "realms:\n  EU:\n    baseUrl: https://eu.example.com\n", nil, "config: realms.global: required"},
		{"EmptyFile", "", nil, "config: realms.global: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse([]byte(tt.src), tt.env.lookup)
			mustFailWith(t, err, tt.want)
		})
	}
}

func TestLoad_ErrorsDoNotEchoLongValues(t *testing.T) {
	secret := "a-very-long-secret-value-that-must-not-be-echoed"
	_, err := parse([]byte(minimalYAML+"migration:\n  batchRows: ${S}\n"), env{"S": secret}.lookup)
	mustFailWith(t, err, "config: migration.batchRows: want an integer")
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error %q echoes the value", err)
	}
}

func TestDefault(t *testing.T) {
	cfg := Default()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	want := map[string]Realm{
		"global": {BaseURL: "http://localhost:8080", Database: "sqlite:./data/global.db"},
		"US":     {BaseURL: "http://localhost:8080/realms/us", Database: "sqlite:./data/us.db"},
		"EU":     {BaseURL: "http://localhost:8080/realms/eu", Database: "sqlite:./data/eu.db"},
	}
	if !reflect.DeepEqual(cfg.Realms, want) {
		t.Errorf("realms = %+v, want %+v", cfg.Realms, want)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.DataDir != "./data" {
		t.Errorf("listen, dataDir = %q, %q", cfg.Listen, cfg.DataDir)
	}
	if cfg.InstallKeys.URL != "https://connect-install-keys.atlassian.com" {
		t.Errorf("installKeys.url = %q", cfg.InstallKeys.URL)
	}
	if got, want := cfg.ServedRealms(), []string{"global", "EU", "US"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ServedRealms() = %v, want %v", got, want)
	}
	// Each call is a fresh value: a caller changing one must not change the next.
	cfg.Realms["EU"] = Realm{}
	if Default().Realms["EU"].BaseURL == "" {
		t.Error("Default() shares state between calls")
	}
}

func TestServedRealms(t *testing.T) {
	cfg := Default()
	cfg.Realms["AU"] = Realm{BaseURL: "https://au.example.com", Database: "sqlite:au.db"}
	tests := []struct {
		name  string
		serve []string
		want  []string
	}{
		{"AllWhenEmpty", nil, []string{"global", "AU", "EU", "US"}},
		{"GlobalFirstThenSorted", []string{"US", "global", "AU"}, []string{"global", "AU", "US"}},
		{"OneRegion", []string{"EU"}, []string{"EU"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg.Serve = tt.serve
			if got := cfg.ServedRealms(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ServedRealms() = %v, want %v", got, tt.want)
			}
		})
	}
}

// testKey is base64 of 32 bytes.
const testKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   string // "" means valid
	}{
		{"DefaultIsValid", func(c *Config) {}, ""},
		{"GlobalRequired", func(c *Config) { delete(c.Realms, "global") }, "config: realms.global: required"},
		{"LowerCaseRealmKey", func(c *Config) { c.Realms["eu"] = realm("https://x.example.com") }, "config: realms.eu: realm key must be"},
		{"OneLetterRealmKey", func(c *Config) { c.Realms["E"] = realm("https://x.example.com") }, "config: realms.E: realm key must be"},
		{"NineLetterRealmKey", func(c *Config) { c.Realms["ABCDEFGHI"] = realm("https://x.example.com") }, "config: realms.ABCDEFGHI: realm key must be"},
		{"AnyUpperCaseRealmKey", func(c *Config) {
			c.Realms["GB"] = realm("https://gb.example.com")
			c.Realms["UK"] = realm("https://uk.example.com")
		}, ""},
		{"BaseURLRequired", func(c *Config) { c.Realms["EU"] = realm("") }, "config: realms.EU.baseUrl: required"},
		{"BaseURLRelative", func(c *Config) { c.Realms["EU"] = realm("/realms/eu") }, "config: realms.EU.baseUrl: must be an absolute http(s) URL"},
		{"BaseURLNotHTTP", func(c *Config) { c.Realms["EU"] = realm("ftp://eu.example.com") }, "config: realms.EU.baseUrl: must be an absolute http(s) URL"},
		{"BaseURLQuery", func(c *Config) { c.Realms["EU"] = realm("https://eu.example.com/?a=1") }, "config: realms.EU.baseUrl: must not have a query or fragment"},
		{"BaseURLFragment", func(c *Config) { c.Realms["EU"] = realm("https://eu.example.com/#x") }, "config: realms.EU.baseUrl: must not have a query or fragment"},
		{"BaseURLUserInfo", func(c *Config) { c.Realms["EU"] = realm("https://u:p@eu.example.com") }, "config: realms.EU.baseUrl: must not carry user info"},
		{"DuplicateBaseURL", func(c *Config) { c.Realms["EU"] = realm("http://localhost:8080/realms/us/") }, "config: realms.US.baseUrl: same URL as realms.EU.baseUrl"},
		{"DuplicateOfGlobal", func(c *Config) { c.Realms["EU"] = realm("http://LOCALHOST:8080/") }, "config: realms.EU.baseUrl: same URL as realms.global.baseUrl"},
		{"OverlappingBaseURL", func(c *Config) { c.Realms["AU"] = realm("http://localhost:8080/realms/eu/au") }, "config: realms.EU.baseUrl: overlaps realms.AU.baseUrl"},
		{"NestedUnderRootAllowed", func(c *Config) { c.Realms["AU"] = realm("http://localhost:8080/au") }, ""},
		{"SharedPrefixNotSegment", func(c *Config) { c.Realms["EUX"] = realm("http://localhost:8080/realms/eux") }, ""},
		{"SamePathOtherHost", func(c *Config) { c.Realms["AU"] = realm("http://127.0.0.1:8080/realms/eu") }, ""},
		{"DatabaseUnknownScheme", func(c *Config) { setDB(c, "EU", "mysql://db/x") }, "config: realms.EU.database: want sqlite:PATH or a postgres:// URL"},
		{"DatabaseEmptySQLitePath", func(c *Config) { setDB(c, "EU", "sqlite:") }, "config: realms.EU.database: sqlite: needs a file path"},
		{"DatabasePostgres", func(c *Config) { setDB(c, "EU", "postgres://u:p@h/db"); c.Secrets.Plaintext = true }, ""},
		{"DatabasePostgresql", func(c *Config) { setDB(c, "EU", "postgresql://u:p@h/db"); c.Secrets.Keys = []string{testKey} }, ""},
		{"PostgresNeedsSecretKeys", func(c *Config) { setDB(c, "EU", "postgres://u:p@h/db") }, "config: secrets.keys: required: realm EU keeps its data in PostgreSQL"},
		{"PostgresNotServedNeedsNoKeys", func(c *Config) { regional(c, "US"); setDB(c, "US", "sqlite:us.db") }, ""},
		{"RegionalIsValid", func(c *Config) { regional(c, "EU") }, ""},
		{"NotServedHoldsNoDatabase", func(c *Config) { regional(c, "EU"); setDB(c, "US", "postgres://u:p@h/db") },
			"config: realms.US.database: must not be set: this process does not serve US (serve: [EU])"},
		{"NotServedNeedsInternalURL", func(c *Config) {
			regional(c, "EU")
			r := c.Realms["global"]
			r.InternalURL = ""
			c.Realms["global"] = r
		}, "config: realms.global.internalUrl: required: this process does not serve global (serve: [EU])"},
		{"ServedNeedsDatabase", func(c *Config) { regional(c, "EU"); setDB(c, "EU", "") }, "config: realms.EU.database: want sqlite:PATH or a postgres:// URL"},
		{"SecretKeyEmpty", func(c *Config) { c.Secrets.Keys = []string{testKey, ""} }, "config: secrets.keys[1]: is empty"},
		{"SecretKeyNotBase64", func(c *Config) { c.Secrets.Keys = []string{"not base64!"} }, "config: secrets.keys[0]: is not base64"},
		{"SecretKeyShort", func(c *Config) { c.Secrets.Keys = []string{"c2hvcnQ="} }, "config: secrets.keys[0]: is base64 of 5 bytes; want 32"},
		{"SecretKeyTwice", func(c *Config) { c.Secrets.Keys = []string{testKey, testKey} }, "config: secrets.keys[1]: same key as secrets.keys[0]"},
		{"SecretKeyUnpadded", func(c *Config) { c.Secrets.Keys = []string{strings.TrimRight(testKey, "=")} }, ""},
		{"PlaintextAndKeys", func(c *Config) { c.Secrets.Keys = []string{testKey}; c.Secrets.Plaintext = true }, "config: secrets.plaintext: true while secrets.keys are set"},
		{"DatabaseBadPostgresURL", func(c *Config) { setDB(c, "EU", "postgres://u:p@h:port/db") }, "config: realms.EU.database: invalid PostgreSQL URL"},
		{"MaxConnsNegative", func(c *Config) { r := c.Realms["EU"]; r.MaxConns = -1; c.Realms["EU"] = r }, "config: realms.EU.maxConns: must not be negative"},
		{"ConnectTimeoutNegative", func(c *Config) { r := c.Realms["EU"]; r.ConnectTimeout = -time.Second; c.Realms["EU"] = r }, "config: realms.EU.connectTimeout: must not be negative"},
		{"InternalURLBad", func(c *Config) { r := c.Realms["EU"]; r.InternalURL = "eu:7000"; c.Realms["EU"] = r }, "config: realms.EU.internalUrl: must be an absolute http(s) URL"},
		{"InternalURLNeedsSecret", func(c *Config) { r := c.Realms["EU"]; r.InternalURL = "http://eu:7000"; c.Realms["EU"] = r }, "config: internal.secret: required when realms.EU.internalUrl is set"},
		{"InternalSecretShort", func(c *Config) { c.Internal.Secret = "short" }, "config: internal.secret: too short"},
		{"InternalListenBad", func(c *Config) { c.Internal.Secret = strings.Repeat("s", 16); c.Internal.Listen = "7000" }, "config: internal.listen: want host:port"},
		{"InternalListenNeedsSecret", func(c *Config) { c.Internal.Listen = "127.0.0.1:7000" }, "config: internal.secret: required when internal.listen is set"},
		{"InternalListenOK", func(c *Config) { c.Internal.Secret = strings.Repeat("s", 16); c.Internal.Listen = "127.0.0.1:0" }, ""},
		{"InternalHTTPSNeedsCert", func(c *Config) {
			regional(c, "EU")
			c.Internal.Listen = "127.0.0.1:7000"
			r := c.Realms["EU"]
			r.InternalURL = "https://eu:7000"
			c.Realms["EU"] = r
		}, "config: internal.tlsCert: required: realms.EU.internalUrl is https and this process serves EU"},
		{"InternalTLSKeyAlone", func(c *Config) { c.Internal.TLSKey = "k.pem" }, "config: internal.tlsCert: required with internal.tlsKey"},
		{"InternalTLSCertAlone", func(c *Config) { c.Internal.TLSCert = "c.pem" }, "config: internal.tlsKey: required with internal.tlsCert"},
		{"ServeUnknownRealm", func(c *Config) { c.Serve = []string{"EU", "AU"} }, `config: serve[1]: realm "AU" is not configured`},
		{"ServeDuplicate", func(c *Config) { c.Serve = []string{"EU", "US", "EU"} }, `config: serve[2]: realm "EU" is listed twice`},
		{"ListenBad", func(c *Config) { c.Listen = "8080" }, "config: listen: want host:port"},
		{"AdminOK", func(c *Config) { c.Admin.Listen = "127.0.0.1:0"; c.Admin.Token = "0123456789abcdef" }, ""},
		{"AdminNeedsToken", func(c *Config) { c.Admin.Listen = "127.0.0.1:9090" }, "config: admin.token: required when admin.listen is set (write it as ${VAR})"},
		{"AdminTokenShort", func(c *Config) { c.Admin.Listen = "127.0.0.1:9090"; c.Admin.Token = "short" }, "config: admin.token: too short"},
		{"AdminTokenWithoutListen", func(c *Config) { c.Admin.Token = "0123456789abcdef" }, "config: admin.listen: required when admin.token is set"},
		{"AdminListenBad", func(c *Config) { c.Admin.Listen = "9090"; c.Admin.Token = "0123456789abcdef" }, "config: admin.listen: want host:port"},
		{"AdminListenIsListen", func(c *Config) {
			c.Listen = "127.0.0.1:8080"
			c.Admin.Listen = c.Listen
			c.Admin.Token = "0123456789abcdef"
		}, "config: admin.listen: must differ from listen"},
		{"AdminProbeIntervalNegative", func(c *Config) {
			c.Admin.Listen = "127.0.0.1:0"
			c.Admin.Token = "0123456789abcdef"
			c.Admin.ProbeInterval = -time.Second
		}, "config: admin.probeInterval: must be positive"},
		{"ListenBadPort", func(c *Config) { c.Listen = ":http2" }, "config: listen: invalid port"},
		{"DataDirEmpty", func(c *Config) { c.DataDir = "" }, "config: dataDir: required"},
		{"InstallKeysURLBad", func(c *Config) { c.InstallKeys.URL = "keys.example.com" }, "config: installKeys.url: must be an absolute http(s) URL"},
		{"InstallKeysTimeoutNegative", func(c *Config) { c.InstallKeys.Timeout = -time.Second }, "config: installKeys.timeout: must be positive"},
		{"InstallKeysMaxBytes", func(c *Config) { c.InstallKeys.MaxBytes = -1 }, "config: installKeys.maxBytes: must be at least 1"},
		{"LeewayNegative", func(c *Config) { c.JWT.Leeway = -time.Second }, "config: jwt.leeway: must be positive"},
		{"ReadTimeoutNegative", func(c *Config) { c.HTTP.ReadTimeout = -time.Second }, "config: http.readTimeout: must be positive"},
		{"MaxHeaderBytesTiny", func(c *Config) { c.HTTP.MaxHeaderBytes = 100 }, "config: http.maxHeaderBytes: must be at least 4096, got 100"},
		{"PurgeAfterZero", func(c *Config) { c.Migration.PurgeAfter = 0 }, "config: migration.purgeAfter: must be positive"},
		{"LeaseTTLNegative", func(c *Config) { c.Migration.LeaseTTL = -1 }, "config: migration.leaseTTL: must be positive"},
		{"SweepIntervalZero", func(c *Config) { c.Migration.SweepInterval = 0 }, "config: migration.sweepInterval: must be positive"},
		{"MaxConcurrentZero", func(c *Config) { c.Migration.MaxConcurrent = 0 }, "config: migration.maxConcurrent: must be at least 1"},
		{"BatchRowsNegative", func(c *Config) { c.Migration.BatchRows = -5 }, "config: migration.batchRows: must be at least 1"},
		{"CheckpointRowsZero", func(c *Config) { c.Migration.CheckpointRows = 0 }, "config: migration.checkpointRows: must be at least 1"},
		{"CheckpointBelowBatch", func(c *Config) { c.Migration.BatchRows = 100; c.Migration.CheckpointRows = 99 }, "config: migration.checkpointRows: must be at least migration.batchRows (100)"},
		{"TableOK", func(c *Config) { c.Tables = []Table{table("notes", "client_key", "id")} }, ""},
		{"TableNameRequired", func(c *Config) { c.Tables = []Table{table("", "client_key", "id")} }, "config: tables[0].name: required"},
		{"TableNameNotIdentifier", func(c *Config) { c.Tables = []Table{table("notes; drop", "client_key", "id")} }, "config: tables[0].name: \"notes; drop\" is not a plain SQL identifier"},
		{"TableNameDigitFirst", func(c *Config) { c.Tables = []Table{table("1notes", "client_key", "id")} }, "config: tables[0].name: \"1notes\" is not a plain SQL identifier"},
		{"TableReserved", func(c *Config) { c.Tables = []Table{table("Realmhook_tenants", "client_key", "id")} }, "config: tables[0].name: \"Realmhook_tenants\" is reserved"},
		{"TableDuplicate", func(c *Config) {
			c.Tables = []Table{table("notes", "ck", "id"), table("other", "ck", "id"), table("Notes", "ck", "id")}
		}, "config: tables[2].name: table \"Notes\" is listed twice (also tables[0])"},
		{"TenantColumnRequired", func(c *Config) { c.Tables = []Table{table("notes", "", "id")} }, "config: tables[0].tenantColumn: required"},
		{"TenantColumnNotIdentifier", func(c *Config) { c.Tables = []Table{table("notes", "client-key", "id")} }, "config: tables[0].tenantColumn: \"client-key\" is not a plain SQL identifier"},
		{"KeyRequired", func(c *Config) { c.Tables = []Table{table("notes", "ck")} }, "config: tables[0].key: required"},
		{"KeyColumnEmpty", func(c *Config) { c.Tables = []Table{table("notes", "ck", "id", "")} }, "config: tables[0].key[1]: required"},
		{"KeyColumnNotIdentifier", func(c *Config) { c.Tables = []Table{table("notes", "ck", "a.b")} }, "config: tables[0].key[0]: \"a.b\" is not a plain SQL identifier"},
		{"KeyColumnTwice", func(c *Config) { c.Tables = []Table{table("notes", "ck", "id", "ID")} }, "config: tables[0].key[1]: column \"ID\" is listed twice"},
		{"LogLevel", func(c *Config) { c.Log.Level = "verbose" }, "config: log.level: want debug, info, warn or error"},
		{"LogFormat", func(c *Config) { c.Log.Format = "xml" }, "config: log.format: want json or text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Default()
			tt.mutate(cfg)
			err := cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			mustFailWith(t, err, tt.want)
		})
	}
}

func TestValidate_DatabaseErrorHidesPassword(t *testing.T) {
	cfg := Default()
	setDB(cfg, "EU", "postgres://u:hunter2@h:port/db")
	err := cfg.Validate()
	mustFailWith(t, err, "config: realms.EU.database:")
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %q echoes the password", err)
	}
}

func TestExpandEnv(t *testing.T) {
	e := env{"A": "alpha", "Q": `x"y'z\`, "EMPTY": ""}
	tests := []struct {
		name, src, want string
	}{
		{"Plain", "k: ${A}\n", "k: alpha\n"},
		{"Embedded", "k: pre-${A}-post\n", "k: pre-alpha-post\n"},
		{"DefaultUnset", "k: ${NOPE:-dflt}\n", "k: dflt\n"},
		{"DefaultEmpty", "k: ${EMPTY:-dflt}\n", "k: dflt\n"},
		{"EmptyNoDefault", "k: '${EMPTY}'\n", "k: ''\n"},
		{"EscapedDollar", "k: $${A}\n", "k: ${A}\n"},
		{"BareDollarKept", "k: $A and $\n", "k: $A and $\n"},
		{"DoubleQuoted", `k: "${Q}"` + "\n", `k: "x\"y'z\\"` + "\n"},
		{"SingleQuoted", "k: '${Q}'\n", `k: 'x"y''z\'` + "\n"},
		{"ApostropheInPlainScalar", "k: it's ${Q}\n", "k: it's " + `x"y'z\` + "\n"},
		{"CommentLeftAlone", "k: v # ${NOPE}\n# ${NOPE}\n", "k: v # ${NOPE}\n# ${NOPE}\n"},
		{"HashInsideQuotes", `k: "a #${A}"` + "\n", `k: "a #alpha"` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := expandEnv([]byte(tt.src), e.lookup)
			if err != nil {
				t.Fatalf("expandEnv: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func realm(baseURL string) Realm { return Realm{BaseURL: baseURL, Database: "sqlite:x.db"} }

func table(name, tenantColumn string, key ...string) Table {
	return Table{Name: name, TenantColumn: tenantColumn, Key: key}
}

func setDB(c *Config, key, db string) {
	r := c.Realms[key]
	r.Database = db
	c.Realms[key] = r
}

func TestValidate_Forge(t *testing.T) {
	const app = "406d303d-0393-4ec4-ad7c-1435be94583a"
	on := func(c *Config) { c.Forge.AppID = app }
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   string
	}{
		{"OffByDefault", func(c *Config) {}, ""},
		{"UUID", on, ""},
		{"ARI", func(c *Config) { c.Forge.AppID = "ari:cloud:ecosystem::app/" + app }, ""},
		{"AppIDNotUUID", func(c *Config) { c.Forge.AppID = "my-app" }, "config: forge.appId: want the app's UUID or ARI"},
		{"ConnectWithoutAppID", func(c *Config) { c.Forge.Connect = true }, "config: forge.appId: required to turn Forge on"},
		{"JWKSURLBad", func(c *Config) { on(c); c.Forge.JWKSURL = "jwks.example.com" }, "config: forge.jwksUrl: must be an absolute http(s) URL"},
		{"MigrationPathRelative", func(c *Config) { on(c); c.Forge.MigrationPath = "migration" }, "config: forge.migrationPath: want an absolute path"},
		{"EventsPathTrailingSlash", func(c *Config) { on(c); c.Forge.EventsPath = "/forge/" }, "config: forge.eventsPath: want an absolute path"},
		{"EventsUnderMigration", func(c *Config) { on(c); c.Forge.EventsPath = "/migration/events" }, "config: forge.eventsPath: \"/migration/events\" lies on forge.migrationPath"},
		{"HoursTooFew", func(c *Config) { on(c); c.Forge.MaxMigrationDurationHours = 0.25 }, "config: forge.maxMigrationDurationHours: must be from 0.5 to 24 hours in steps of 0.5, got 0.25"},
		{"HoursTooMany", func(c *Config) { on(c); c.Forge.MaxMigrationDurationHours = 25 }, "config: forge.maxMigrationDurationHours: must be from 0.5 to 24"},
		{"HoursOffStep", func(c *Config) { on(c); c.Forge.MaxMigrationDurationHours = 1.2 }, "config: forge.maxMigrationDurationHours: must be from 0.5 to 24"},
		{"HoursOnStep", func(c *Config) { on(c); c.Forge.MaxMigrationDurationHours = 6 }, ""},
		{"RemoteKeyBad", func(c *Config) { on(c); c.Forge.Remote = "my remote" }, "config: forge.remote: want 1 to 23"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Default()
			tt.mutate(cfg)
			cfg.applyDefaults()
			err := cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			mustFailWith(t, err, tt.want)
		})
	}
}

func TestLoad_ForgeDefaults(t *testing.T) {
	cfg := mustParse(t, minimalYAML+"forge:\n  appId: 406d303d-0393-4ec4-ad7c-1435be94583a\n", nil)
	want := Forge{AppID: "406d303d-0393-4ec4-ad7c-1435be94583a", JWKSURL: "https://forge.cdn.prod.atlassian-dev.net/.well-known/jwks.json",
		MigrationPath: "/migration", EventsPath: "/forge/events", MaxMigrationDurationHours: 1.5, Remote: "backend"}
	if cfg.Forge != want {
		t.Errorf("forge = %+v, want %+v", cfg.Forge, want)
	}
	_, err := parse([]byte(minimalYAML+"forge:\n  appId: 406d303d-0393-4ec4-ad7c-1435be94583a\n  maxMigrationDurationHours: 30\n"), env{}.lookup)
	mustFailWith(t, err, "forge.maxMigrationDurationHours")
}

// regional makes c the config of one process of the regional shape: it
// serves the given realms and reaches every realm at an internal URL; the
// others have no database.
func regional(c *Config, serve ...string) {
	c.Serve = serve
	c.Internal.Secret = "0123456789abcdef"
	for key, r := range c.Realms {
		r.InternalURL = "http://" + strings.ToLower(key) + ".internal:7000"
		if !slices.Contains(serve, key) {
			r.Database = ""
		}
		c.Realms[key] = r
	}
}
