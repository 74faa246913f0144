// Package descriptor builds the app's Atlassian Connect descriptor from the
// template and the configured realms, and checks any descriptor for what the
// host or realmhook would refuse.
package descriptor

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/config"
)

// Lifecycle hook names in the descriptor's "lifecycle" object, in the order
// Build adds missing ones.
const (
	HookInstalled     = "installed"
	HookUninstalled   = "uninstalled"
	HookEnabled       = "enabled"
	HookDisabled      = "disabled"
	HookDareMigration = "dare-migration"
)

// lifecycleDefaults are the paths Build fills in for hooks the template lacks.
var lifecycleDefaults = []struct{ hook, path string }{
	{HookInstalled, "/installed"},
	{HookUninstalled, "/uninstalled"},
	{HookEnabled, "/enabled"},
	{HookDisabled, "/disabled"},
	{HookDareMigration, "/dare-migration"},
}

// Overrides replace template fields from config; empty fields leave the
// template's value.
type Overrides struct {
	Key  string
	Name string
}

// Build returns the descriptor realmhook serves: the template with every field
// it has kept in order, baseUrl set, regionBaseUrls set to every non-global
// realm (sorted by key), apiMigrations.signed-install true, each lifecycle hook
// present, and the overrides applied. It fails with EINVALID when the result
// has a problem Validate rejects.
func Build(template []byte, baseURL string, regionBaseURLs map[string]string, overrides Overrides) ([]byte, error) {
	o, err := parseObject(template)
	if err != nil {
		return nil, realmhook.Errorf(realmhook.EINVALID, "descriptor template: %v", err)
	}
	if err := build(o, baseURL, regionBaseURLs, overrides); err != nil {
		return nil, realmhook.Errorf(realmhook.EINVALID, "descriptor template: %v", err)
	}
	out, err := marshalIndent(o)
	if err != nil {
		return nil, fmt.Errorf("descriptor: encode: %w", err)
	}
	if err := Validate(out); err != nil {
		return nil, err
	}
	return out, nil
}

func build(o *object, baseURL string, regionBaseURLs map[string]string, overrides Overrides) error {
	if overrides.Key != "" {
		if err := o.set("key", overrides.Key); err != nil {
			return err
		}
	}
	if overrides.Name != "" {
		if err := o.set("name", overrides.Name); err != nil {
			return err
		}
	}
	if err := o.set("baseUrl", baseURL); err != nil {
		return err
	}

	regions := newObject()
	keys := make([]string, 0, len(regionBaseURLs))
	for k := range regionBaseURLs {
		if k != realmhook.GlobalRealm {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := regions.set(k, regionBaseURLs[k]); err != nil {
			return err
		}
	}
	if err := o.set("regionBaseUrls", regions); err != nil {
		return err
	}

	migrations, err := o.child("apiMigrations")
	if err != nil {
		return err
	}
	if err := migrations.set("signed-install", true); err != nil {
		return err
	}
	if err := o.set("apiMigrations", migrations); err != nil {
		return err
	}

	lifecycle, err := o.child("lifecycle")
	if err != nil {
		return err
	}
	for _, d := range lifecycleDefaults {
		if !lifecycle.has(d.hook) {
			if err := lifecycle.set(d.hook, d.path); err != nil {
				return err
			}
		}
	}
	return o.set("lifecycle", lifecycle)
}

// FromConfig builds the descriptor for cfg: the template at app.descriptor (or
// the one built into the binary), the global realm's baseUrl, every other
// configured realm — not only those this process serves, since every
// deployment publishes the same descriptor — and app.key/app.name.
func FromConfig(cfg *config.Config) ([]byte, error) {
	template := realmhook.DescriptorTemplate
	if cfg.App.Descriptor != "" {
		b, err := os.ReadFile(cfg.App.Descriptor)
		if err != nil {
			return nil, fmt.Errorf("descriptor: read app.descriptor: %w", err)
		}
		template = b
	}
	global, ok := cfg.Realms[realmhook.GlobalRealm]
	if !ok {
		return nil, realmhook.Errorf(realmhook.EINVALID, "descriptor: config has no realms.global")
	}
	regions := make(map[string]string, len(cfg.Realms))
	for k, r := range cfg.Realms {
		if k != realmhook.GlobalRealm {
			regions[k] = r.BaseURL
		}
	}
	return Build(template, global.BaseURL, regions, Overrides{Key: cfg.App.Key, Name: cfg.App.Name})
}

// Descriptor is the part of a descriptor realmhook acts on.
type Descriptor struct {
	Key                       string
	Name                      string
	BaseURL                   string
	RegionBaseURLs            map[string]string
	Lifecycle                 Lifecycle
	SignedInstall             bool
	MaxMigrationDurationHours float64 // 0 when the descriptor does not say
}

// Lifecycle holds the lifecycle hook paths, relative to a realm's base URL.
type Lifecycle struct {
	Installed     string
	Uninstalled   string
	Enabled       string
	Disabled      string
	DareMigration string
}

// wire is the JSON shape Parse reads.
type wire struct {
	Key            string            `json:"key"`
	Name           string            `json:"name"`
	BaseURL        string            `json:"baseUrl"`
	RegionBaseURLs map[string]string `json:"regionBaseUrls"`
	Lifecycle      struct {
		Installed     string `json:"installed"`
		Uninstalled   string `json:"uninstalled"`
		Enabled       string `json:"enabled"`
		Disabled      string `json:"disabled"`
		DareMigration string `json:"dare-migration"`
	} `json:"lifecycle"`
	APIMigrations struct {
		SignedInstall bool `json:"signed-install"`
	} `json:"apiMigrations"`
	DataResidency struct {
		MaxMigrationDurationHours float64 `json:"maxMigrationDurationHours"`
	} `json:"dataResidency"`
}

// Parse reads the fields of Descriptor from a descriptor. It checks only that
// they have the right JSON types; Lint says whether the values make sense.
func Parse(b []byte) (*Descriptor, error) {
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, realmhook.Errorf(realmhook.EINVALID, "descriptor: %v", err)
	}
	d := &Descriptor{
		Key:            w.Key,
		Name:           w.Name,
		BaseURL:        w.BaseURL,
		RegionBaseURLs: w.RegionBaseURLs,
		Lifecycle: Lifecycle{
			Installed:     w.Lifecycle.Installed,
			Uninstalled:   w.Lifecycle.Uninstalled,
			Enabled:       w.Lifecycle.Enabled,
			Disabled:      w.Lifecycle.Disabled,
			DareMigration: w.Lifecycle.DareMigration,
		},
		SignedInstall:             w.APIMigrations.SignedInstall,
		MaxMigrationDurationHours: w.DataResidency.MaxMigrationDurationHours,
	}
	if d.RegionBaseURLs == nil {
		d.RegionBaseURLs = map[string]string{}
	}
	return d, nil
}
