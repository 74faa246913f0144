package migration

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/realmhook/realmhook/store"
)

// Checksum summarises a tenant's rows in one table independently of their
// order: the row count and the sum, modulo 2^128, of the first 128 bits of each
// row's SHA-256. Both sides of a migration compute it the same way, so equal
// checksums mean equal row multisets (up to a hash collision).
type Checksum struct {
	Rows int64
	// hi and lo are the 128-bit sum, big-endian halves.
	hi, lo uint64
}

// Add folds one row into the checksum.
func (c *Checksum) Add(r store.Row) error {
	_, err := c.add(nil, r)
	return err
}

// add is Add encoding into scratch, which it returns for reuse, so that a scan
// of a million rows does not allocate a million buffers.
func (c *Checksum) add(scratch []byte, r store.Row) ([]byte, error) {
	buf, err := appendRow(scratch[:0], r)
	if err != nil {
		return scratch, err
	}
	h := sha256.Sum256(buf)
	hi, lo := binary.BigEndian.Uint64(h[0:8]), binary.BigEndian.Uint64(h[8:16])
	var carry uint64
	c.lo, carry = addCarry(c.lo, lo)
	c.hi += hi + carry
	c.Rows++
	return buf, nil
}

// merge folds d, a checksum of other rows, into c: the checksum of a table is
// the merge of its parts' checksums, whatever the split.
func (c *Checksum) merge(d Checksum) {
	var carry uint64
	c.lo, carry = addCarry(c.lo, d.lo)
	c.hi += d.hi + carry
	c.Rows += d.Rows
}

func addCarry(a, b uint64) (sum, carry uint64) {
	sum = a + b
	if sum < a {
		carry = 1
	}
	return sum, carry
}

// Sum returns the 128-bit sum as 16 big-endian bytes.
func (c Checksum) Sum() [16]byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[0:8], c.hi)
	binary.BigEndian.PutUint64(b[8:16], c.lo)
	return b
}

// String renders the checksum for logs and failure messages.
func (c Checksum) String() string {
	s := c.Sum()
	return fmt.Sprintf("%d rows/%s", c.Rows, hex.EncodeToString(s[:]))
}

// TableChecksum computes the checksum of a tenant's rows of table t over the
// given columns, streaming them so memory stays flat in the tenant's size. The
// transfer API's server side uses it too, so it is exported.
//
// The rows are hashed in a goroutine of their own, a chunk at a time, while
// the scan goes on: on SQLite the driver's per-column calls and the hashing
// cost about the same, and doing them side by side is what keeps a
// verification well under the copy's time.
func TableChecksum(ctx context.Context, s store.Store, t store.Table, columns []string, clientKey string) (Checksum, error) {
	return tableChecksum(ctx, s, t, columns, clientKey, nil)
}

// tableChecksum is TableChecksum of the rows as conv (when not nil)
// converts them: the source's rows in the target's terms.
func tableChecksum(ctx context.Context, s store.Reader, t store.Table, columns []string, clientKey string, conv func(store.Row) error) (Checksum, error) {
	n := len(columns)
	if n == 0 {
		return Checksum{}, fmt.Errorf("checksum %s: no columns", t.Name)
	}
	// Three chunks circulate: one filling, one hashing, one spare.
	free := make(chan []any, 3)
	for range cap(free) {
		free <- make([]any, 0, checksumChunkRows*n)
	}
	full := make(chan []any, cap(free))
	var c Checksum
	var hashErr error
	var failed atomic.Bool
	hashed := make(chan struct{})
	go func() {
		defer close(hashed)
		scratch := make([]byte, 0, 512)
		for vals := range full {
			for i := 0; i+n <= len(vals) && hashErr == nil; i += n {
				r := store.Row(vals[i : i+n : i+n])
				if conv != nil {
					if hashErr = conv(r); hashErr != nil {
						failed.Store(true)
						break
					}
				}
				if scratch, hashErr = c.add(scratch, r); hashErr != nil {
					failed.Store(true)
				}
			}
			clear(vals) // no chunk keeps a scanned value alive
			free <- vals[:0]
		}
	}()
	errHashing := errors.New("hashing failed")
	chunk := <-free
	err := s.ScanRows(ctx, t, columns, clientKey, func(r store.Row) error {
		if failed.Load() {
			return errHashing
		}
		// The backend may reuse r, so its values are copied out.
		chunk = append(chunk, r...)
		if len(chunk) >= checksumChunkRows*n {
			full <- chunk
			chunk = <-free
		}
		return nil
	})
	if err == nil && len(chunk) > 0 {
		full <- chunk
	}
	close(full)
	<-hashed
	if hashErr != nil {
		return Checksum{}, fmt.Errorf("checksum %s: %w", t.Name, hashErr)
	}
	if err != nil {
		return Checksum{}, fmt.Errorf("checksum %s: %w", t.Name, err)
	}
	return c, nil
}

// checksumChunkRows is how many rows TableChecksum hands its hasher at once.
const checksumChunkRows = 1024

// Type tags of the canonical row encoding. Values of different Go types never
// encode alike, so a column read back as text instead of bytes is a mismatch.
const (
	tagNil    byte = 'n'
	tagInt    byte = 'i'
	tagFloat  byte = 'f'
	tagString byte = 's'
	tagBytes  byte = 'b'
	tagBool   byte = 'B'
	tagTime   byte = 't'
	tagInf    byte = 'I'
)

// appendRow appends the canonical encoding of r: the value count, then per
// value a type tag and a fixed-size or length-prefixed payload, so that no two
// different rows share an encoding.
func appendRow(buf []byte, r store.Row) ([]byte, error) {
	buf = binary.AppendUvarint(buf, uint64(len(r)))
	for i, v := range r {
		var err error
		if buf, err = appendValue(buf, v); err != nil {
			return nil, fmt.Errorf("column %d: %w", i, err)
		}
	}
	return buf, nil
}

func appendValue(buf []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(buf, tagNil), nil
	case int64:
		return binary.BigEndian.AppendUint64(append(buf, tagInt), uint64(x)), nil
	case int:
		return appendValue(buf, int64(x))
	case int32:
		return appendValue(buf, int64(x))
	case float64:
		return binary.BigEndian.AppendUint64(append(buf, tagFloat), math.Float64bits(x)), nil
	case float32:
		return appendValue(buf, float64(x))
	case string:
		buf = binary.AppendUvarint(append(buf, tagString), uint64(len(x)))
		return append(buf, x...), nil
	case []byte:
		buf = binary.AppendUvarint(append(buf, tagBytes), uint64(len(x)))
		return append(buf, x...), nil
	case bool:
		b := byte(0)
		if x {
			b = 1
		}
		return append(buf, tagBool, b), nil
	case time.Time:
		// The instant, not the zone: backends return UTC, but an equal instant
		// must hash alike whatever zone a driver attached.
		buf = binary.BigEndian.AppendUint64(append(buf, tagTime), uint64(x.Unix()))
		return binary.BigEndian.AppendUint32(buf, uint32(x.Nanosecond())), nil
	case store.Infinity:
		return append(buf, tagInf, byte(x)), nil
	default:
		return nil, fmt.Errorf("unsupported value type %T", v)
	}
}
