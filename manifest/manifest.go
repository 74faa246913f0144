// Package manifest builds and checks the parts of a Forge app's manifest.yml
// that make realmhook its remote: the remote whose baseUrl map holds the
// realms' base URLs, the migration:dataResidency module, the lifecycle
// event trigger and its endpoint, and for a Connect app moving to Forge
// app.connect.remote. The host emulator reads the same parts back.
package manifest

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/config"
	"github.com/realmhook/realmhook/descriptor"
	"github.com/realmhook/realmhook/forgefit"
)

// Module keys realmhook's manifest snippet uses.
const (
	MigrationModuleKey = "realmhook-dare"
	LifecycleKey       = "realmhook-lifecycle"
)

// LifecycleEvents are the events the trigger delivers to the remote.
var LifecycleEvents = []string{"avi:forge:installed:app", "avi:forge:upgraded:app", "avi:forge:uninstalled:app"}

// Manifest is the part of manifest.yml realmhook writes and reads.
type Manifest struct {
	App     App      `yaml:"app"`
	Remotes []Remote `yaml:"remotes"`
	Modules Modules  `yaml:"modules"`
}

// App is manifest.yml's app.
type App struct {
	ID      string   `yaml:"id"`
	Connect *Connect `yaml:"connect,omitempty"`
}

// Connect is app.connect of a Connect-on-Forge app.
type Connect struct {
	Key    string `yaml:"key"`
	Remote string `yaml:"remote"`
}

// Remote is one entry of remotes.
type Remote struct {
	Key string `yaml:"key"`
	// BaseURL is a string, or a map of "default" and region keys.
	BaseURL    BaseURL  `yaml:"baseUrl"`
	Operations []string `yaml:"operations,omitempty"`
	Storage    *Storage `yaml:"storage,omitempty"`
}

// Storage is a remote's storage attribute.
type Storage struct {
	InScopeEUD *bool `yaml:"inScopeEUD"`
}

// BaseURL is a remote's baseUrl: One when written as a string, else
// Default and Regions.
type BaseURL struct {
	One     string
	Default string
	Regions map[string]string
}

// Region returns the base URL of a realm key ("global" is the default).
func (b BaseURL) Region(realm string) (string, bool) {
	if b.One != "" {
		return b.One, true
	}
	if realm == realmhook.GlobalRealm {
		return b.Default, b.Default != ""
	}
	u, ok := b.Regions[realm]
	return u, ok
}

// RegionKeys returns the region keys, sorted.
func (b BaseURL) RegionKeys() []string {
	keys := make([]string, 0, len(b.Regions))
	for k := range b.Regions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// MarshalYAML writes default first, then the regions by key.
func (b BaseURL) MarshalYAML() (any, error) {
	if b.One != "" {
		return b.One, nil
	}
	n := &yaml.Node{Kind: yaml.MappingNode}
	add := func(k, v string) {
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, &yaml.Node{Kind: yaml.ScalarNode, Value: v})
	}
	add("default", b.Default)
	for _, k := range b.RegionKeys() {
		add(k, b.Regions[k])
	}
	return n, nil
}

// UnmarshalYAML reads a string or a map.
func (b *BaseURL) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&b.One)
	}
	var m map[string]string
	if err := n.Decode(&m); err != nil {
		return fmt.Errorf("baseUrl: want a URL or a map of region keys to URLs")
	}
	b.Regions = map[string]string{}
	for k, v := range m {
		if k == "default" {
			b.Default = v
			continue
		}
		b.Regions[k] = v
	}
	return nil
}

// Modules are the modules realmhook writes and reads.
type Modules struct {
	Migration []Migration `yaml:"migration:dataResidency,omitempty"`
	Trigger   []Trigger   `yaml:"trigger,omitempty"`
	Endpoint  []Endpoint  `yaml:"endpoint,omitempty"`
}

// Migration is a migration:dataResidency module.
type Migration struct {
	Key                       string  `yaml:"key"`
	Remote                    string  `yaml:"remote"`
	Path                      string  `yaml:"path"`
	MaxMigrationDurationHours float64 `yaml:"maxMigrationDurationHours,omitempty"`
}

// Trigger is a trigger module delivering events to an endpoint.
type Trigger struct {
	Key      string   `yaml:"key"`
	Endpoint string   `yaml:"endpoint,omitempty"`
	Events   []string `yaml:"events"`
}

// Endpoint is an endpoint module: a route on a remote.
type Endpoint struct {
	Key    string `yaml:"key"`
	Remote string `yaml:"remote"`
	Route  struct {
		Path string `yaml:"path"`
	} `yaml:"route"`
}

// FromConfig returns the manifest snippet for a Forge-enabled config.
func FromConfig(cfg *config.Config) (*Manifest, error) {
	f := cfg.Forge
	if !f.Enabled() {
		return nil, realmhook.Errorf(realmhook.EINVALID, "forge.appId is not set: the app is not a Forge remote")
	}
	ari, err := forgefit.AppARI(f.AppID)
	if err != nil {
		return nil, err
	}
	base := BaseURL{Regions: map[string]string{}}
	for key, r := range cfg.Realms {
		u := strings.TrimRight(r.BaseURL, "/")
		if key == realmhook.GlobalRealm {
			base.Default = u
		} else {
			base.Regions[key] = u
		}
	}
	yes := true
	m := &Manifest{
		App:     App{ID: ari},
		Remotes: []Remote{{Key: f.Remote, BaseURL: base, Operations: []string{"storage", "compute"}, Storage: &Storage{InScopeEUD: &yes}}},
	}
	m.Modules.Migration = []Migration{{Key: MigrationModuleKey, Remote: f.Remote, Path: f.MigrationPath, MaxMigrationDurationHours: f.MaxMigrationDurationHours}}
	m.Modules.Trigger = []Trigger{{Key: LifecycleKey, Endpoint: LifecycleKey, Events: LifecycleEvents}}
	ep := Endpoint{Key: LifecycleKey, Remote: f.Remote}
	ep.Route.Path = f.EventsPath
	m.Modules.Endpoint = []Endpoint{ep}
	if f.Connect {
		desc, err := descriptor.FromConfig(cfg)
		if err != nil {
			return nil, err
		}
		parsed, err := descriptor.Parse(desc)
		if err != nil {
			return nil, err
		}
		m.App.Connect = &Connect{Key: parsed.Key, Remote: f.Remote}
	}
	return m, nil
}

// Marshal writes m as YAML, two-space indented as manifest.yml is.
func (m *Manifest) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	_ = enc.Close()
	return buf.Bytes(), nil
}

// Parse reads a manifest.yml; everything realmhook does not read is ignored.
func Parse(b []byte) (*Manifest, error) {
	var m Manifest
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, realmhook.Errorf(realmhook.EINVALID, "manifest: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return &m, nil
}

// Remote returns the remote with the given key.
func (m *Manifest) Remote(key string) (*Remote, bool) {
	for i := range m.Remotes {
		if m.Remotes[i].Key == key {
			return &m.Remotes[i], true
		}
	}
	return nil, false
}

// Stores reports whether the remote stores in-scope data: Forge assumes it
// does when operations are not given.
func (r *Remote) Stores() bool {
	if len(r.Operations) == 0 {
		return true
	}
	for _, op := range r.Operations {
		if op == "storage" {
			return true
		}
	}
	return false
}

// LifecyclePath returns the route the lifecycle events are delivered to,
// on which remote; ok false when no trigger sends them to an endpoint.
func (m *Manifest) LifecyclePath() (remote, path string, ok bool) {
	for _, t := range m.Modules.Trigger {
		for _, ev := range t.Events {
			if ev != LifecycleEvents[0] || t.Endpoint == "" {
				continue
			}
			for _, e := range m.Modules.Endpoint {
				if e.Key == t.Endpoint {
					return e.Remote, e.Route.Path, true
				}
			}
		}
	}
	return "", "", false
}
