package hostsim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/realmhook/realmhook"
)

// KnownRealms are the regionBaseUrls keys the host publishes.
var KnownRealms = []string{"EU", "US", "AU", "DE", "SG", "CA", "IN", "KR", "JP", "GB", "CH"}

// Descriptor is the part of an app's atlassian-connect.json the host reads.
// hostsim keeps its own view rather than realmhook's, because it must read any
// Connect app's descriptor, including malformed ones it reports on.
type Descriptor struct {
	Key            string            `json:"key"`
	BaseURL        string            `json:"baseUrl"`
	RegionBaseURLs map[string]string `json:"regionBaseUrls"`
	Lifecycle      map[string]string `json:"lifecycle"`
	APIMigrations  map[string]bool   `json:"apiMigrations"`
	DataResidency  *struct {
		MaxMigrationDurationHours float64 `json:"maxMigrationDurationHours"`
	} `json:"dataResidency"`
}

// NormalizeRealm returns the realm key as the descriptor spells it: "global"
// for the Global realm, upper case for the rest.
func NormalizeRealm(realm string) string {
	if strings.EqualFold(realm, realmhook.GlobalRealm) {
		return realmhook.GlobalRealm
	}
	return strings.ToUpper(realm)
}

// RealmBaseURL is the base URL of realm: the descriptor's baseUrl for "global",
// regionBaseUrls[realm] otherwise, without a trailing slash.
func (d *Descriptor) RealmBaseURL(realm string) (string, error) {
	realm = NormalizeRealm(realm)
	var u string
	if realm == realmhook.GlobalRealm {
		u = d.BaseURL
	} else {
		u = d.RegionBaseURLs[realm]
	}
	if u == "" {
		return "", realmhook.Errorf(realmhook.EINVALID, "realm %q: the descriptor lists no base URL for it (regionBaseUrls has %s)",
			realm, strings.Join(d.Realms(), ", "))
	}
	return strings.TrimRight(u, "/"), nil
}

// Realms returns the regionBaseUrls keys, sorted.
func (d *Descriptor) Realms() []string {
	keys := make([]string, 0, len(d.RegionBaseURLs))
	for k := range d.RegionBaseURLs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// lifecyclePath returns the path the descriptor names for a lifecycle event.
func (d *Descriptor) lifecyclePath(event string) (string, error) {
	p := d.Lifecycle[event]
	if p == "" {
		return "", realmhook.Errorf(realmhook.EINVALID, "the descriptor names no lifecycle.%s", event)
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p, nil
}

// Descriptor fetches and parses the app descriptor at rawURL; each is fetched
// once per Host.
func (h *Host) Descriptor(ctx context.Context, rawURL string) (*Descriptor, error) {
	h.mu.Lock()
	d, ok := h.descs[rawURL]
	h.mu.Unlock()
	if ok {
		return d, nil
	}
	d, err := h.fetchDescriptor(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	if h.descs == nil {
		h.descs = make(map[string]*Descriptor)
	}
	h.descs[rawURL] = d
	h.mu.Unlock()
	return d, nil
}

func (h *Host) fetchDescriptor(ctx context.Context, rawURL string) (*Descriptor, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, realmhook.Errorf(realmhook.EINVALID, "descriptor URL %q: want an absolute http(s) URL", rawURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, realmhook.Errorf(realmhook.EINVALID, "descriptor URL %q: %v", rawURL, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := h.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch descriptor: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("fetch descriptor %s: %w", rawURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch descriptor %s: answered %d: %s", rawURL, resp.StatusCode, snippet(body))
	}
	var d Descriptor
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, realmhook.Errorf(realmhook.EINVALID, "descriptor %s is not valid JSON: %v", rawURL, err)
	}
	if d.BaseURL == "" {
		return nil, realmhook.Errorf(realmhook.EINVALID, "descriptor %s has no baseUrl", rawURL)
	}
	return &d, nil
}

// snippet shortens a response body for an error message.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}
