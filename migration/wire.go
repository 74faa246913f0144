package migration

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/realmhook/realmhook/store"
)

// The canonical row encoding the checksum hashes is also how rows cross
// between realms' processes: it tags every value with its type and carries
// its exact payload, so a row decodes to the very values that were encoded
// and hashes alike on both sides.

// AppendRow appends the canonical encoding of r to buf. int, int32 and
// float32 values encode as int64 and float64 do.
func AppendRow(buf []byte, r store.Row) ([]byte, error) { return appendRow(buf, r) }

// errShortRow: an encoding ends inside a row.
var errShortRow = errors.New("row encoding ends early")

// DecodeRow decodes the row at the start of b and returns it and how many
// bytes it took. Strings and byte slices are copied out of b.
func DecodeRow(b []byte) (store.Row, int, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, 0, errShortRow
	}
	off := k
	r := make(store.Row, n)
	for i := range r {
		v, used, err := decodeValue(b[off:])
		if err != nil {
			return nil, 0, fmt.Errorf("column %d: %w", i, err)
		}
		r[i] = v
		off += used
	}
	return r, off, nil
}

// DecodeRows decodes b, whole, as rows, for a batch that crossed the wire:
// the values share memory with b and one string copy of it, so a batch of
// thousands of rows costs a few allocations per row, not one per value. b
// must not be changed afterwards.
func DecodeRows(b []byte) ([]store.Row, error) {
	text := string(b)
	var rows []store.Row
	off := 0
	for off < len(b) {
		n, k := binary.Uvarint(b[off:])
		if k <= 0 || n > uint64(len(b)-off) {
			return nil, fmt.Errorf("row %d: %w", len(rows), errShortRow)
		}
		off += k
		r := make(store.Row, n)
		for i := range r {
			v, used, err := decodeShared(b, text, off)
			if err != nil {
				return nil, fmt.Errorf("row %d, column %d: %w", len(rows), i, err)
			}
			r[i] = v
			off += used
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// decodeShared is decodeValue of the value at b[off:], with strings cut
// from text (b as a string) and byte slices from b rather than copied.
func decodeShared(b []byte, text string, off int) (any, int, error) {
	if off < len(b) && (b[off] == tagString || b[off] == tagBytes) {
		n, k := binary.Uvarint(b[off+1:])
		if k <= 0 || n > uint64(len(b)-off-1-k) {
			return nil, 0, errShortRow
		}
		start, end := off+1+k, off+1+k+int(n)
		if b[off] == tagString {
			return text[start:end], end - off, nil
		}
		return b[start:end:end], end - off, nil
	}
	return decodeValue(b[off:])
}

func decodeValue(b []byte) (any, int, error) {
	if len(b) == 0 {
		return nil, 0, errShortRow
	}
	fixed := func(n int) ([]byte, error) {
		if len(b) < 1+n {
			return nil, errShortRow
		}
		return b[1 : 1+n], nil
	}
	switch b[0] {
	case tagNil:
		return nil, 1, nil
	case tagInt:
		p, err := fixed(8)
		if err != nil {
			return nil, 0, err
		}
		return int64(binary.BigEndian.Uint64(p)), 9, nil
	case tagFloat:
		p, err := fixed(8)
		if err != nil {
			return nil, 0, err
		}
		return math.Float64frombits(binary.BigEndian.Uint64(p)), 9, nil
	case tagString, tagBytes:
		n, k := binary.Uvarint(b[1:])
		if k <= 0 || n > uint64(len(b)-1-k) {
			return nil, 0, errShortRow
		}
		p := b[1+k : 1+k+int(n)]
		if b[0] == tagString {
			return string(p), 1 + k + int(n), nil
		}
		return append([]byte{}, p...), 1 + k + int(n), nil
	case tagBool:
		p, err := fixed(1)
		if err != nil {
			return nil, 0, err
		}
		if p[0] > 1 {
			return nil, 0, fmt.Errorf("bool byte %d", p[0])
		}
		return p[0] == 1, 2, nil
	case tagTime:
		p, err := fixed(12)
		if err != nil {
			return nil, 0, err
		}
		sec, nsec := int64(binary.BigEndian.Uint64(p[:8])), binary.BigEndian.Uint32(p[8:])
		if nsec >= 1e9 {
			return nil, 0, fmt.Errorf("nanoseconds %d", nsec)
		}
		return time.Unix(sec, int64(nsec)).UTC(), 13, nil
	case tagInf:
		p, err := fixed(1)
		if err != nil {
			return nil, 0, err
		}
		if inf := store.Infinity(int8(p[0])); inf == 1 || inf == -1 {
			return inf, 2, nil
		}
		return nil, 0, fmt.Errorf("infinity byte %d", p[0])
	}
	return nil, 0, fmt.Errorf("unknown type tag %q", b[0])
}

// ChecksumOf rebuilds a Checksum from its parts (Rows and Sum), as it
// crosses between realms' processes.
func ChecksumOf(rows int64, sum [16]byte) Checksum {
	return Checksum{Rows: rows, hi: binary.BigEndian.Uint64(sum[:8]), lo: binary.BigEndian.Uint64(sum[8:])}
}

type fenceKey struct{}

// WithFence returns ctx carrying a migration job's fencing token: the
// generation of the lease it holds, larger than any earlier holder's. A
// Peer of another process sends it with every write, and the target refuses
// a token lower than the highest it has seen for the migration, so a replica
// whose lease expired cannot land a write after another took over.
func WithFence(ctx context.Context, token int64) context.Context {
	return context.WithValue(ctx, fenceKey{}, token)
}

// Fence is the fencing token ctx carries (WithFence), or 0.
func Fence(ctx context.Context) int64 {
	t, _ := ctx.Value(fenceKey{}).(int64)
	return t
}
