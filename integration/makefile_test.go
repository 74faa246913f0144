package integration

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestMakefile: `make help` lists every target the Makefile declares, from
// its `## name:` comments; lint is part of CI; and no target installs system
// packages itself (that is for .ci/run or the user).
func TestMakefile(t *testing.T) {
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	phony := regexp.MustCompile(`(?m)^\.PHONY:(.*)$`).FindSubmatch(mk)
	if phony == nil {
		t.Fatal("Makefile has no .PHONY line")
	}
	out, err := exec.Command("make", "-s", "-C", "..", "help").CombinedOutput()
	if err != nil {
		t.Fatalf("make help: %v\n%s", err, out)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			listed[f[0]] = true
		}
	}
	for _, target := range strings.Fields(string(phony[1])) {
		if !listed[target] {
			t.Errorf("make help does not list %q (give it a `## %s: …` comment)", target, target)
		}
	}
	for _, want := range []string{"lint", "clean", "help"} {
		if !listed[want] {
			t.Errorf("no make %s", want)
		}
	}
	if regexp.MustCompile(`(?m)^\t[^#]*\bapt-get (update|install -y)`).Match(mk) {
		t.Error("a Makefile recipe runs apt-get; say what it needs instead")
	}
	ci, err := os.ReadFile("../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^make .*\blint\b`).Match(ci) {
		t.Error(".ci/run does not run make lint")
	}
}
