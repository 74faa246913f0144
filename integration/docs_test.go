package integration

import (
	"io/fs"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/realmhook/realmhook/connectjwt"
)

// TestProtocolDoc_Vectors: the qsh test vectors docs/protocol.md gives are
// the ones realmhook computes, so the page cannot drift from the code.
func TestProtocolDoc_Vectors(t *testing.T) {
	b, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "| method | URL | base URL | canonical request | qsh |")
	if !ok {
		t.Fatal("docs/protocol.md has no test vector table")
	}
	n := 0
	for _, line := range strings.Split(table, "\n")[2:] {
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 5 {
			t.Fatalf("vector row %q: want 5 cells", line)
		}
		for i := range cells {
			cells[i] = strings.Trim(strings.TrimSpace(cells[i]), "`")
		}
		method, rawURL, baseURL, canonical, qsh := cells[0], cells[1], cells[2], cells[3], cells[4]
		u, err := url.Parse(rawURL)
		if err != nil {
			t.Fatal(err)
		}
		base, err := url.Parse(baseURL)
		if err != nil {
			t.Fatal(err)
		}
		if got := connectjwt.CanonicalRequest(method, u.EscapedPath(), u.RawQuery, base.EscapedPath()); got != canonical {
			t.Errorf("%s %s: canonical request %q, the page says %q", method, rawURL, got, canonical)
		}
		if got := connectjwt.RequestQSH(httptest.NewRequest(method, rawURL, nil), base.EscapedPath()); got != qsh {
			t.Errorf("%s %s: qsh %s, the page says %s", method, rawURL, got, qsh)
		}
		n++
	}
	if n != 4 {
		t.Fatalf("%d vectors in docs/protocol.md, want 4", n)
	}
}

// TestProtocolDoc_Cited: code cites docs/protocol.md, which is in the
// repository, not the notes it was written from, which are not.
func TestProtocolDoc_Cited(t *testing.T) {
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "PROTOCOL"+".md") {
			t.Errorf("%s cites %s; cite docs/protocol.md", path, "PROTOCOL"+".md")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
