package postgres

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// copyText runs COPY ... FROM STDIN in the text format, fed by src through
// a pipe: each value goes as its text, which the server reads with the
// column type's own input function, so a value of any type PostgreSQL
// stores (a range, money, an interval, an array, an enum...) arrives as the
// source printed it.
func copyText(ctx context.Context, tx pgx.Tx, quotedTable string, names []string, src *copySource) (int64, error) {
	cols := make([]string, len(names))
	for i, n := range names {
		cols[i] = pgx.Identifier{n}.Sanitize()
	}
	sql := "COPY " + quotedTable + " (" + strings.Join(cols, ", ") + ") FROM STDIN"
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 0, 64<<10)
		var err error
		for src.Next() {
			var vals []any
			if vals, err = src.Values(); err != nil {
				break
			}
			for i, v := range vals {
				if i > 0 {
					buf = append(buf, '\t')
				}
				if buf, err = appendCopyText(buf, src.cols[src.write[i]], v); err != nil {
					src.rowErr = err
					break
				}
			}
			if err != nil {
				break
			}
			buf = append(buf, '\n')
			if len(buf) >= 60<<10 {
				if _, err = pw.Write(buf); err != nil {
					break
				}
				buf = buf[:0]
			}
		}
		if err == nil {
			err = src.Err()
		}
		if err == nil && len(buf) > 0 {
			_, err = pw.Write(buf)
		}
		pw.CloseWithError(err)
	}()
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, pr, sql)
	// The feeder may be mid-write when the server gave up: closing the
	// reader ends its write, and it is waited for so that it never calls
	// src's callback after CopyRows returned.
	pr.Close()
	<-done
	return tag.RowsAffected(), err
}

// appendCopyText appends v, as toColumn returns it, in COPY's text format.
func appendCopyText(buf []byte, c column, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(buf, `\N`...), nil
	case string:
		return appendCopyEscaped(buf, x), nil
	case int64:
		return strconv.AppendInt(buf, x, 10), nil
	case int:
		return strconv.AppendInt(buf, int64(x), 10), nil
	case float32:
		return appendFloat(buf, float64(x), 32), nil
	case float64:
		return appendFloat(buf, x, 64), nil
	case bool:
		if x {
			return append(buf, 't'), nil
		}
		return append(buf, 'f'), nil
	case []byte:
		buf = append(buf, `\\x`...)
		return hex.AppendEncode(buf, x), nil
	case time.Time:
		return appendTime(buf, c.kind, x), nil
	case pgtype.Timestamptz:
		return appendInfinity(buf, x.InfinityModifier), nil
	case pgtype.Timestamp:
		return appendInfinity(buf, x.InfinityModifier), nil
	case pgtype.Date:
		return appendInfinity(buf, x.InfinityModifier), nil
	case pgtype.UUID:
		return fmt.Appendf(buf, "%x-%x-%x-%x-%x", x.Bytes[0:4], x.Bytes[4:6], x.Bytes[6:8], x.Bytes[8:10], x.Bytes[10:16]), nil
	}
	return nil, fmt.Errorf("column %s (%s): no text form for %T", c.name, c.typ, v)
}

// appendCopyEscaped escapes what COPY's text format treats specially.
func appendCopyEscaped(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			buf = append(buf, '\\', '\\')
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, c)
		}
	}
	return buf
}

func appendFloat(buf []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(buf, "NaN"...)
	case math.IsInf(f, 1):
		return append(buf, "Infinity"...)
	case math.IsInf(f, -1):
		return append(buf, "-Infinity"...)
	}
	return strconv.AppendFloat(buf, f, 'g', -1, bits)
}

func appendInfinity(buf []byte, m pgtype.InfinityModifier) []byte {
	if m == pgtype.NegativeInfinity {
		return append(buf, "-infinity"...)
	}
	return append(buf, "infinity"...)
}

// appendTime writes t (UTC) as PostgreSQL reads it whatever its DateStyle:
// ISO order, microseconds, an explicit +00 for timestamptz, and BC for the
// years before 1 (Go's year 0 is 1 BC).
func appendTime(buf []byte, k kind, t time.Time) []byte {
	t = t.UTC()
	y := t.Year()
	bc := y <= 0
	if bc {
		y = 1 - y
	}
	buf = fmt.Appendf(buf, "%04d-%02d-%02d", y, int(t.Month()), t.Day())
	if k != kindDate {
		buf = fmt.Appendf(buf, " %02d:%02d:%02d.%06d", t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1000)
		if k == kindTimestamptz {
			buf = append(buf, "+00"...)
		}
	}
	if bc {
		buf = append(buf, " BC"...)
	}
	return buf
}
