package connectjwt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The reference canonicalizer is atlassian-jwt 2.0.3 (npm), run by
// testdata/refjs/refjs.js. Its vectors are committed in testdata/qsh_vectors.json
// (`make qsh-vectors` regenerates them), so every run checks them without node;
// TestCanonicalRequest_ReferenceLive also asks the library itself about a
// freshly seeded corpus when node and the script's node_modules are there.

const (
	refjsDir    = "testdata/refjs"
	vectorsFile = "testdata/qsh_vectors.json"
)

type referenceVector struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Query     string `json:"query"`
	BaseURL   string `json:"baseUrl"`
	Canonical string `json:"canonical"`
	QSH       string `json:"qsh"`
}

type referenceVectors struct {
	Library string            `json:"library"`
	Seed    int64             `json:"seed"`
	Vectors []referenceVector `json:"vectors"`
}

func decodeVectors(t *testing.T, data []byte) referenceVectors {
	t.Helper()
	var v referenceVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode vectors: %v", err)
	}
	if v.Library != "atlassian-jwt 2.0.3" {
		t.Fatalf("vectors come from %q, want atlassian-jwt 2.0.3 (docs/protocol.md)", v.Library)
	}
	if len(v.Vectors) < 100 {
		t.Fatalf("only %d vectors", len(v.Vectors))
	}
	return v
}

// checkVectors compares CanonicalRequest with the reference on every vector,
// the base path given as the base URL's path as sent. (A realm trims one
// trailing "/" from its configured base URL, and publishes and verifies
// against the trimmed URL alike, so the host's base and ours stay the same.)
func checkVectors(t *testing.T, v referenceVectors) {
	t.Helper()
	failures := 0
	for i, vec := range v.Vectors {
		base, err := url.Parse(vec.BaseURL)
		if err != nil {
			t.Fatalf("vector %d: base URL %q: %v", i, vec.BaseURL, err)
		}
		got := CanonicalRequest(vec.Method, vec.Path, vec.Query, base.EscapedPath())
		if got == vec.Canonical && QSH(got) == vec.QSH {
			continue
		}
		failures++
		if failures <= 20 {
			t.Errorf("vector %d (seed %d): %s %q ? %q at base %q:\n got %q\nwant %q",
				i, v.Seed, vec.Method, vec.Path, vec.Query, vec.BaseURL, got, vec.Canonical)
		}
	}
	if failures > 0 {
		t.Errorf("%d of %d vectors differ from %s", failures, len(v.Vectors), v.Library)
	}
}

func TestCanonicalRequest_ReferenceVectors(t *testing.T) {
	data, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	checkVectors(t, decodeVectors(t, data))
}

// TestCanonicalRequest_ReferenceLive runs the reference library on a corpus
// seeded afresh each run. .ci/run installs the script's node_modules (npm ci),
// so under CI a missing node or library fails instead of skipping.
func TestCanonicalRequest_ReferenceLive(t *testing.T) {
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(refjsDir, "node_modules", "atlassian-jwt", "package.json"))
	}
	if err != nil {
		msg := fmt.Sprintf("reference library not runnable (%v); run `npm ci` in connectjwt/%s", err, refjsDir)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	seed := time.Now().UnixNano() % 1_000_000_007
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(node, "refjs.js", "generate", "--seed", fmt.Sprint(seed), "--count", "3000")
	cmd.Dir = refjsDir
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("refjs.js: %v\n%s", err, stderr.String())
		}
		t.Fatal(err)
	}
	t.Logf("seed %d (rerun: node %s/refjs.js generate --seed %d --count 3000)", seed, refjsDir, seed)
	checkVectors(t, decodeVectors(t, stdout.Bytes()))
}
