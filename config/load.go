package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/forgefit"
	"github.com/realmhook/realmhook/migration"
)

// Defaults applied to every loaded config where a value is zero or missing.
// The migration engine's tuning defaults are package migration's (Default*),
// so that a Go caller of migration.New gets the same ones.
const (
	DefaultListen          = "127.0.0.1:8080"
	DefaultDataDir         = "./data"
	DefaultInstallKeysURL  = "https://connect-install-keys.atlassian.com"
	DefaultInstallTimeout  = 5 * time.Second
	DefaultInstallMaxBytes = 64 << 10
	DefaultJWTLeeway       = 30 * time.Second
	// The host's calls are small and quick; these leave room for slow links.
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	// A Connect request's headers are a few KiB (the JWT up to 32 KiB).
	DefaultMaxHeaderBytes = 64 << 10
	DefaultMaxConcurrent  = 10
	DefaultLogLevel       = "info"
	DefaultLogFormat      = "json"
	// Forge's own defaults (Atlassian's manifest reference).
	DefaultForgeJWKSURL       = forgefit.DefaultJWKSURL
	DefaultForgeMigrationPath = "/migration"
	DefaultForgeEventsPath    = "/forge/events"
	DefaultForgeRemote        = "backend"
	// A probe every 10 s finds a realm down quickly without loading it.
	DefaultAdminProbeInterval = 10 * time.Second
)

// Load reads the YAML file at path, expands ${VAR} and ${VAR:-default} from
// the environment, rejects unknown keys, applies defaults and validates. Every
// error it returns for bad content is a *realmhook.Error with code EINVALID
// whose message is one line naming the key.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return parse(src, os.LookupEnv)
}

// parse is Load without the file system and with an injected environment.
func parse(src []byte, lookup func(string) (string, bool)) (*Config, error) {
	expanded, err := expandEnv(src, lookup)
	if err != nil {
		var ee *expandError
		if errors.As(err, &ee) {
			if key := keyAt(src, ee.Line, ee.Column); key != "" {
				return nil, realmhook.Errorf(realmhook.EINVALID, "config: %s: %s (line %d)", key, ee.Msg, ee.Line)
			}
		}
		return nil, realmhook.Errorf(realmhook.EINVALID, "config: %s", err)
	}

	var doc yaml.Node
	if err := yaml.Unmarshal(expanded, &doc); err != nil {
		return nil, realmhook.Errorf(realmhook.EINVALID, "config: %s", oneLine(err))
	}
	var cfg Config
	if len(doc.Content) > 0 {
		if err := checkKeys(doc.Content[0], reflect.TypeOf(cfg), ""); err != nil {
			return nil, err
		}
		// checkKeys names the key for every mistake it knows of; the strict
		// decoder stays as the backstop for any it does not.
		dec := yaml.NewDecoder(bytes.NewReader(expanded))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return nil, realmhook.Errorf(realmhook.EINVALID, "config: %s", oneLine(err))
		}
		var extra yaml.Node
		if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
			return nil, realmhook.Errorf(realmhook.EINVALID, "config: one YAML document expected, found more")
		}
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Default is the embedded shape that runs with no config file: one process,
// realms global, US and EU on one listener, each a SQLite file under ./data.
func Default() *Config {
	c := &Config{
		Listen:      DefaultListen,
		DataDir:     DefaultDataDir,
		InstallKeys: InstallKeys{URL: DefaultInstallKeysURL},
		Realms: map[string]Realm{
			realmhook.GlobalRealm: {BaseURL: "http://localhost:8080"},
			"US":                  {BaseURL: "http://localhost:8080/realms/us"},
			"EU":                  {BaseURL: "http://localhost:8080/realms/eu"},
		},
	}
	c.applyDefaults()
	return c
}

// applyDefaults fills every zero value that has a default. A zero duration or
// count therefore means "the default", never "none".
func (c *Config) applyDefaults() {
	setString(&c.Listen, DefaultListen)
	setString(&c.DataDir, DefaultDataDir)
	setString(&c.InstallKeys.URL, DefaultInstallKeysURL)
	setDuration(&c.InstallKeys.Timeout, DefaultInstallTimeout)
	if c.InstallKeys.MaxBytes == 0 {
		c.InstallKeys.MaxBytes = DefaultInstallMaxBytes
	}
	setDuration(&c.JWT.Leeway, DefaultJWTLeeway)
	setDuration(&c.HTTP.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDuration(&c.HTTP.ReadTimeout, DefaultReadTimeout)
	setDuration(&c.HTTP.WriteTimeout, DefaultWriteTimeout)
	setDuration(&c.HTTP.IdleTimeout, DefaultIdleTimeout)
	setInt(&c.HTTP.MaxHeaderBytes, DefaultMaxHeaderBytes)

	m := &c.Migration
	if m.Enabled == nil {
		enabled := true
		m.Enabled = &enabled
	}
	setInt(&m.MaxConcurrent, DefaultMaxConcurrent)
	setInt(&m.BatchRows, migration.DefaultBatchRows)
	setInt(&m.CheckpointRows, migration.DefaultCheckpointRows)
	setDuration(&m.PurgeAfter, migration.DefaultPurgeAfter)
	setDuration(&m.LeaseTTL, migration.DefaultLeaseTTL)
	setDuration(&m.SweepInterval, migration.DefaultSweepInterval)

	if f := &c.Forge; f.Enabled() {
		setString(&f.JWKSURL, DefaultForgeJWKSURL)
		setString(&f.MigrationPath, DefaultForgeMigrationPath)
		setString(&f.EventsPath, DefaultForgeEventsPath)
		setString(&f.Remote, DefaultForgeRemote)
		if f.MaxMigrationDurationHours == 0 {
			f.MaxMigrationDurationHours = realmhook.ForgeMigrationHours
		}
	}
	setDuration(&c.Admin.ProbeInterval, DefaultAdminProbeInterval)

	setString(&c.Log.Level, DefaultLogLevel)
	setString(&c.Log.Format, DefaultLogFormat)
	c.applyGatewayDefaults()

	for key, r := range c.Realms {
		// A realm served elsewhere has no database here (checkRealmDatabase).
		if r.Database == "" && c.Serves(key) {
			r.Database = "sqlite:" + strings.TrimRight(c.DataDir, "/") + "/" + strings.ToLower(key) + ".db"
			c.Realms[key] = r
		}
	}
}

func setString(p *string, def string) {
	if *p == "" {
		*p = def
	}
}

func setInt(p *int, def int) {
	if *p == 0 {
		*p = def
	}
}

func setDuration(p *time.Duration, def time.Duration) {
	if *p == 0 {
		*p = def
	}
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	byteSizeType = reflect.TypeOf(ByteSize(0))
)

// checkKeys walks the parsed YAML against the Config type so that an unknown
// key or a value of the wrong type is reported with its full key path, which
// yaml.v3's own errors (a line number and a Go type) do not give.
func checkKeys(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		var d time.Duration
		if n.Kind != yaml.ScalarNode || n.Decode(&d) != nil {
			return invalidf(path, "invalid duration %s (want a number with a unit, e.g. 30s, 5m, 168h)", describe(n))
		}
		return nil
	case t == byteSizeType:
		var b ByteSize
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			return invalidf(path, "invalid size %s (want bytes or a number with a unit, e.g. 10MiB)", describe(n))
		}
		return nil
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return invalidf(path, "want a mapping of keys, got %s", describe(n))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" {
				if err := checkKeys(v, t, path); err != nil {
					return err
				}
				continue
			}
			f, ok := fieldByTag(t, k.Value)
			if !ok {
				return invalidf(join(path, k.Value), "unknown key")
			}
			if err := checkKeys(v, f.Type, join(path, k.Value)); err != nil {
				return err
			}
		}
		return nil
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			return invalidf(path, "want a mapping, got %s", describe(n))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := checkKeys(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
		return nil
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return invalidf(path, "want a list, got %s", describe(n))
		}
		for i, item := range n.Content {
			if err := checkKeys(item, t.Elem(), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		return nil
	default:
		// A leaf: let yaml.v3 decide what it accepts, and name the key if not.
		if n.Kind != yaml.ScalarNode || n.Decode(reflect.New(t).Interface()) != nil {
			return invalidf(path, "want %s, got %s", kindName(t), describe(n))
		}
		return nil
	}
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}

// describe names what a node holds for an error message; scalars are quoted
// only when short, so a misplaced secret is not echoed whole.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if len(n.Value) > 32 {
		return "a long value"
	}
	return strconv.Quote(n.Value)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func oneLine(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n")
	fields := strings.Split(s, "\n")
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	return strings.Join(fields, "; ")
}

var keyOnLine = regexp.MustCompile(`^\s*(?:-\s+)?([^\s:#'"]+)\s*:`)

// keyAt names the key whose value holds the text at a 1-based line and
// column of the unexpanded text: its full path when that text parses as YAML
// (a ${VAR} reference usually does), else just the key written on that line.
// The column matters in flow style, where one line holds several keys.
func keyAt(src []byte, line, col int) string {
	var doc yaml.Node
	if yaml.Unmarshal(maskRefs(src), &doc) == nil && len(doc.Content) > 0 {
		var best scalarAt
		scalarsOnLine(doc.Content[0], "", line, func(s scalarAt) {
			// The value that starts last at or before the column holds it.
			if s.col <= col && s.col >= best.col {
				best = s
			}
		})
		if best.path != "" {
			return best.path
		}
	}
	lines := strings.Split(string(src), "\n")
	if line < 1 || line > len(lines) {
		return ""
	}
	if m := keyOnLine.FindStringSubmatch(lines[line-1]); m != nil {
		return m[1]
	}
	return ""
}

// maskRefs overwrites every ${...} with as many x's, so that text which is
// YAML only once expanded ({ database: ${URL} }) parses, with every key where
// it was.
func maskRefs(src []byte) []byte {
	return refPattern.ReplaceAllFunc(src, func(ref []byte) []byte {
		return bytes.Repeat([]byte("x"), utf8.RuneCount(ref))
	})
}

var refPattern = regexp.MustCompile(`\$\{[^}\n]*\}`)

// scalarAt is a node on a line of the config and the path of the key it is
// the value of (or, for a key, the path it names).
type scalarAt struct {
	path string
	col  int
}

// scalarsOnLine calls fn for every key and scalar value on line.
func scalarsOnLine(n *yaml.Node, path string, line int, fn func(scalarAt)) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if k.Line == line {
				fn(scalarAt{path: p, col: k.Column})
			}
			scalarsOnLine(v, p, line, fn)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			if item.Kind == yaml.ScalarNode {
				// A list of scalars (serve: [EU, US]) is one key.
				p = path
			}
			scalarsOnLine(item, p, line, fn)
		}
	case yaml.ScalarNode:
		if n.Line == line {
			fn(scalarAt{path: path, col: n.Column})
		}
	}
}

func invalidf(path, format string, args ...any) *realmhook.Error {
	if path == "" {
		return realmhook.Errorf(realmhook.EINVALID, "config: %s", fmt.Sprintf(format, args...))
	}
	return realmhook.Errorf(realmhook.EINVALID, "config: %s: %s", path, fmt.Sprintf(format, args...))
}
