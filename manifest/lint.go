package manifest

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/descriptor"
)

// Problem is one thing wrong with a manifest, at a dotted path into it.
type Problem struct {
	Path    string
	Message string
}

func (p Problem) String() string { return p.Path + ": " + p.Message }

var remoteKey = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,23}$`)

// Lint checks what makes a manifest's remotes data-residency ready: remote
// keys, each baseUrl (default present, region keys the host knows, absolute
// URLs), the same regions on every remote that stores in-scope data, the
// storage attribute, each migration:dataResidency module's remote, path and
// duration (0.5 to 24 hours in steps of 0.5), and app.connect.remote.
func Lint(b []byte) []Problem {
	m, err := Parse(b)
	if err != nil {
		return []Problem{{"$", realmhook.ErrorMessage(err)}}
	}
	var out []Problem
	add := func(path, format string, args ...any) {
		out = append(out, Problem{path, fmt.Sprintf(format, args...)})
	}
	seen := map[string]bool{}
	var regions string
	var regionsFrom string
	for i, r := range m.Remotes {
		p := fmt.Sprintf("remotes[%d]", i)
		if !remoteKey.MatchString(r.Key) {
			add(p+".key", "want 1 to 23 of a-z A-Z 0-9 _ -, got %q", r.Key)
		} else if seen[r.Key] {
			add(p+".key", "remote %q is listed twice", r.Key)
		}
		seen[r.Key] = true
		lintBaseURL(add, p+".baseUrl", r.BaseURL)
		if !r.Stores() {
			continue
		}
		if len(r.Operations) > 0 && (r.Storage == nil || r.Storage.InScopeEUD == nil) {
			add(p+".storage.inScopeEUD", "required when operations include storage")
		}
		keys := strings.Join(r.BaseURL.RegionKeys(), ",")
		if regionsFrom == "" {
			regions, regionsFrom = keys, r.Key
		} else if keys != regions {
			add(p+".baseUrl", "regions %s differ from remote %q's %s: every remote that stores in-scope data must list the same regions",
				orNone(keys), regionsFrom, orNone(regions))
		}
	}
	for i, mod := range m.Modules.Migration {
		p := fmt.Sprintf("modules.migration:dataResidency[%d]", i)
		if mod.Key == "" {
			add(p+".key", "required")
		}
		if r, ok := m.Remote(mod.Remote); !ok {
			add(p+".remote", "no remote %q in remotes", mod.Remote)
		} else if r.BaseURL.One != "" {
			add(p+".remote", "remote %q has one baseUrl; data residency needs a map of region base URLs", mod.Remote)
		}
		if !strings.HasPrefix(mod.Path, "/") {
			add(p+".path", "want an absolute path such as /migration, got %q", mod.Path)
		}
		if h := mod.MaxMigrationDurationHours; h != 0 {
			if err := realmhook.CheckMigrationHours(h); err != nil {
				add(p+".maxMigrationDurationHours", "%s", realmhook.ErrorMessage(err))
			}
		}
	}
	if c := m.App.Connect; c != nil && c.Remote != "" {
		if _, ok := m.Remote(c.Remote); !ok {
			add("app.connect.remote", "no remote %q in remotes", c.Remote)
		}
	}
	return out
}

func lintBaseURL(add func(path, format string, args ...any), p string, b BaseURL) {
	if b.One != "" {
		lintURL(add, p, b.One)
		return
	}
	if b.Default == "" {
		add(p+".default", "required when baseUrl is a map of regions")
	} else {
		lintURL(add, p+".default", b.Default)
	}
	for _, k := range b.RegionKeys() {
		if !known(k) {
			add(p+"."+k, "the host does not know region %q (it knows %s)", k, strings.Join(descriptor.KnownRegions, " "))
		}
		lintURL(add, p+"."+k, b.Regions[k])
	}
}

func lintURL(add func(path, format string, args ...any), p, raw string) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		add(p, "want an absolute http(s) URL, got %q", raw)
	}
}

func known(region string) bool {
	for _, k := range descriptor.KnownRegions {
		if k == region {
			return true
		}
	}
	return false
}

func orNone(keys string) string {
	if keys == "" {
		return "(none)"
	}
	return keys
}
