package config

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// expandError is a ${VAR} reference that cannot be expanded, with where it
// is so Load can name the key: a flow-style map puts several keys on a line.
type expandError struct {
	Line   int // 1-based
	Column int // 1-based, in characters, of the "${"
	Var    string
	Msg    string
}

func (e *expandError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// quoting is the YAML scalar style the lexer is inside at a point of the text.
type quoting int

const (
	unquoted quoting = iota
	doubleQuoted
	singleQuoted
)

// expandEnv replaces ${VAR} and ${VAR:-default} in YAML text with values from
// lookup, before the text is parsed, so that any value (a number, a list in
// flow style) can come from the environment. "$${" is a literal "${". Comments
// are left alone, so a commented-out reference to an unset variable is no
// error. Inside a quoted scalar the value is escaped for that quoting, so a
// secret written as "${SECRET}" stays one string whatever characters it holds;
// unquoted, the value is inserted as is and may carry YAML structure.
func expandEnv(src []byte, lookup func(string) (string, bool)) ([]byte, error) {
	var out strings.Builder
	out.Grow(len(src))
	state := unquoted
	lines := strings.SplitAfter(string(src), "\n")
	for n, line := range lines {
		lineNo := n + 1
		for i := 0; i < len(line); i++ {
			c := line[i]
			if strings.HasPrefix(line[i:], "$${") {
				out.WriteString("${")
				i += 2
				continue
			}
			if strings.HasPrefix(line[i:], "${") {
				end := strings.IndexByte(line[i:], '}')
				if end < 0 {
					return nil, &expandError{Line: lineNo, Column: column(line, i), Msg: "unterminated ${ (write $${ for a literal ${)"}
				}
				val, err := lookupRef(line[i+2:i+end], lineNo, lookup)
				if err != nil {
					err.Column = column(line, i)
					return nil, err
				}
				out.WriteString(escapeFor(state, val))
				i += end
				continue
			}
			switch state {
			case unquoted:
				if c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
					out.WriteString(line[i:])
					i = len(line)
					continue
				}
				if (c == '"' || c == '\'') && startsScalar(line[:i]) {
					if c == '"' {
						state = doubleQuoted
					} else {
						state = singleQuoted
					}
				}
			case doubleQuoted:
				if c == '\\' && i+1 < len(line) {
					out.WriteByte(c)
					i++
					c = line[i]
				} else if c == '"' {
					state = unquoted
				}
			case singleQuoted:
				if c == '\'' {
					if i+1 < len(line) && line[i+1] == '\'' {
						out.WriteString("''")
						i++
						continue
					}
					state = unquoted
				}
			}
			out.WriteByte(c)
		}
	}
	return []byte(out.String()), nil
}

// lookupRef resolves the inside of one ${...}: NAME or NAME:-default. The
// default applies when the variable is unset or empty, as in the shell.
func lookupRef(ref string, line int, lookup func(string) (string, bool)) (string, *expandError) {
	name, def, hasDef := strings.Cut(ref, ":-")
	if !validVarName(name) {
		return "", &expandError{Line: line, Var: name, Msg: fmt.Sprintf("invalid variable reference ${%s}", ref)}
	}
	if v, ok := lookup(name); ok && (v != "" || !hasDef) {
		return v, nil
	}
	if hasDef {
		return def, nil
	}
	return "", &expandError{Line: line, Var: name, Msg: fmt.Sprintf("environment variable %s is not set (write ${%s:-default} for a default)", name, name)}
}

// column is the 1-based column, in characters as YAML counts them, of byte
// offset i of line.
func column(line string, i int) int { return utf8.RuneCountInString(line[:i]) + 1 }

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// startsScalar reports whether a quote after prefix opens a quoted scalar
// rather than sitting inside a plain one (as in "it's").
func startsScalar(prefix string) bool {
	p := strings.TrimRight(prefix, " \t")
	if p == "" {
		return true
	}
	switch p[len(p)-1] {
	case ':', '-', '[', '{', ',', '?':
		return true
	}
	return false
}

// escapeFor escapes v so that it reads back as itself inside the given quoting.
func escapeFor(q quoting, v string) string {
	switch q {
	case doubleQuoted:
		var b strings.Builder
		for _, r := range v {
			switch r {
			case '\\':
				b.WriteString(`\\`)
			case '"':
				b.WriteString(`\"`)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			default:
				if r < 0x20 || r == 0x7f {
					fmt.Fprintf(&b, `\x%02x`, r)
				} else {
					b.WriteRune(r)
				}
			}
		}
		return b.String()
	case singleQuoted:
		return strings.ReplaceAll(v, "'", "''")
	}
	return v
}
