package migration

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/realmhook/realmhook/store"
)

// checkpoint is where an interrupted copy resumes: every table before Table is
// fully copied, and Table is copied up to and including the row whose key is
// After (nil: nothing of it yet). It is stored as JSON in Migration.Checkpoint.
type checkpoint struct {
	Table int
	After store.Row
	// Sums are the source's checksums of the rows copied so far, by table:
	// whole for the tables before Table, of the rows up to After for Table
	// (missing entries are empty). The source is frozen, so they are what
	// the source holds, and verification compares the target with them
	// instead of reading the source a second time.
	Sums []Checksum
	// Summed says Sums are kept; a checkpoint saved by a version that did not
	// keep them lacks them, and then the source is checksummed at
	// verification.
	Summed bool
}

// sum returns the checksum of table ti so far.
func (c *checkpoint) sum(ti int) Checksum {
	if ti < len(c.Sums) {
		return c.Sums[ti]
	}
	return Checksum{}
}

// withSum returns c's sums with table ti's replaced by sum and later
// tables' dropped, in a new slice.
func (c *checkpoint) withSum(ti int, sum Checksum) []Checksum {
	sums := make([]Checksum, ti+1)
	copy(sums, c.Sums)
	sums[ti] = sum
	return sums
}

type checkpointJSON struct {
	Table int        `json:"table"`
	After []keyValue `json:"after,omitempty"`
	// Sums is present (if empty) when the checkpoint keeps sums.
	Sums *[]checksumJSON `json:"sums,omitempty"`
}

type checksumJSON struct {
	Rows int64  `json:"rows"`
	Sum  string `json:"sum"` // 32 hex digits
}

// keyValue is one key value with its Go type, so that an int64 key does not
// come back as a float64 (or bytes as a string) and compare differently.
type keyValue struct {
	T string `json:"t"`
	V string `json:"v,omitempty"`
}

func encodeCheckpoint(c checkpoint) (string, error) {
	j := checkpointJSON{Table: c.Table}
	for i, v := range c.After {
		kv, err := encodeKeyValue(v)
		if err != nil {
			return "", fmt.Errorf("checkpoint key %d: %w", i, err)
		}
		j.After = append(j.After, kv)
	}
	if c.Summed {
		sums := make([]checksumJSON, len(c.Sums))
		for i, sum := range c.Sums {
			b := sum.Sum()
			sums[i] = checksumJSON{Rows: sum.Rows, Sum: hex.EncodeToString(b[:])}
		}
		j.Sums = &sums
	}
	b, err := json.Marshal(j)
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	return string(b), nil
}

// decodeCheckpoint parses a stored checkpoint; "" means the copy has not
// prepared the target yet.
func decodeCheckpoint(s string) (*checkpoint, error) {
	if s == "" {
		return nil, nil
	}
	var j checkpointJSON
	if err := json.Unmarshal([]byte(s), &j); err != nil {
		return nil, fmt.Errorf("checkpoint %q: %w", s, err)
	}
	if j.Table < 0 {
		return nil, fmt.Errorf("checkpoint %q: negative table index", s)
	}
	c := &checkpoint{Table: j.Table}
	for i, kv := range j.After {
		v, err := decodeKeyValue(kv)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %q key %d: %w", s, i, err)
		}
		c.After = append(c.After, v)
	}
	if j.Sums != nil {
		c.Summed = true
		for i, sj := range *j.Sums {
			b, err := hex.DecodeString(sj.Sum)
			if err != nil || len(b) != 16 || sj.Rows < 0 {
				return nil, fmt.Errorf("checkpoint %q: bad checksum of table %d", s, i)
			}
			c.Sums = append(c.Sums, Checksum{Rows: sj.Rows, hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])})
		}
	}
	return c, nil
}

func encodeKeyValue(v any) (keyValue, error) {
	switch x := v.(type) {
	case nil:
		return keyValue{T: "n"}, nil
	case int64:
		return keyValue{T: "i", V: strconv.FormatInt(x, 10)}, nil
	case int:
		return keyValue{T: "i", V: strconv.Itoa(x)}, nil
	case float64:
		return keyValue{T: "f", V: strconv.FormatFloat(x, 'g', -1, 64)}, nil
	case string:
		return keyValue{T: "s", V: x}, nil
	case []byte:
		return keyValue{T: "b", V: base64.StdEncoding.EncodeToString(x)}, nil
	case bool:
		return keyValue{T: "B", V: strconv.FormatBool(x)}, nil
	case time.Time:
		return keyValue{T: "t", V: x.UTC().Format(time.RFC3339Nano)}, nil
	case store.Infinity:
		return keyValue{T: "inf", V: strconv.Itoa(int(x))}, nil
	default:
		return keyValue{}, fmt.Errorf("unsupported key type %T", v)
	}
}

func decodeKeyValue(kv keyValue) (any, error) {
	switch kv.T {
	case "n":
		return nil, nil
	case "i":
		return strconv.ParseInt(kv.V, 10, 64)
	case "f":
		return strconv.ParseFloat(kv.V, 64)
	case "s":
		return kv.V, nil
	case "b":
		return base64.StdEncoding.DecodeString(kv.V)
	case "B":
		return strconv.ParseBool(kv.V)
	case "t":
		return time.Parse(time.RFC3339Nano, kv.V)
	case "inf":
		n, err := strconv.Atoi(kv.V)
		return store.Infinity(n), err
	default:
		return nil, fmt.Errorf("unknown key type tag %q", kv.T)
	}
}
