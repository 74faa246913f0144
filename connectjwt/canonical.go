// Package connectjwt verifies and signs Atlassian Connect JWTs: the canonical
// request and its qsh, HS256 host calls, RS256 signed install, and signing for
// tools and tests.
package connectjwt

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sort"
	"strings"
)

// ContextQSH is the fixed qsh of tokens minted for the app's own frontend; such
// a token is not bound to a request, so hooks must refuse it.
const ContextQSH = "context-qsh"

// CanonicalRequest builds the string a qsh hashes: METHOD&path&query, as the
// host computes it (atlassian-jwt's createCanonicalRequest).
//
// method may be any case. rawPath is the path as received, not decoded
// (r.URL.EscapedPath()); rawQuery is r.URL.RawQuery; basePath is the path of the
// base URL the call was made to ("/realms/eu", or "" or "/" for none), which is
// stripped from the front of rawPath when it ends on a segment boundary.
func CanonicalRequest(method, rawPath, rawQuery, basePath string) string {
	return strings.ToUpper(method) + "&" + canonicalPath(rawPath, basePath) + "&" + canonicalQuery(rawQuery)
}

// RequestPath returns the path of an incoming request as received: the
// request-target's path with the percent-encoding the client sent, which is
// what the client hashed. r.URL.EscapedPath() is not that: when the target
// holds bytes Go would have escaped (raw non-ASCII, | " ^ { …) it re-escapes
// the whole path from its decoded form. Requests built in-process without a
// RequestURI fall back to EscapedPath.
func RequestPath(r *http.Request) string {
	uri := r.RequestURI
	if uri == "" || uri == "*" {
		if r.URL == nil {
			return ""
		}
		return r.URL.EscapedPath()
	}
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i]
	}
	if !strings.HasPrefix(uri, "/") {
		// absolute-form (RFC 9112 §3.2.2): scheme://authority/path
		if _, rest, ok := strings.Cut(uri, "://"); ok {
			if j := strings.IndexByte(rest, '/'); j >= 0 {
				return rest[j:]
			}
			return ""
		}
	}
	return uri
}

// QSH returns the query string hash of a canonical request: lowercase hex SHA-256.
func QSH(canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return hex.EncodeToString(sum[:])
}

func canonicalPath(rawPath, basePath string) string {
	path := rawPath
	// A base path of "/ctx" must not eat the front of "/ctxfoo": the host signs
	// relative to the base URL, and a non-boundary match would hash a different
	// path than the one it signed.
	if base := strings.TrimRight(basePath, "/"); base != "" {
		if path == base {
			path = ""
		} else if strings.HasPrefix(path, base+"/") {
			path = path[len(base):]
		}
	}
	if path == "" {
		return "/"
	}
	// An unescaped & in the path would read as the separator and let
	// "/p&a=b?x=y" and "/p?a=b&x=y" share a qsh.
	path = strings.ReplaceAll(path, "&", "%26")
	if path[0] != '/' {
		path = "/" + path
	}
	if len(path) > 1 && path[len(path)-1] == '/' {
		path = path[:len(path)-1]
	}
	return path
}

func canonicalQuery(rawQuery string) string {
	if rawQuery == "" {
		return ""
	}
	params := make(map[string][]string)
	for _, pair := range strings.Split(rawQuery, "&") {
		if pair == "" {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		name = unescapeQueryComponent(name)
		if name == "jwt" {
			continue
		}
		params[name] = append(params[name], unescapeQueryComponent(value))
	}
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	sort.Strings(names)

	var b strings.Builder
	for i, name := range names {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(encodeRFC3986(name))
		b.WriteByte('=')
		values := params[name]
		// The host sorts the decoded values before encoding them, and the
		// order differs from sorting encoded ones (e.g. "-" vs "/").
		sort.Strings(values)
		for j, v := range values {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(encodeRFC3986(v))
		}
	}
	return b.String()
}

// unescapeQueryComponent decodes like node's querystring.unescape: '+' is a
// space, valid %XX escapes are decoded, and a malformed escape stays literal
// instead of failing, so a token for an odd URL still gets a qsh to compare.
func unescapeQueryComponent(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func encodeRFC3986(s string) string {
	const upperHex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&0x0f])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
