package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const identitySecret = "0123456789abcdef0123456789abcdef"

const gatewayYAML = minimalYAML + `  EU:
    baseUrl: https://eu.example.com
gateway:
  upstream: http://127.0.0.1:3000
  identitySecret: ${IDS}
`

var gatewayEnv = env{"IDS": identitySecret}

func TestGateway_AbsentMeansNone(t *testing.T) {
	cfg := mustParse(t, minimalYAML, nil)
	if cfg.Gateway != nil {
		t.Fatalf("Gateway = %+v, want nil", cfg.Gateway)
	}
	if u := cfg.Upstream("global"); u != "" {
		t.Errorf("Upstream(global) = %q without a gateway", u)
	}
}

func TestGateway_Defaults(t *testing.T) {
	g := mustParse(t, gatewayYAML, gatewayEnv).Gateway
	want := &Gateway{Upstream: "http://127.0.0.1:3000", IdentitySecret: identitySecret,
		EventsPath: "/realmhook/events", MaxBodyBytes: 10 << 20, Timeout: 30 * time.Second}
	if !reflect.DeepEqual(g, want) {
		t.Errorf("got  %+v\nwant %+v", g, want)
	}
}

func TestGateway_ReadsValues(t *testing.T) {
	src := minimalYAML + `  EU:
    baseUrl: https://eu.example.com
    upstream: http://eu-app.internal:3000/app
gateway:
  upstream: http://127.0.0.1:3000
  identitySecret: ${IDS}
  public: ["/static/**", "/favicon.ico", "/p/*/x"]
  eventsPath: /hooks/events
  egressListen: 127.0.0.1:8082
  maxBodyBytes: 512KiB
  timeout: 5s
`
	cfg := mustParse(t, src, gatewayEnv)
	want := &Gateway{Upstream: "http://127.0.0.1:3000", IdentitySecret: identitySecret,
		Public: []string{"/static/**", "/favicon.ico", "/p/*/x"}, EventsPath: "/hooks/events",
		EgressListen: "127.0.0.1:8082", MaxBodyBytes: 512 << 10, Timeout: 5 * time.Second}
	if !reflect.DeepEqual(cfg.Gateway, want) {
		t.Errorf("got  %+v\nwant %+v", cfg.Gateway, want)
	}
	if u := cfg.Upstream("EU"); u != "http://eu-app.internal:3000/app" {
		t.Errorf("Upstream(EU) = %q, want the realm's override", u)
	}
	if u := cfg.Upstream("global"); u != "http://127.0.0.1:3000" {
		t.Errorf("Upstream(global) = %q, want gateway.upstream", u)
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"10MiB": 10 << 20, "1MB": 1_000_000, "65536": 65536, "2 KiB": 2048, "1GiB": 1 << 30} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ten", "-1", "10XB", "1e3MiB"} {
		if got, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestGateway_Errors(t *testing.T) {
	gw := func(lines ...string) string {
		return minimalYAML + "gateway:\n  " + strings.Join(lines, "\n  ") + "\n"
	}
	up, sec := "upstream: http://127.0.0.1:3000", "identitySecret: ${IDS}"
	tests := []struct {
		name, src, want string
	}{
		{"UnknownKey", gw(up, sec, "upstreams: x"), "config: gateway.upstreams: unknown key"},
		{"SecretMissing", gw(up), "config: gateway.identitySecret: required"},
		{"SecretShort", gw(up, "identitySecret: "+identitySecret[:31]), "config: gateway.identitySecret: too short: want at least 32 bytes"},
		{"UpstreamMissing", gw(sec), "config: gateway.upstream: required (realm global has no realms.global.upstream)"},
		{"UpstreamNotURL", gw("upstream: 127.0.0.1:3000", sec), "config: gateway.upstream: must be an absolute http(s) URL"},
		{"UpstreamQuery", gw("upstream: http://a/?x=1", sec), "config: gateway.upstream: must not have a query"},
		{"RealmUpstreamBad", "realms:\n  global: {baseUrl: https://a.example.com, upstream: ftp://x}\ngateway: {identitySecret: ${IDS}}\n",
			"config: realms.global.upstream: must be an absolute http(s) URL"},
		{"RealmUpstreamWithoutGateway", "realms:\n  global: {baseUrl: https://a.example.com, upstream: http://x}\n",
			"config: realms.global.upstream: set without a gateway section"},
		{"PublicRelative", gw(up, sec, `public: ["static/**"]`), `config: gateway.public[0]: want a path starting with /`},
		{"PublicDotSegment", gw(up, sec, `public: ["/a", "/static/../x"]`), `config: gateway.public[1]: pattern "/static/../x" has a dot segment`},
		{"PublicBadGlob", gw(up, sec, `public: ["/static/[x"]`), `config: gateway.public[0]: invalid pattern`},
		{"PublicNotList", gw(up, sec, `public: /static/**`), `config: gateway.public: want a list`},
		{"EventsPathRelative", gw(up, sec, "eventsPath: events"), `config: gateway.eventsPath: want a path starting with /`},
		{"EgressListenBad", gw(up, sec, "egressListen: localhost"), `config: gateway.egressListen: want host:port`},
		{"MaxBodyBytesBad", gw(up, sec, "maxBodyBytes: lots"), `config: gateway.maxBodyBytes: invalid size "lots"`},
		{"MaxBodyBytesNegative", gw(up, sec, "maxBodyBytes: -5"), `config: gateway.maxBodyBytes: invalid size "-5"`},
		{"TimeoutBad", gw(up, sec, "timeout: 30"), `config: gateway.timeout: invalid duration "30"`},
		{"TimeoutNegative", gw(up, sec, "timeout: -1s"), `config: gateway.timeout: must be positive`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse([]byte(tt.src), gatewayEnv.lookup)
			mustFailWith(t, err, tt.want)
		})
	}
}

// TestGateway_EveryRealmItsOwnUpstream: gateway.upstream may be left out
// when every served realm names its own.
func TestGateway_EveryRealmItsOwnUpstream(t *testing.T) {
	src := "serve: [EU]\ninternal: {secret: 0123456789abcdef}\nrealms:\n  global: {baseUrl: https://a.example.com, internalUrl: http://global.internal:7000}\n  EU: {baseUrl: https://eu.example.com, upstream: http://eu:3000}\ngateway: {identitySecret: ${IDS}}\n"
	if u := mustParse(t, src, gatewayEnv).Upstream("EU"); u != "http://eu:3000" {
		t.Errorf("Upstream(EU) = %q", u)
	}
}

func TestGateway_SecretNotEchoed(t *testing.T) {
	short := "short-secret-do-not-echo"
	_, err := parse([]byte(minimalYAML+"gateway: {upstream: http://a, identitySecret: ${IDS}}\n"), env{"IDS": short}.lookup)
	mustFailWith(t, err, "gateway.identitySecret")
	if strings.Contains(err.Error(), short) {
		t.Errorf("error %q echoes the secret", err)
	}
}
