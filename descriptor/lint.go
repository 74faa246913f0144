package descriptor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/realmhook/realmhook"
)

// Problem is one thing wrong with a descriptor, at a dotted path into it ("$"
// for the whole document).
type Problem struct {
	Path    string
	Message string
	// Advisory marks what the host ignores or would refuse but realmhook can
	// still serve: an unknown regionBaseUrls key (config accepts any
	// upper-case realm key) or plain http on a host other than localhost.
	// Validate lets advisory problems pass; Lint reports them all.
	Advisory bool
}

func (p Problem) String() string { return p.Path + ": " + p.Message }

// KnownRegions are the regionBaseUrls keys the host knows (docs/protocol.md).
var KnownRegions = []string{"AU", "CA", "CH", "DE", "EU", "GB", "IN", "JP", "KR", "SG", "US"}

// MaxKeyLen is the longest app key the host accepts.
const MaxKeyLen = 80

// templatePlaceholder is how the repository's atlassian-connect.json marks
// the field realmhook fills in: a template, not a descriptor to publish.
var templatePlaceholder = regexp.MustCompile(`^\{\{\s*[A-Za-z]+\s*\}\}$`)

// IsTemplate reports whether b is a descriptor template (its baseUrl is a
// {{placeholder}}, as in the repository's atlassian-connect.json) rather than
// a built descriptor: Build fills in baseUrl, regionBaseUrls,
// apiMigrations.signed-install and the missing lifecycle hooks.
func IsTemplate(b []byte) bool {
	var doc struct {
		BaseURL any `json:"baseUrl"`
	}
	if json.Unmarshal(b, &doc) != nil {
		return false
	}
	s, ok := doc.BaseURL.(string)
	return ok && templatePlaceholder.MatchString(s)
}

var keyPattern = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// Lint returns everything wrong with a descriptor, in a stable order: JSON,
// key, name, baseUrl, authentication, regionBaseUrls, lifecycle,
// apiMigrations, dataResidency. It returns nil for a good one.
//
// A built descriptor is checked for everything `realmctl host conformance`
// would fail on the descriptor alone: what the host would refuse is a
// problem, what realmhook accepts on purpose (a realm key the host does not
// list yet, no regions at all) is advisory. A template (IsTemplate) is
// checked for what Build keeps from it; what Build replaces is advisory.
func Lint(b []byte) []Problem {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return []Problem{{Path: "$", Message: "invalid JSON: " + err.Error()}}
	}
	if dec.More() {
		return []Problem{{Path: "$", Message: "invalid JSON: data after the top-level value"}}
	}
	root, ok := doc.(map[string]any)
	if !ok {
		return []Problem{{Path: "$", Message: "must be a JSON object"}}
	}
	l := &linter{template: IsTemplate(b)}
	l.key(root["key"])
	l.requiredString("name", root["name"])
	baseURL := ""
	if !l.template {
		baseURL = l.url("baseUrl", root["baseUrl"], true)
	}
	l.authentication(root["authentication"])
	regions := l.regions(root["regionBaseUrls"], baseURL)
	dare := l.lifecycle(root["lifecycle"], regions)
	l.signedInstall(root["apiMigrations"], dare || regions)
	l.dataResidency(root["dataResidency"])
	return l.problems
}

// Validate returns an EINVALID error carrying the first problem Lint finds
// that is not advisory, and how many more there are; nil if there are none.
func Validate(b []byte) error {
	var hard []Problem
	for _, p := range Lint(b) {
		if !p.Advisory {
			hard = append(hard, p)
		}
	}
	switch len(hard) {
	case 0:
		return nil
	case 1:
		return realmhook.Errorf(realmhook.EINVALID, "descriptor: %s", hard[0])
	}
	return realmhook.Errorf(realmhook.EINVALID, "descriptor: %s (and %d more; run realmctl descriptor lint)", hard[0], len(hard)-1)
}

type linter struct {
	problems []Problem
	template bool // Build replaces baseUrl, regionBaseUrls and signed-install
}

func (l *linter) add(path, format string, args ...any) {
	l.problems = append(l.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (l *linter) advise(path, format string, args ...any) {
	l.problems = append(l.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...), Advisory: true})
}

// requiredString reports a missing, empty or non-string value and returns the
// string when there is one.
func (l *linter) requiredString(path string, v any) (string, bool) {
	switch s := v.(type) {
	case nil:
		l.add(path, "required")
	case string:
		if strings.TrimSpace(s) == "" {
			l.add(path, "required, got an empty string")
			return "", false
		}
		return s, true
	default:
		l.add(path, "must be a string, got %s", jsonType(v))
	}
	return "", false
}

func (l *linter) key(v any) {
	s, ok := l.requiredString("key", v)
	if !ok {
		return
	}
	if len(s) > MaxKeyLen {
		l.add("key", "longer than %d characters (%d)", MaxKeyLen, len(s))
	}
	if !keyPattern.MatchString(s) {
		l.add("key", "may hold only letters, digits, '-', '.' and '_', got %q", s)
	}
}

// url checks one published base URL and returns it normalised for comparison
// ("" when it is unusable).
func (l *linter) url(path string, v any, required bool) string {
	var s string
	if required {
		var ok bool
		if s, ok = l.requiredString(path, v); !ok {
			return ""
		}
	} else if str, ok := v.(string); ok {
		s = str
	} else {
		l.add(path, "must be a string URL, got %s", jsonType(v))
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		l.add(path, "must be an absolute https URL, got %q", s)
		return ""
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		l.add(path, "must not have a query or fragment, got %q", s)
	}
	if u.Scheme == "http" && !isLocal(u.Hostname()) {
		l.advise(path, "must be https (http is allowed only for localhost), got %q", s)
	}
	return strings.ToLower(u.Scheme+"://"+u.Host) + strings.TrimRight(u.Path, "/")
}

func isLocal(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

func (l *linter) authentication(v any) {
	auth, ok := v.(map[string]any)
	if !ok {
		if v == nil {
			l.add("authentication.type", `required: "jwt"`)
		} else {
			l.add("authentication", "must be an object, got %s", jsonType(v))
		}
		return
	}
	switch t := auth["type"].(type) {
	case nil:
		l.add("authentication.type", `required: "jwt"`)
	case string:
		if t != "jwt" {
			l.add("authentication.type", `must be "jwt", got %q`, t)
		}
	default:
		l.add("authentication.type", `must be "jwt", got %s`, jsonType(t))
	}
}

// regions checks regionBaseUrls and reports whether it lists any realm.
func (l *linter) regions(v any, baseURL string) bool {
	if l.template {
		if m, ok := v.(map[string]any); v != nil && (!ok || len(m) > 0) {
			l.advise("regionBaseUrls", "realmhook replaces it with the realms in config")
		}
		return false
	}
	if v == nil {
		l.advise("regionBaseUrls", "missing: the app can live in the Global realm only, and conformance fails")
		return false
	}
	regions, ok := v.(map[string]any)
	if !ok {
		l.add("regionBaseUrls", "must be an object of region key to URL, got %s", jsonType(v))
		return false
	}
	if len(regions) == 0 {
		l.advise("regionBaseUrls", "empty: the app can live in the Global realm only, and conformance fails")
		return false
	}
	keys := make([]string, 0, len(regions))
	for k := range regions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	seen := map[string]string{}
	if baseURL != "" {
		seen[baseURL] = "baseUrl"
	}
	for _, k := range keys {
		path := "regionBaseUrls." + k
		switch {
		case k == realmhook.GlobalRealm || !realmhook.IsRealmKey(k):
			// The rule config applies to realm keys, so that what lint
			// accepts realmhook can serve, and the other way round.
			l.add(path, "%q is not a region key (a realm key is %s; global is baseUrl)", k, realmhook.RealmKeyRule)
		case k == "UK":
			l.advise(path, `the host does not know region "UK": use "GB"`)
		case !isKnownRegion(k):
			l.advise(path, "the host does not know region %q (it knows %s): it ignores it, and conformance fails", k, strings.Join(KnownRegions, " "))
		}
		norm := l.url(path, regions[k], true)
		if norm == "" {
			continue
		}
		if other, dup := seen[norm]; dup {
			l.add(path, "same URL as %s", other)
			continue
		}
		seen[norm] = "regionBaseUrls." + k
	}
	return true
}

func isKnownRegion(k string) bool {
	i := sort.SearchStrings(KnownRegions, k)
	return i < len(KnownRegions) && KnownRegions[i] == k
}

// lifecycle checks every hook path, and that a built descriptor has the hooks
// the host needs: installed and uninstalled always (signed install), and
// dare-migration for an app with regions. It reports whether dare-migration
// is set.
func (l *linter) lifecycle(v any, regions bool) (dare bool) {
	hooks, ok := v.(map[string]any)
	if v != nil && !ok {
		l.add("lifecycle", "must be an object of hook name to path, got %s", jsonType(v))
		return false
	}
	names := make([]string, 0, len(hooks))
	for k := range hooks {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		path := "lifecycle." + name
		s, ok := hooks[name].(string)
		switch {
		case !ok:
			l.add(path, "must be a string path, got %s", jsonType(hooks[name]))
		case !strings.HasPrefix(s, "/"):
			l.add(path, "must be a path starting with \"/\" (relative to the base URL), got %q", s)
		}
	}
	_, dare = hooks[HookDareMigration]
	if l.template {
		return dare // Build adds the missing hooks
	}
	for _, name := range []string{HookInstalled, HookUninstalled} {
		if _, ok := hooks[name]; !ok {
			l.add("lifecycle."+name, "required: the host installs the app through it")
		}
	}
	switch {
	case dare:
	case regions:
		l.add("lifecycle."+HookDareMigration, "required when regionBaseUrls is set: the host sends its migration hooks under it")
	default:
		l.advise("lifecycle."+HookDareMigration, "missing: the host cannot migrate the app's tenants, and conformance fails")
	}
	return dare
}

// signedInstall checks apiMigrations; residency says whether the descriptor
// takes part in data residency (regions or dare-migration), which needs
// signed install.
func (l *linter) signedInstall(v any, residency bool) {
	const path = "apiMigrations.signed-install"
	m, _ := v.(map[string]any)
	if v != nil && m == nil {
		l.add("apiMigrations", "must be an object, got %s", jsonType(v))
		return
	}
	switch {
	case m["signed-install"] == true:
	case l.template:
		l.advise(path, "realmhook sets it to true")
	case residency:
		l.add(path, "must be true when regionBaseUrls or lifecycle.dare-migration is set (data residency requires signed install)")
	default:
		l.advise(path, "not true: conformance fails")
	}
}

func (l *linter) dataResidency(v any) {
	if v == nil {
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		l.add("dataResidency", "must be an object, got %s", jsonType(v))
		return
	}
	raw, ok := m["maxMigrationDurationHours"]
	if !ok {
		return
	}
	const path = "dataResidency.maxMigrationDurationHours"
	n, ok := raw.(json.Number)
	if !ok {
		l.add(path, "must be a number of hours, got %s", jsonType(raw))
		return
	}
	h, err := n.Float64()
	if err == nil {
		err = realmhook.CheckMigrationHours(h)
	}
	if err != nil {
		l.add(path, "must be from %g to %g hours in steps of %g, got %s", float64(realmhook.MinMigrationHours), float64(realmhook.MaxMigrationHours), realmhook.MigrationHoursStep, n)
	}
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
