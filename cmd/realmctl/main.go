// Command realmctl is realmhook's operator CLI: it prints and checks the app
// descriptor, emulates the host's migration service, and asks a realmhook
// process's admin API about its realms, tenants and migrations.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/realmhook/realmhook"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// runFunc is one subcommand. It writes results to stdout and diagnostics to
// stderr. What it returns decides the exit code: nil or errHelp → 0, a
// usageError (from usagef) → 2, anything else → 1; Main prints the error
// unless it is errReported.
type runFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// command is one entry of the dispatch table.
type command struct {
	run     runFunc
	summary string
}

// commands maps the first argument to its subcommand.
var commands = map[string]command{
	"descriptor": {runDescriptor, "print the app descriptor built from config, or lint one (descriptor lint FILE)"},
	"host":       {runHost, "emulate the host's data residency migration service"},
	"manifest":   {runManifest, "print the Forge manifest.yml snippet built from config, or lint one (manifest lint FILE)"},
	"version":    {runVersion, "print realmctl's version"},
	"realms":     {runRealms, "list the realms with their probed health and tenant counts (admin API)"},
	"tenants":    {runTenants, "list tenants, by realm and state (admin API)"},
	"tenant":     {runTenant, "show a tenant's records and migrations (admin API)"},
	"migrations": {runMigrations, "list migrations with progress; --watch draws live progress bars (admin API)"},
	"migration":  {runMigration, "show a migration and its events (admin API)"},
	"purge":      {runPurge, "delete a moved tenant's leftover copy now (admin API)"},
	"rehearse":   {runRehearse, "copy a tenant into another realm, verify and discard it: will its move fit the window? (admin API)"},
	"wait":       {runWait, "wait until each URL answers 200 (wait http://localhost:8080/readyz)"},
}

func runVersion(_ context.Context, _ []string, stdout, _ io.Writer) error {
	fmt.Fprintln(stdout, "realmctl", realmhook.Version())
	return nil
}

// errReported tells Main the subcommand already explained its failure, so it
// exits 1 without printing more.
var errReported = errors.New("failure already reported")

// errHelp tells Main the subcommand printed the help that was asked for.
var errHelp = errors.New("help requested")

// usageError is a bad command line: Main prints it (unless the flag package
// already did) and exits 2.
type usageError struct {
	msg     string
	printed bool
}

func (e *usageError) Error() string { return e.msg }

// usagef returns a usageError; subcommands use it for bad arguments.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Main runs realmctl with args (without the program name) and returns the
// exit code, so tests run the real program in-process.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		printUsage(stdout)
		return exitOK
	}
	name := args[0]
	if name == "-version" || name == "--version" {
		name = "version"
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "realmctl: unknown command %q\n\n", args[0])
		printUsage(stderr)
		return exitUsage
	}
	err := cmd.run(ctx, args[1:], stdout, stderr)
	var usage *usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &usage):
		if usage.printed {
			return exitUsage
		}
		fmt.Fprintf(stderr, "realmctl %s: %s (see realmctl %s -h)\n", args[0], usage.msg, args[0])
		return exitUsage
	case errors.Is(err, errReported):
		return exitFailure
	}
	fmt.Fprintf(stderr, "realmctl %s: %s\n", args[0], errorText(err))
	return exitFailure
}

// errorText is what an operator reads: a domain error's message without its
// machine code, any other error whole.
func errorText(err error) string {
	if e, ok := err.(*realmhook.Error); ok {
		return e.Message
	}
	return err.Error()
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `realmctl is the operator CLI of realmhook.

Usage:
  realmctl <command> [arguments]

Commands:
`)
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-11s %s\n", name, commands[name].summary)
	}
	fmt.Fprint(w, `
Run "realmctl <command> -h" for a command's flags.
Exit codes: 0 ok, 1 failure, 2 bad usage.
`)
}
