package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/dustin/go-humanize"
	"gopkg.in/yaml.v3"

	"github.com/realmhook/realmhook/identitytoken"
)

// Gateway puts the app's own server (the upstream) behind realmhook: every
// request under a realm's base URL that is none of realmhook's routes is
// verified and forwarded there. Absent (nil), realmhook has no gateway.
type Gateway struct {
	// Upstream is the app's URL for every realm without its own
	// realms.<KEY>.upstream.
	Upstream string `yaml:"upstream"`
	// IdentitySecret signs X-Realmhook-Identity; at least
	// identitytoken.MinSecretBytes, written as "${VAR}".
	IdentitySecret string `yaml:"identitySecret"`
	// Public paths (relative to a realm's base URL) are forwarded without a
	// JWT: "*" is one path segment, "**" any number of them.
	Public []string `yaml:"public"`
	// EventsPath is where lifecycle events are POSTed on the upstream.
	EventsPath string `yaml:"eventsPath"`
	// EgressListen is where the app reaches the product's REST API through
	// realmhook; empty, there is no egress.
	EgressListen string `yaml:"egressListen"`
	// MaxBodyBytes bounds a request body forwarded to the upstream.
	MaxBodyBytes ByteSize `yaml:"maxBodyBytes"`
	// Timeout bounds one upstream request; past it the client gets 504.
	Timeout time.Duration `yaml:"timeout"`
}

// Gateway defaults, applied only when a gateway section is present.
const (
	DefaultGatewayEventsPath   = "/realmhook/events"
	DefaultGatewayMaxBodyBytes = 10 << 20
	DefaultGatewayTimeout      = 30 * time.Second
)

// ByteSize is a size in bytes, written as an integer or with a unit:
// "10MiB", "512KiB", "1MB" (decimal), "2GB".
type ByteSize int64

// UnmarshalYAML reads an integer or a size with a unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a size")
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// ParseByteSize reads "10MiB", "1MB", "65536".
func ParseByteSize(s string) (ByteSize, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil || n > 1<<62 {
		return 0, fmt.Errorf("invalid size %q (want bytes or a number with a unit, e.g. 10MiB)", s)
	}
	return ByteSize(n), nil
}

func (c *Config) applyGatewayDefaults() {
	g := c.Gateway
	if g == nil {
		return
	}
	setString(&g.EventsPath, DefaultGatewayEventsPath)
	if g.MaxBodyBytes == 0 {
		g.MaxBodyBytes = DefaultGatewayMaxBodyBytes
	}
	setDuration(&g.Timeout, DefaultGatewayTimeout)
}

func (c *Config) validateGateway() error {
	g := c.Gateway
	if g == nil {
		for _, key := range realmOrder(c.Realms) {
			if c.Realms[key].Upstream != "" {
				return invalidf("realms."+key+".upstream", "set without a gateway section")
			}
		}
		return nil
	}
	if g.Upstream != "" {
		if err := checkHTTPURL("gateway.upstream", g.Upstream); err != nil {
			return err
		}
	}
	for _, key := range realmOrder(c.Realms) {
		if u := c.Realms[key].Upstream; u != "" {
			if err := checkHTTPURL("realms."+key+".upstream", u); err != nil {
				return err
			}
		}
	}
	if g.Upstream == "" {
		for _, key := range c.ServedRealms() {
			if c.Realms[key].Upstream == "" {
				return invalidf("gateway.upstream", "required (realm %s has no realms.%s.upstream)", key, key)
			}
		}
	}
	if g.IdentitySecret == "" {
		return invalidf("gateway.identitySecret", "required (write it as ${VAR})")
	}
	if _, err := identitytoken.NewKey(g.IdentitySecret); err != nil {
		return invalidf("gateway.identitySecret", "too short: want at least %d bytes", identitytoken.MinSecretBytes)
	}
	for i, p := range g.Public {
		if err := checkPublicPattern(p); err != nil {
			return invalidf("gateway.public["+strconv.Itoa(i)+"]", "%v", err)
		}
	}
	if !strings.HasPrefix(g.EventsPath, "/") || strings.ContainsAny(g.EventsPath, "?#") {
		return invalidf("gateway.eventsPath", "want a path starting with /, got %q", g.EventsPath)
	}
	if g.EgressListen != "" {
		if _, port, err := net.SplitHostPort(g.EgressListen); err != nil {
			return invalidf("gateway.egressListen", "want host:port, got %q", g.EgressListen)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return invalidf("gateway.egressListen", "invalid port %q", port)
		}
	}
	if g.MaxBodyBytes < 1 {
		return invalidf("gateway.maxBodyBytes", "must be at least 1 byte, got %d", g.MaxBodyBytes)
	}
	return positive("gateway.timeout", g.Timeout)
}

// checkPublicPattern accepts an absolute path pattern whose segments are
// plain or globs; dot segments could never match a request (the gateway
// refuses them), so a pattern with one is a mistake.
func checkPublicPattern(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("want a path starting with /, got %q", p)
	}
	if !doublestar.ValidatePattern(p) {
		return fmt.Errorf("invalid pattern %q", p)
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("pattern %q has a dot segment", p)
		}
	}
	if _, err := url.PathUnescape(p); err != nil || strings.ContainsAny(p, "?#") {
		return fmt.Errorf("pattern %q is not a plain path", p)
	}
	return nil
}

// Upstream is the upstream URL for realm key: its own, or gateway.upstream;
// empty without a gateway.
func (c *Config) Upstream(key string) string {
	if c.Gateway == nil {
		return ""
	}
	if u := c.Realms[key].Upstream; u != "" {
		return u
	}
	return c.Gateway.Upstream
}
