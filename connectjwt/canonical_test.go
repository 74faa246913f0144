package connectjwt

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// protocolVectors is the table in docs/protocol.md, computed by the host's library.
var protocolVectors = []struct {
	name, method, url, baseURL, canonical, qsh string
}{
	{
		name:      "RepeatedAndUnsorted",
		method:    "GET",
		url:       "http://localhost:2990/path/to/service?zee_last=param&repeated=parameter%201&first=param&repeated=parameter%202",
		baseURL:   "http://localhost:2990",
		canonical: "GET&/path/to/service&first=param&repeated=parameter%201,parameter%202&zee_last=param",
		qsh:       "e52bb281606c3bd9ca16cfe96fe2df78f5d9ffa126f06befd750dfa10fa1a897",
	},
	{
		name:      "UpperCaseSortsFirst",
		method:    "GET",
		url:       "http://localhost:2990/path/to/service?a=1&A=2&b=3&B=4",
		baseURL:   "http://localhost:2990",
		canonical: "GET&/path/to/service&A=2&B=4&a=1&b=3",
		qsh:       "70282c7cf82834bd5a3d6dacda1b4ccd5cf5860a63a1fa2fb86b64d576e6a1d5",
	},
	{
		name:      "BasePathStripped",
		method:    "POST",
		url:       "https://app.example.com/ctx/installed",
		baseURL:   "https://app.example.com/ctx",
		canonical: "POST&/installed&",
		qsh:       "4a2e1de8ca74e6cafe8862d332fa3ac7a8e51e692bc6d798ea4dfedc14948bf4",
	},
	{
		name:      "Root",
		method:    "GET",
		url:       "https://app.example.com/",
		baseURL:   "https://app.example.com",
		canonical: "GET&/&",
		qsh:       "c88caad15a1c1a900b8ac08aa9686f4e8184539bea1deda36e2f649430df3239",
	},
}

func TestCanonicalRequest_ProtocolVectors(t *testing.T) {
	for _, tt := range protocolVectors {
		t.Run(tt.name, func(t *testing.T) {
			u := mustParseURL(t, tt.url)
			base := mustParseURL(t, tt.baseURL)

			got := CanonicalRequest(tt.method, u.EscapedPath(), u.RawQuery, base.EscapedPath())
			if got != tt.canonical {
				t.Errorf("CanonicalRequest = %q, want %q", got, tt.canonical)
			}
			if q := QSH(got); q != tt.qsh {
				t.Errorf("QSH = %s, want %s", q, tt.qsh)
			}
			r := httptest.NewRequest(tt.method, tt.url, nil)
			if q := RequestQSH(r, base.EscapedPath()); q != tt.qsh {
				t.Errorf("RequestQSH = %s, want %s", q, tt.qsh)
			}
		})
	}
}

func TestCanonicalRequest_Rules(t *testing.T) {
	tests := []struct {
		name                                string
		method, rawPath, rawQuery, basePath string
		want                                string
	}{
		{"MethodUpperCased", "post", "/a", "", "", "POST&/a&"},
		{"EmptyPath", "GET", "", "", "", "GET&/&"},
		{"PathEqualsBase", "GET", "/realms/eu", "", "/realms/eu", "GET&/&"},
		{"PathEqualsBaseWithSlash", "GET", "/realms/eu/", "", "/realms/eu", "GET&/&"},
		{"BaseWithTrailingSlash", "GET", "/realms/eu/x", "", "/realms/eu/", "GET&/x&"},
		{"BaseOnlyOnSegmentBoundary", "GET", "/ctxfoo/x", "", "/ctx", "GET&/ctxfoo/x&"},
		{"BaseSlashStripsNothing", "GET", "/a/b", "", "/", "GET&/a/b&"},
		{"BaseNotAPrefix", "GET", "/other/x", "", "/ctx", "GET&/other/x&"},
		{"OneTrailingSlashRemoved", "GET", "/a/b//", "", "", "GET&/a/b/&"},
		{"LeadingSlashAdded", "GET", "a/b", "", "", "GET&/a/b&"},
		{"AmpersandInPathEscaped", "GET", "/a&b", "", "", "GET&/a%26b&"},
		{"PathNotDecoded", "GET", "/a%2Fb%20c", "", "", "GET&/a%2Fb%20c&"},
		{"JWTDropped", "GET", "/", "jwt=abc.def.ghi&x=1", "", "GET&/&x=1"},
		{"OnlyJWT", "GET", "/", "jwt=abc", "", "GET&/&"},
		{"PlusIsSpace", "GET", "/", "q=a+b", "", "GET&/&q=a%20b"},
		{"EncodedPlusStaysPlus", "GET", "/", "q=a%2Bb", "", "GET&/&q=a%2Bb"},
		{"StarEncoded", "GET", "/", "q=*", "", "GET&/&q=%2A"},
		{"ReservedEncodedUpperHex", "GET", "/", "q=%2f%3a!'()", "", "GET&/&q=%2F%3A%21%27%28%29"},
		{"UnreservedKept", "GET", "/", "q=aZ09-._~", "", "GET&/&q=aZ09-._~"},
		{"NameEncoded", "GET", "/", "a%20b=1", "", "GET&/&a%20b=1"},
		{"NameWithoutValue", "GET", "/", "flag", "", "GET&/&flag="},
		{"EmptyPairsSkipped", "GET", "/", "&&a=1&&", "", "GET&/&a=1"},
		{"MalformedEscapeKeptLiteral", "GET", "/", "q=%zz&r=%4", "", "GET&/&q=%25zz&r=%254"},
		{"UTF8Encoded", "GET", "/", "q=%C3%A9", "", "GET&/&q=%C3%A9"},
		{"CommaInValueEncoded", "GET", "/", "q=a,b", "", "GET&/&q=a%2Cb"},
		// Decoded "-" (0x2D) sorts before "/" (0x2F), though encoded "%2F" would sort first.
		{"ValuesSortedDecoded", "GET", "/", "v=%2F&v=-", "", "GET&/&v=-,%2F"},
		{"RepeatedNameMixedOrder", "GET", "/", "b=2&a=1&b=1", "", "GET&/&a=1&b=1,2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CanonicalRequest(tt.method, tt.rawPath, tt.rawQuery, tt.basePath); got != tt.want {
				t.Errorf("CanonicalRequest(%q, %q, %q, %q) = %q, want %q", tt.method, tt.rawPath, tt.rawQuery, tt.basePath, got, tt.want)
			}
		})
	}
}

func FuzzCanonicalRequest(f *testing.F) {
	for _, v := range protocolVectors {
		u, err := url.Parse(v.url)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v.method, u.EscapedPath(), u.RawQuery, "")
	}
	f.Add("post", "/realms/eu/x&y/", "jwt=t&a=%zz&a=+&b", "/realms/eu")
	f.Add("GET", "", "=&==&%", "/")

	f.Fuzz(func(t *testing.T, method, rawPath, rawQuery, basePath string) {
		got := CanonicalRequest(method, rawPath, rawQuery, basePath)
		if again := CanonicalRequest(method, rawPath, rawQuery, basePath); again != got {
			t.Fatalf("not deterministic: %q then %q", got, again)
		}
		prefix := strings.ToUpper(method) + "&"
		if !strings.HasPrefix(got, prefix) {
			t.Fatalf("%q does not start with %q", got, prefix)
		}
		path, query, ok := strings.Cut(strings.TrimPrefix(got, prefix), "&")
		if !ok {
			t.Fatalf("%q has no separator after the path", got)
		}
		if path == "" || path[0] != '/' {
			t.Fatalf("path part %q is empty or lacks a leading /", path)
		}
		if len(path) > 1 && strings.HasSuffix(path, "/") && !strings.HasSuffix(strings.TrimSuffix(rawPath, "/"), "/") {
			t.Fatalf("path part %q keeps a trailing / though %q had only one", path, rawPath)
		}
		mustBeCanonicalQuery(t, query)

		segments := strings.Split(rawQuery, "&")
		slices.Reverse(segments)
		if reordered := CanonicalRequest(method, rawPath, strings.Join(segments, "&"), basePath); reordered != got {
			t.Fatalf("reordering the query changed the result: %q vs %q", reordered, got)
		}
		if withJWT := CanonicalRequest(method, rawPath, rawQuery+"&jwt=x.y.z", basePath); withJWT != got {
			t.Fatalf("adding a jwt parameter changed the result: %q vs %q", withJWT, got)
		}
		if q := QSH(got); len(q) != 64 || strings.Trim(q, "0123456789abcdef") != "" {
			t.Fatalf("QSH %q is not 64 lowercase hex digits", q)
		}
	})
}

// mustBeCanonicalQuery fails unless q is name=value pairs of unreserved
// characters and upper-case %XX escapes, values joined by ",".
func mustBeCanonicalQuery(t *testing.T, q string) {
	t.Helper()
	if q == "" {
		return
	}
	var names []string
	for _, pair := range strings.Split(q, "&") {
		name, values, ok := strings.Cut(pair, "=")
		if !ok {
			t.Fatalf("query %q: pair %q has no =", q, pair)
		}
		names = append(names, name)
		for _, part := range append([]string{name}, strings.Split(values, ",")...) {
			for i := 0; i < len(part); i++ {
				switch c := part[i]; {
				case isUnreserved(c):
				case c == '%' && i+2 < len(part) && strings.ContainsRune("0123456789ABCDEF", rune(part[i+1])) && strings.ContainsRune("0123456789ABCDEF", rune(part[i+2])):
					i += 2
				default:
					t.Fatalf("query %q: %q is not RFC 3986 encoded at byte %d", q, part, i)
				}
			}
		}
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] == names[i] {
			t.Fatalf("query %q: name %q appears twice", q, names[i])
		}
	}
}

func mustParseURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return u
}

// TestCanonicalRequest_DeliberateDifferences pins realmhook's answer where it
// differs from atlassian-jwt 2.0.3 on purpose (CanonicalRequest lists why);
// the reference's answer is in each comment.
func TestCanonicalRequest_DeliberateDifferences(t *testing.T) {
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprintf("k%04d=1", i)
	}
	tests := []struct {
		name                                string
		method, rawPath, rawQuery, basePath string
		want                                string
	}{
		{"BaseOffSegmentBoundary", "GET", "/ctxfoo/x", "", "/ctx", "GET&/ctxfoo/x&"},                            // reference: GET&/foo/x&
		{"PathIsBaseWithoutItsSlash", "GET", "/ctx", "", "/ctx/", "GET&/&"},                                     // reference: GET&/ctx&
		{"BackslashKept", "GET", `/a\b`, "", "", `GET&/a\b&`},                                                   // reference: GET&/a/b&
		{"PipeAfterAtKept", "GET", "/a@b|c", "", "", "GET&/a@b|c&"},                                             // reference: GET&/a@b%7Cc&
		{"NonASCIIWithUndecodableEscape", "GET", "/p", "q=é%FF", "", "GET&/p&q=%C3%A9%EF%BF%BD"},                // reference: q=%EF%BF%BD%EF%BF%BD
		{"EveryParameterHashed", "GET", "/p", strings.Join(many, "&"), "", "GET&/p&" + strings.Join(many, "&")}, // reference: the first 1000
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CanonicalRequest(tt.method, tt.rawPath, tt.rawQuery, tt.basePath); got != tt.want {
				t.Errorf("CanonicalRequest(%q, %q, %q, %q) = %q, want %q", tt.method, tt.rawPath, tt.rawQuery, tt.basePath, got, tt.want)
			}
		})
	}
}

func TestCompareUTF16(t *testing.T) {
	// JavaScript: ["\uFF61", "\u{1F600}", "\uE000", "é"].sort() puts U+1F600
	// (a surrogate pair, 0xD83D…) before U+E000.
	got := []string{"\uFF61", "\U0001F600", "\uE000", "é", "", "e"}
	slices.SortFunc(got, compareUTF16)
	want := []string{"", "e", "é", "\U0001F600", "\uE000", "\uFF61"}
	if !slices.Equal(got, want) {
		t.Fatalf("sorted %q, want %q", got, want)
	}
}

func TestDecodeUTF8Replacing(t *testing.T) {
	// One U+FFFD per maximal subpart, as the WHATWG decoder (node's Buffer) does.
	for in, want := range map[string]string{
		"ok é":             "ok é",
		"\xff":             "\uFFFD",
		"\xe2\x82":         "\uFFFD",
		"\xe2\x82A":        "\uFFFDA",
		"\xc0\xaf":         "\uFFFD\uFFFD",
		"\xed\xa0\x80":     "\uFFFD\uFFFD\uFFFD",
		"\xf4\x90\x80\x80": "\uFFFD\uFFFD\uFFFD\uFFFD",
		"\xf0\x9f\x98":     "\uFFFD",
		"a\xe2\x82\xe2":    "a\uFFFD\uFFFD",
	} {
		if got := decodeUTF8Replacing(in); got != want {
			t.Errorf("decodeUTF8Replacing(%q) = %q, want %q", in, got, want)
		}
	}
}
