package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/realmhook/realmhook/config"
	"github.com/realmhook/realmhook/manifest"
)

// runManifest prints the Forge manifest.yml snippet for a config with
// forge.appId, or lints a manifest.yml (manifest lint FILE).
func runManifest(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "lint" {
		return runManifestLint(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("manifest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "realmhook config `FILE` with forge.appId set")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage:
  realmctl manifest --config FILE   print the manifest.yml parts that make realmhook the app's Forge remote
  realmctl manifest lint FILE       check a manifest.yml's remotes and migration:dataResidency module

`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *configPath == "" {
		return usagef("--config FILE is required (a config with forge.appId)")
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		return err
	}
	m, err := manifest.FromConfig(cfg)
	if err != nil {
		return err
	}
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	_, err = stdout.Write(b)
	return err
}

// runManifestLint prints "PATH: MESSAGE" for every problem and fails if
// there is one; else it prints "ok".
func runManifestLint(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("manifest lint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), "Usage:\n  realmctl manifest lint FILE\n") }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("lint takes exactly one FILE, got %d arguments", fs.NArg())
	}
	b, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("lint: %w", err)
	}
	problems := manifest.Lint(b)
	for _, p := range problems {
		fmt.Fprintln(stdout, p)
	}
	if len(problems) > 0 {
		return errReported
	}
	_, err = fmt.Fprintln(stdout, "ok")
	return err
}
