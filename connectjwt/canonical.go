// Package connectjwt verifies and signs Atlassian Connect JWTs: the canonical
// request and its qsh, HS256 host calls, RS256 signed install, and signing for
// tools and tests.
package connectjwt

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ContextQSH is the fixed qsh of tokens minted for the app's own frontend; such
// a token is not bound to a request, so hooks must refuse it.
const ContextQSH = "context-qsh"

// CanonicalRequest builds the string a qsh hashes: METHOD&path&query, as the
// host computes it (atlassian-jwt's createCanonicalRequest).
//
// method may be any case. rawPath is the path as received, not decoded
// (RequestPath(r)); rawQuery is r.URL.RawQuery; basePath is the path of the
// base URL the call was made to ("/realms/eu", or "" or "/" for none), which is
// stripped from the front of rawPath.
//
// It is differential-tested against the reference, atlassian-jwt 2.0.3
// (testdata/refjs, reference_test.go), and differs from it on purpose here:
//   - A base path not ending in "/" is stripped only on a segment boundary:
//     the reference turns "/ctxfoo" under base "/ctx" into "/foo". A realm's
//     routes only see paths under its base on a boundary anyway.
//   - A path equal to a base path without its trailing "/" ("/ctx" under
//     "/ctx/") is "/"; the reference keeps "/ctx". No route answers there.
//   - The path is hashed as received. The reference first passes it through
//     node's legacy url.parse, which turns "\" into "/", cuts at "#",
//     escapes whitespace, and off its fast path (a path holding "@", a query
//     holding a space) percent-encodes " ' < > ^ ` { | }: rewrites that depend
//     on unrelated parts of the URL, and that a host encoding its URL (as
//     RFC 3986 requires) never triggers.
//   - Every query parameter is hashed; the reference (node's querystring,
//     maxKeys 1000) hashes only the first 1000, which would let parameters
//     after those ride along unsigned.
//   - Raw non-ASCII text in a query component that also holds an escape that
//     does not decode to UTF-8 ("é%FF") is kept as UTF-8; the reference's
//     fallback decoder truncates each UTF-16 unit of it to one byte.
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
	if strings.HasSuffix(basePath, "/") && strings.HasPrefix(path, basePath) {
		// The reference strips a base path that ends in "/" as it is; ending
		// in "/", it can only match on a segment boundary.
		path = path[len(basePath):]
	} else if base := strings.TrimRight(basePath, "/"); base != "" {
		// A base path of "/ctx" must not eat the front of "/ctxfoo": the host
		// signs relative to the base URL, and a non-boundary match would hash
		// a different path than the one it signed.
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
		// The reference drops __proto__ (a JavaScript object cannot hold it
		// as a key), so the host's qsh never covers it.
		if name == "jwt" || name == "__proto__" {
			continue
		}
		params[name] = append(params[name], unescapeQueryComponent(value))
	}
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	// The host sorts as JavaScript and Java sort strings, by UTF-16 code
	// unit, which orders U+10000 and above before U+E000–U+FFFF.
	slices.SortFunc(names, compareUTF16)

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
		slices.SortFunc(values, compareUTF16)
		for j, v := range values {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(encodeRFC3986(v))
		}
	}
	return b.String()
}

// compareUTF16 orders strings by their UTF-16 code units, as JavaScript's
// default sort and Java's String.compareTo do. s and t are valid UTF-8.
func compareUTF16(s, t string) int {
	for s != "" && t != "" {
		rs, ns := utf8.DecodeRuneInString(s)
		rt, nt := utf8.DecodeRuneInString(t)
		if rs != rt {
			return cmp.Compare(utf16Key(rs), utf16Key(rt))
		}
		s, t = s[ns:], t[nt:]
	}
	return cmp.Compare(len(s), len(t))
}

// utf16Key maps a rune to its UTF-16 code units, first unit high, so keys
// compare as the code unit sequences do.
func utf16Key(r rune) uint32 {
	if r < 0x10000 {
		return uint32(r) << 16
	}
	hi, lo := utf16.EncodeRune(r)
	return uint32(hi)<<16 | uint32(lo)
}

// unescapeQueryComponent decodes like node's querystring.unescape, which the
// reference uses: '+' is a space, valid %XX escapes are decoded, a malformed
// escape stays literal instead of failing, and the bytes are then read as
// UTF-8 with each invalid sequence replaced by U+FFFD (so %FF is hashed as
// %EF%BF%BD, as Atlassian's Java host does too).
func unescapeQueryComponent(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return decodeUTF8Replacing(s)
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
	return decodeUTF8Replacing(string(b))
}

// decodeUTF8Replacing returns s with every invalid UTF-8 sequence replaced by
// U+FFFD the way the WHATWG Encoding Standard's decoder (node's Buffer, and
// so the reference) does: one U+FFFD per maximal subpart of an ill-formed
// sequence. Go's utf8 package and strings.ToValidUTF8 count differently (per
// byte, or per run), which would hash "%E2%82" or "%E2%82%E2" otherwise.
func decodeUTF8Replacing(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	var (
		cp           rune
		needed, seen int
		lower, upper byte = 0x80, 0xBF
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needed == 0 {
			switch {
			case c <= 0x7F:
				b.WriteByte(c)
			case 0xC2 <= c && c <= 0xDF:
				needed, cp = 1, rune(c&0x1F)
			case 0xE0 <= c && c <= 0xEF:
				if c == 0xE0 {
					lower = 0xA0
				} else if c == 0xED {
					upper = 0x9F
				}
				needed, cp = 2, rune(c&0x0F)
			case 0xF0 <= c && c <= 0xF4:
				if c == 0xF0 {
					lower = 0x90
				} else if c == 0xF4 {
					upper = 0x8F
				}
				needed, cp = 3, rune(c&0x07)
			default:
				b.WriteRune(utf8.RuneError)
			}
			continue
		}
		if c < lower || c > upper {
			// The sequence so far is one maximal subpart; c starts anew.
			b.WriteRune(utf8.RuneError)
			cp, needed, seen, lower, upper = 0, 0, 0, 0x80, 0xBF
			i--
			continue
		}
		lower, upper = 0x80, 0xBF
		cp = cp<<6 | rune(c&0x3F)
		if seen++; seen == needed {
			b.WriteRune(cp)
			cp, needed, seen = 0, 0, 0
		}
	}
	if needed != 0 {
		b.WriteRune(utf8.RuneError)
	}
	return b.String()
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
