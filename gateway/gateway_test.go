package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/identitytoken"
)

func mustProxy(t *testing.T, public ...string) *Proxy {
	t.Helper()
	p, err := New(Options{Public: public, Key: identitytoken.Key("0123456789abcdef0123456789abcdef"),
		Error: func(http.ResponseWriter, *http.Request, error) {}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPublic(t *testing.T) {
	p := mustProxy(t, "/static/**", "/favicon.ico", "/p/*/x", "/img/*.png")
	tests := []struct {
		path string
		want bool
	}{
		{"/static", true},
		{"/static/", true},
		{"/static/app.js", true},
		{"/static/a/b/c.css", true},
		{"/staticx", false},
		{"/staticx/a", false},
		{"/favicon.ico", true},
		{"/favicon.ico/x", false},
		{"/favicon.icox", false},
		{"/p/one/x", true},
		{"/p/one/two/x", false},
		{"/img/a.png", true},
		{"/img/a/b.png", false},
		{"/", false},
		{"/admin", false},
	}
	for _, tt := range tests {
		if got := p.Public(tt.path); got != tt.want {
			t.Errorf("Public(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestNew_Refuses(t *testing.T) {
	errFn := func(http.ResponseWriter, *http.Request, error) {}
	key := identitytoken.Key("0123456789abcdef0123456789abcdef")
	for name, o := range map[string]Options{
		"NoError":      {Key: key},
		"ShortKey":     {Key: identitytoken.Key("short"), Error: errFn},
		"BadPattern":   {Key: key, Error: errFn, Public: []string{"/a/[x"}},
		"RelativePath": {Key: key, Error: errFn, Public: []string{"static/**"}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestCheckPath(t *testing.T) {
	tests := []struct {
		target string
		ok     bool
	}{
		{"/a/b", true},
		{"/", true},
		{"/a/.../b", true},
		{"/a/.b/c.", true},
		{"/a%20b", true},
		{"/a/../b", false},
		{"/a/./b", false},
		{"/a/..", false},
		{"/a/.", false},
		{"/a/%2e%2e/b", false},
		{"/a/%2E./b", false},
		{"/a/.%2e", false},
		{"/a/%2e/b", false},
		{"/a%2fb", false},
		{"/a%2Fb", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", tt.target, nil)
		err := CheckPath(r)
		if (err == nil) != tt.ok {
			t.Errorf("CheckPath(%q) = %v, want ok %v", tt.target, err, tt.ok)
		}
		if err != nil && realmhook.ErrorCode(err) != realmhook.EINVALID {
			t.Errorf("CheckPath(%q): code %s, want EINVALID", tt.target, realmhook.ErrorCode(err))
		}
	}
}

func TestRelativePath(t *testing.T) {
	tests := []struct{ target, base, path, raw string }{
		{"/realms/eu/page", "/realms/eu", "/page", "/page"},
		{"/realms/eu", "/realms/eu", "/", "/"},
		{"/realms/eu/a%20b", "/realms/eu", "/a b", "/a%20b"},
		{"/page", "", "/page", "/page"},
	}
	for _, tt := range tests {
		path, raw := RelativePath(httptest.NewRequest("GET", tt.target, nil), tt.base)
		if path != tt.path || raw != tt.raw {
			t.Errorf("RelativePath(%q, %q) = %q, %q; want %q, %q", tt.target, tt.base, path, raw, tt.path, tt.raw)
		}
	}
}
