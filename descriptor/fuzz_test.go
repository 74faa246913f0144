package descriptor

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// FuzzLint: Lint never panics, reads the same twice, names a JSON path for
// every problem, and Validate refuses exactly when Lint finds a problem that
// is not advisory; whatever passes is valid JSON that Parse reads.
func FuzzLint(f *testing.F) {
	if golden, err := os.ReadFile("testdata/default.golden.json"); err == nil {
		f.Add(golden)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"key":"a","name":"n","baseUrl":"https://a.example.com","regionBaseUrls":{"EU":"https://eu.a.example.com","XX":"ftp://x"},"dataResidency":{"maxMigrationDurationHours":0.25}}`))
	f.Add([]byte(`{"lifecycle":{"dare-migration":"/m"},"apiMigrations":{"signed-install":"yes"}}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(`{"key":"a"} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		problems := Lint(b)
		if again := Lint(b); !slices.Equal(problems, again) {
			t.Fatalf("Lint is not deterministic: %v then %v", problems, again)
		}
		hard := false
		for _, p := range problems {
			if p.Path == "" || p.Message == "" {
				t.Fatalf("problem without a path or message: %+v", p)
			}
			hard = hard || !p.Advisory
		}
		err := Validate(b)
		if (err != nil) != hard {
			t.Fatalf("Validate = %v, but hard problems = %v (%v)", err, hard, problems)
		}
		if err == nil {
			if !json.Valid(b) {
				t.Fatalf("Validate passed invalid JSON %q", b)
			}
			if _, err := Parse(b); err != nil {
				t.Fatalf("Validate passed what Parse refuses: %v", err)
			}
		}
	})
}
