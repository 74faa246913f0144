package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/realmhook/realmhook/config"
	"github.com/realmhook/realmhook/descriptor"
)

// runDescriptor prints the descriptor realmhook would serve for a config (the
// embedded default when no --config is given), or with "lint FILE" checks a
// descriptor file.
func runDescriptor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "lint" {
		return runDescriptorLint(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("descriptor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "realmhook config `FILE` (default: the built-in embedded shape)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage:
  realmctl descriptor [--config FILE]   print the descriptor built from config
  realmctl descriptor lint FILE         check a descriptor; one line per problem

`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	cfg := config.Default()
	if *configPath != "" {
		var err error
		if cfg, err = config.Load(*configPath); err != nil {
			return err
		}
	}
	b, err := descriptor.FromConfig(cfg)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

// runDescriptorLint prints "PATH: MESSAGE" for every problem Lint finds
// ("PATH: warning: MESSAGE" for an advisory one) and fails if any is not
// advisory; else it prints "ok". A template is said to be one first, since
// what it is checked for differs.
func runDescriptorLint(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("descriptor lint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage:\n  realmctl descriptor lint FILE\n\n"+
			"FILE is a built descriptor (what the host reads) or a template (baseUrl \"{{baseUrl}}\",\n"+
			"as the repository's atlassian-connect.json). Exit 1 when there is an error; warnings\n"+
			"are what `realmctl host conformance` would fail but realmhook accepts.\n")
	}
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
	if descriptor.IsTemplate(b) {
		fmt.Fprintln(stdout, "template: realmhook fills in baseUrl, regionBaseUrls, apiMigrations.signed-install and missing lifecycle hooks")
	}
	errs := 0
	for _, p := range descriptor.Lint(b) {
		if p.Advisory {
			fmt.Fprintf(stdout, "%s: warning: %s\n", p.Path, p.Message)
			continue
		}
		errs++
		fmt.Fprintf(stdout, "%s: %s\n", p.Path, p.Message)
	}
	if errs > 0 {
		return errReported
	}
	_, err = fmt.Fprintln(stdout, "ok")
	return err
}

// parseFlags parses args, mapping -h to errHelp and any other flag error
// (already printed by the flag package) to a usage failure.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		return errHelp
	}
	return &usageError{msg: err.Error(), printed: true}
}
