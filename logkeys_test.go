package realmhook_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// errorKey finds a log/slog call that names its error attribute "error"; the
// project's key is "err", so one query finds every logged error.
var errorKey = regexp.MustCompile(`(slog\.(String|Any)\("error"|\.(Debug|Info|Warn|Error|Log)\(.*"error", )`)

func TestLogKeys_ErrorAttributeIsErr(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(src), "\n") {
			if errorKey.MatchString(line) {
				t.Errorf("%s:%d logs the error as \"error\"; use \"err\": %s", path, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
