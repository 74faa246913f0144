package integration

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeBlock returns the first fenced block of lang after heading in the
// README.
func readmeBlock(t *testing.T, heading, lang string) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README has no heading %q", heading)
	}
	_, block, ok := strings.Cut(after, "```"+lang+"\n")
	if !ok {
		t.Fatalf("README: no ```%s block after %q", lang, heading)
	}
	block, _, ok = strings.Cut(block, "```\n")
	if !ok {
		t.Fatalf("README: the ```%s block after %q does not end", lang, heading)
	}
	return block
}

// TestREADME_Quickstart pastes the README's quickstart block as a whole into
// bash, in a copy of the repository, twice (the second paste must work as
// the first did), and checks that every command succeeds but the one that
// shows the 421.
//
// The block binds the ports it names (8080, 8941). Where the kernel allows
// an unprivileged network namespace (and `ip` is there to bring its loopback
// up) the block runs in one of its own, so it cannot collide with anything
// on the machine; elsewhere the ports must be free.
func TestREADME_Quickstart(t *testing.T) {
	block := readmeBlock(t, "## Quickstart: a tenant, its data, and a migration EU → US", "sh")
	dir := mustCopyRepo(t)

	// Every command that fails is reported with its line; the ERR trap does
	// not end the script, just as a person's shell goes on.
	script := "set -o errtrace\ntrap 'echo \"README-FAILED line $LINENO: exit $?\"' ERR\n" + block
	scriptPath := filepath.Join(t.TempDir(), "quickstart.sh")
	if err := os.WriteFile(scriptPath, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	isolated := canIsolateNetwork()
	if !isolated {
		for _, addr := range []string{"127.0.0.1:8080", "127.0.0.1:8941"} {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatalf("the quickstart needs %s free (no network namespace here to give it its own): %v", addr, err)
			}
			ln.Close()
		}
	}
	for paste := 1; paste <= 2; paste++ {
		out := runQuickstart(t, dir, scriptPath, isolated)
		lines := strings.Split(block, "\n")
		var failed []string
		for _, m := range regexp.MustCompile(`README-FAILED line (\d+): exit (\d+)`).FindAllStringSubmatch(out, -1) {
			var n int
			fmt.Sscan(m[1], &n)
			line := ""
			if n-2 >= 1 && n-2 <= len(lines) {
				line = lines[n-3]
			}
			if strings.Contains(line, "# 421") && m[2] == "1" {
				continue // realmctl host call exits 1 on a non-2xx, as it says
			}
			failed = append(failed, fmt.Sprintf("exit %s: %s", m[2], line))
		}
		if len(failed) > 0 {
			t.Fatalf("paste %d: commands failed:\n%s\n\noutput:\n%s", paste, strings.Join(failed, "\n"), out)
		}
		for _, want := range []string{"now lives in US", "X-Realm: US\n", `{"hello":"world"}`, "421 Misdirected Request", `"expectedRealm":"US"`} {
			if !strings.Contains(out, want) {
				t.Fatalf("paste %d: output lacks %q:\n%s", paste, want, out)
			}
		}
	}

	// make build stamped the binaries with VERSION.
	out, err := exec.Command(filepath.Join(dir, "bin", "realmhook"), "--version").CombinedOutput()
	if err != nil || string(out) != "realmhook v0.0.0-readme\n" {
		t.Fatalf("realmhook --version after make build: %q %v", out, err)
	}
}

// runQuickstart runs the script in dir and returns its output; whatever it
// left running is killed with its process group.
func runQuickstart(t *testing.T, dir, script string, isolated bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var cmd *exec.Cmd
	if isolated {
		cmd = exec.CommandContext(ctx, "unshare", "--user", "--map-root-user", "--net",
			"bash", "-c", "ip link set lo up && exec bash "+script)
	} else {
		cmd = exec.CommandContext(ctx, "bash", script)
	}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "VERSION=v0.0.0-readme", "GOPROXY=off")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err := cmd.Run()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if err != nil {
		t.Fatalf("quickstart: %v\n%s", err, out.String())
	}
	return out.String()
}

// canIsolateNetwork reports whether a command can run in a network namespace
// of its own with its loopback up.
func canIsolateNetwork() bool {
	if _, err := exec.LookPath("ip"); err != nil {
		return false
	}
	return exec.Command("unshare", "--user", "--map-root-user", "--net", "ip", "link", "set", "lo", "up").Run() == nil
}

// mustCopyRepo copies the repository's sources (not .git, builds or data) to
// a temporary directory, so the README's commands can make and delete files
// as they please.
func mustCopyRepo(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	src, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			switch d.Name() {
			case ".git", "bin", "data", "node_modules":
				if rel != "." {
					return filepath.SkipDir
				}
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() || strings.HasSuffix(path, ".db") || d.Name() == "realmctl-host.json" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copy repository: %v", err)
	}
	return dst
}

// TestREADME_ForgeManifest: the manifest snippet the README shows is what
// realmctl manifest prints for the example config it names.
func TestREADME_ForgeManifest(t *testing.T) {
	t.Parallel()
	block := readmeBlock(t, "## Forge remote (Connect on Forge, and plain Forge)", "yaml")
	if got := mustRealmctl(t, "manifest", "--config", "../config/examples/forge.yaml"); got != block {
		t.Fatalf("README's manifest snippet:\n%s\nrealmctl manifest prints:\n%s", block, got)
	}
}

// TestREADME_ForgeQuickstart pastes the README's Forge quickstart into bash
// in a copy of the repository, as TestREADME_Quickstart does the Connect
// one, and checks that every command succeeds but the one that shows the
// 421, and that conformance passes.
func TestREADME_ForgeQuickstart(t *testing.T) {
	block := readmeBlock(t, "### Forge quickstart: an installation, its data, and a migration EU → US", "sh")
	dir := mustCopyRepo(t)
	script := "set -o errtrace\ntrap 'echo \"README-FAILED line $LINENO: exit $?\"' ERR\n" + block
	scriptPath := filepath.Join(t.TempDir(), "forge-quickstart.sh")
	if err := os.WriteFile(scriptPath, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	isolated := canIsolateNetwork()
	if !isolated {
		for _, addr := range []string{"127.0.0.1:8080", "127.0.0.1:8941"} {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatalf("the Forge quickstart needs %s free (no network namespace here to give it its own): %v", addr, err)
			}
			ln.Close()
		}
	}
	out := runQuickstart(t, dir, scriptPath, isolated)
	lines := strings.Split(block, "\n")
	for _, m := range regexp.MustCompile(`README-FAILED line (\d+): exit (\d+)`).FindAllStringSubmatch(out, -1) {
		var n int
		fmt.Sscan(m[1], &n)
		line := ""
		if n-2 >= 1 && n-2 <= len(lines) {
			line = lines[n-3]
		}
		if strings.Contains(line, "# 421") && m[2] == "1" {
			continue
		}
		t.Errorf("exit %s: %s", m[2], line)
	}
	for _, want := range []string{"in realm EU", "ok\n", "X-Realm: US\n", `{"hello":"forge"}`, "421 Misdirected Request", `"expectedRealm":"US"`,
		"PASS forge-forged-fits", "PASS forge-migration-hooks-twice", "PASS forge-served-after-commit"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}
