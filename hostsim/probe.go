package hostsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
)

// CallFunc sends a request signed as one tenant to one realm's base URL; path
// is relative to that base URL.
type CallFunc func(ctx context.Context, method, path string, body []byte) (*Response, error)

// DataProbe reaches a tenant's data through the app's own API, so conformance
// can tell that a commit moved the data and a rollback left it in place. Apps
// without a data API run conformance without a probe, and the migration checks
// then judge the hooks' answers only.
type DataProbe interface {
	// Name says which API the probe uses, for the report.
	Name() string
	// Put stores the probe's value for the tenant call is signed as.
	Put(ctx context.Context, call CallFunc) error
	// Check returns nil if the realm call goes to serves the value Put stored,
	// and an error saying what it got otherwise.
	Check(ctx context.Context, call CallFunc) error
}

// PropertyProbe uses realmhook's property API:
// PUT/GET {realmBaseUrl}/api/v1/properties/{Key}.
type PropertyProbe struct {
	Key string // "" means "realmctl-conformance"
}

// Name implements DataProbe.
func (p PropertyProbe) Name() string { return "properties" }

func (p PropertyProbe) path() string {
	k := p.Key
	if k == "" {
		k = "realmctl-conformance"
	}
	return "/api/v1/properties/" + url.PathEscape(k)
}

func (p PropertyProbe) value() []byte {
	return []byte(`{"writtenBy":"realmctl host conformance","path":"` + p.path() + `"}`)
}

// Put implements DataProbe.
func (p PropertyProbe) Put(ctx context.Context, call CallFunc) error {
	resp, err := call(ctx, "PUT", p.path(), p.value())
	if err != nil {
		return fmt.Errorf("put property: %w", err)
	}
	if !resp.OK() {
		return fmt.Errorf("PUT %s answered %s", p.path(), resp.Summary())
	}
	return nil
}

// Check implements DataProbe.
func (p PropertyProbe) Check(ctx context.Context, call CallFunc) error {
	resp, err := call(ctx, "GET", p.path(), nil)
	if err != nil {
		return fmt.Errorf("get property: %w", err)
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s answered %s", p.path(), resp.Summary())
	}
	if !jsonEqual(propertyValue(resp.Body), p.value()) {
		return fmt.Errorf("GET %s answered %s, want the value %s", p.path(), snippet(resp.Body), p.value())
	}
	return nil
}

// propertyValue takes the value out of realmhook's {"key","value"} answer;
// any other answer is taken to be the value itself.
func propertyValue(body []byte) []byte {
	var envelope struct {
		Key   *string         `json:"key"`
		Value json.RawMessage `json:"value"`
	}
	if json.Unmarshal(body, &envelope) == nil && envelope.Key != nil && envelope.Value != nil {
		return envelope.Value
	}
	return body
}

// jsonEqual compares two JSON documents by value, ignoring formatting.
func jsonEqual(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return bytes.Equal(bytes.TrimSpace(a), bytes.TrimSpace(b))
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}
