package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/realmhook/realmhook/hostsim"
)

// hostCommand is one `realmctl host` subcommand.
type hostCommand struct {
	run   func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	usage string // the usage line after "realmctl host "
	doc   string
}

var hostCommands map[string]hostCommand

func init() {
	// Filled in init: the subcommands' usage text reads this table, so a var
	// initializer would be an initialization cycle.
	hostCommands = map[string]hostCommand{
		"keys": {runHostKeys, "keys [--listen ADDR] [--advertise URL] [--state FILE]",
			"serve the host's signed-install public key at GET /<kid>, the Forge JWKS at GET " + forgeJWKSPath + " (and GET /healthz) until SIGINT/SIGTERM"},
		"forge-install": {runHostForgeInstall, "forge-install --manifest FILE [--realm REALM] [--installation ID] [--cloud-id ID] [--state FILE]",
			"deliver avi:forge:installed:app (with a FIT) to the realm's base URL of the manifest's remote and record the installation; prints its id"},
		"forge-uninstall": {runHostForgeUninstall, "forge-uninstall --installation ID [--state FILE]",
			"deliver avi:forge:uninstalled:app for a Forge installation"},
		"product": {runHostProduct, "product [--listen ADDR] [--advertise URL] [--state FILE]",
			"serve a stub of the product's REST API (GET /rest/api/3/myself, /rest/api/3/serverInfo) under each tenant's site URL, checking the app's JWT (iss = app key, qsh, the tenant's shared secret), until SIGINT/SIGTERM; tenants installed afterwards get their site URL here"},
		"install": {runHostInstall, "install --descriptor URL [--realm REALM] [--client-key K] [--keys-url URL] [--state FILE]",
			"send a signed (RS256) installed call to the realm's base URL and record the tenant"},
		"uninstall": {lifecycleCommand("uninstall", (*hostsim.Host).Uninstall), "uninstall --client-key K [--state FILE]",
			"send a signed (RS256) uninstalled call"},
		"enable": {lifecycleCommand("enable", (*hostsim.Host).Enable), "enable --client-key K [--state FILE]",
			"send the enabled call (HS256)"},
		"disable": {lifecycleCommand("disable", (*hostsim.Host).Disable), "disable --client-key K [--state FILE]",
			"send the disabled call (HS256)"},
		"call": {runHostCall, "call --client-key K [--realm REALM] METHOD PATH [BODY|@FILE]",
			"sign a request as the tenant (HS256, or a FIT for a Forge installation: K is its id) to its current realm; print status and body; non-2xx exits 1"},
		"migrate": {runHostMigrate, "migrate --client-key K --to REALM [--window 2h] [--poll 2s] [--rollback] [--cancel-after D] [--migration-id ID] [--retry-delay 5s] [--twice]",
			"play the host's migration: schedule, start, poll status, then commit or rollback"},
		"conformance": {runHostConformance, "conformance --descriptor URL [--junit FILE] [--keys-url URL | --serve-keys ADDR] [--forge --manifest FILE] [--probe none|properties] [--gateway-path PATH] [--source REALM] [--target REALM]",
			"install throwaway tenants and check the app (Connect, or with --forge a Forge remote trusting the JWKS of `host keys`) against the host's protocol; any FAIL exits 1"},
		"tenants": {runHostTenants, "tenants [--state FILE]",
			"list the tenants in the state file (secrets not shown)"},
	}
}

// runHost emulates the Atlassian host product and its data residency migration
// service against any Connect app.
func runHost(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		printHostUsage(stderr)
		return usagef("which host command?")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		printHostUsage(stdout)
		return errHelp
	}
	cmd, ok := hostCommands[args[0]]
	if !ok {
		return usagef("unknown host command %q", args[0])
	}
	return cmd.run(ctx, args[1:], stdout, stderr)
}

func printHostUsage(w io.Writer) {
	fmt.Fprint(w, `realmctl host stands in for the Atlassian host product and its data residency
migration service, against any Connect app.

Usage:
`)
	names := make([]string, 0, len(hostCommands))
	for n := range hostCommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  realmctl host %s\n      %s\n", hostCommands[n].usage, hostCommands[n].doc)
	}
	fmt.Fprintf(w, `
State (the signing key, the key server URL, tenants and their shared secrets)
lives in --state (default ./%s, mode 0600). Start "realmctl host keys"
first and point the app's installKeys.url at the URL it prints.
`, hostsim.DefaultStatePath)
}

// hostFlags are the flags every host command has.
type hostFlags struct {
	fs      *flag.FlagSet
	state   *string
	timeout *time.Duration
}

func newHostFlags(name string, stderr io.Writer) *hostFlags {
	fs := flag.NewFlagSet("host "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	hf := &hostFlags{
		fs:      fs,
		state:   fs.String("state", hostsim.DefaultStatePath, "state `FILE` (keys, key server URL, tenants)"),
		timeout: fs.Duration("timeout", hostsim.DefaultHTTPTimeout, "bound on each HTTP call"),
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage:\n  realmctl host %s\n      %s\n\n", hostCommands[name].usage, hostCommands[name].doc)
		fs.PrintDefaults()
	}
	return hf
}

// parse parses args and wants exactly nargs positional arguments (-1: any).
func (hf *hostFlags) parse(args []string, minArgs, maxArgs int) error {
	if err := parseFlags(hf.fs, args); err != nil {
		return err
	}
	if n := hf.fs.NArg(); n < minArgs || n > maxArgs {
		if maxArgs == 0 {
			return usagef("unexpected argument %q", hf.fs.Arg(0))
		}
		return usagef("want %d to %d arguments, got %d", minArgs, maxArgs, n)
	}
	return nil
}

// open opens the state file and wires the host's output.
func (hf *hostFlags) open(stdout, stderr io.Writer) (*hostsim.Host, error) {
	if *hf.timeout <= 0 {
		return nil, usagef("--timeout must be positive, got %s", *hf.timeout)
	}
	h, err := hostsim.Open(*hf.state)
	if err != nil {
		return nil, err
	}
	h.Out = stdout
	h.Client = &http.Client{Timeout: *hf.timeout}
	h.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return h, nil
}

func runHostKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	hf := newHostFlags("keys", stderr)
	listen := hf.fs.String("listen", "127.0.0.1:8941", "`ADDR` to serve the key server on")
	advertise := hf.fs.String("advertise", "", "`URL` the app reaches the key server at (default: from --listen)")
	if err := hf.parse(args, 0, 0); err != nil {
		return err
	}
	h, err := hf.open(stdout, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveKeys(ctx, h, *listen, *advertise, stdout, nil)
}

func runHostProduct(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	hf := newHostFlags("product", stderr)
	listen := hf.fs.String("listen", "127.0.0.1:8942", "`ADDR` to serve the product stub on")
	advertise := hf.fs.String("advertise", "", "`URL` the app reaches the product stub at (default: from --listen)")
	if err := hf.parse(args, 0, 0); err != nil {
		return err
	}
	h, err := hf.open(stdout, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveProduct(ctx, h, *listen, *advertise, stdout, nil)
}

// serveProduct serves h's product stub on listen until ctx ends, recording
// its URL in the state file first. ready, if not nil, is called once it
// serves.
func serveProduct(ctx context.Context, h *hostsim.Host, listen, advertise string, stdout io.Writer, ready func(url string) error) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("product stub: %w", err)
	}
	u := advertise
	if u == "" {
		u = listenURL(ln.Addr())
	}
	u = strings.TrimRight(u, "/")
	if err := h.SetProductURL(u); err != nil {
		return errors.Join(err, ln.Close())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("/", h.Product())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	shutdown := func() error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		if serr := <-done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
		return err
	}
	fmt.Fprintf(stdout, "product stub at %s; tenants installed from now on have their site at %s%s{clientKey}\n", u, u, hostsim.SitesPath)
	if ready != nil {
		err := ready(u)
		return errors.Join(err, shutdown())
	}
	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout, "product stub stopping")
		return shutdown()
	case err := <-done:
		return fmt.Errorf("product stub: %w", err)
	}
}

// serveKeys serves h's key server on listen until ctx ends, recording its URL
// in the state file. ready, if not nil, is called once it serves.
func serveKeys(ctx context.Context, h *hostsim.Host, listen, advertise string, stdout io.Writer, ready func(url string) error) error {
	kp, err := h.Keys()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("key server: %w", err)
	}
	u := advertise
	if u == "" {
		u = listenURL(ln.Addr())
	}
	u = strings.TrimRight(u, "/")
	// The URL is in the state file before the first request is answered, so
	// that once /healthz answers (realmctl wait URL/healthz) `host install`
	// finds it.
	if err := h.SetKeysURL(u); err != nil {
		return errors.Join(err, ln.Close())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	jwks, err := h.JWKS()
	if err != nil {
		return errors.Join(err, ln.Close())
	}
	mux.Handle("GET "+forgeJWKSPath, jwks)
	mux.Handle("/", h.KeyServer())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	shutdown := func() error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		if serr := <-done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
		return err
	}
	fmt.Fprintf(stdout, "key server for kid %s at %s\nset the app's installKeys.url to: %s\nand forge.jwksUrl to: %s%s\n", kp.ID, u, u, u, forgeJWKSPath)
	if ready != nil {
		err := ready(u)
		return errors.Join(err, shutdown())
	}
	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout, "key server stopping")
		return shutdown()
	case err := <-done:
		return fmt.Errorf("key server: %w", err)
	}
}

// listenURL turns a listener address into a URL an app on this machine can
// call: an unspecified host becomes localhost.
func listenURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func runHostInstall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	hf := newHostFlags("install", stderr)
	descriptorURL := hf.fs.String("descriptor", "", "`URL` of the app's atlassian-connect.json (required)")
	realm := hf.fs.String("realm", "", "`REALM` the product site lives in: global or a regionBaseUrls key (default: the tenant's, or global)")
	clientKey := hf.fs.String("client-key", "", "tenant `KEY` (default: a new one; a known one is re-installed)")
	keysURL := hf.fs.String("keys-url", "", "`URL` of the key server the app trusts (default: the one `host keys` recorded)")
	if err := hf.parse(args, 0, 0); err != nil {
		return err
	}
	if *descriptorURL == "" {
		return usagef("--descriptor is required")
	}
	h, err := hf.open(stdout, stderr)
	if err != nil {
		return err
	}
	h.KeysURL = *keysURL
	t, err := h.Install(ctx, hostsim.InstallOptions{DescriptorURL: *descriptorURL, Realm: *realm, ClientKey: *clientKey})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "clientKey: %s\n", t.ClientKey)
	return nil
}

// lifecycleCommand makes uninstall, enable and disable: one tenant, one call.
func lifecycleCommand(name string, call func(*hostsim.Host, context.Context, string) error) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		hf := newHostFlags(name, stderr)
		clientKey := hf.fs.String("client-key", "", "tenant `KEY` (required)")
		if err := hf.parse(args, 0, 0); err != nil {
			return err
		}
		if *clientKey == "" {
			return usagef("--client-key is required")
		}
		h, err := hf.open(stdout, stderr)
		if err != nil {
			return err
		}
		return call(h, ctx, *clientKey)
	}
}

func runHostCall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	hf := newHostFlags("call", stderr)
	clientKey := hf.fs.String("client-key", "", "tenant `KEY` (required)")
	realm := hf.fs.String("realm", "", "call this `REALM`'s base URL instead of the tenant's current one")
	if err := hf.parse(args, 2, 3); err != nil {
		return err
	}
	if *clientKey == "" {
		return usagef("--client-key is required")
	}
	var body []byte
	if hf.fs.NArg() == 3 {
		body = []byte(hf.fs.Arg(2))
		if name, ok := strings.CutPrefix(hf.fs.Arg(2), "@"); ok {
			var err error
			if body, err = os.ReadFile(name); err != nil {
				return fmt.Errorf("call: body: %w", err)
			}
		}
	}
	h, err := hf.open(stdout, stderr)
	if err != nil {
		return err
	}
	resp, err := h.CallRealm(ctx, *clientKey, *realm, hf.fs.Arg(0), hf.fs.Arg(1), body)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d %s\n", resp.StatusCode, http.StatusText(resp.StatusCode))
	// The realm that answered is the point of a call after a migration
	// ("served from US now"), so it is shown as the header says it.
	if realm := resp.Header.Get("X-Realm"); realm != "" {
		fmt.Fprintf(stdout, "X-Realm: %s\n", realm)
	}
	if len(resp.Body) > 0 {
		stdout.Write(resp.Body)
		if resp.Body[len(resp.Body)-1] != '\n' {
			fmt.Fprintln(stdout)
		}
	}
	if !resp.OK() {
		return errReported
	}
	return nil
}

func runHostMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	hf := newHostFlags("migrate", stderr)
	var o hostsim.MigrateOptions
	hf.fs.StringVar(&o.ClientKey, "client-key", "", "tenant `KEY` (required)")
	hf.fs.StringVar(&o.To, "to", "", "target `REALM` (required)")
	hf.fs.DurationVar(&o.Window, "window", hostsim.DefaultWindow, "migration window: endTime - startTime")
	hf.fs.DurationVar(&o.Poll, "poll", hostsim.DefaultPoll, "status poll interval (the host polls about every 5m)")
	hf.fs.BoolVar(&o.Rollback, "rollback", false, "roll back instead of committing once ready")
	hf.fs.DurationVar(&o.CancelAfter, "cancel-after", 0, "cancel (roll back) if not ready this long after start")
	hf.fs.StringVar(&o.MigrationID, "migration-id", "", "migration `ID` (default: random)")
	hf.fs.BoolVar(&o.Twice, "twice", false, "send every hook a second time, as the host may; both answers must be 2xx")
	retryDelay := hf.fs.Duration("retry-delay", hostsim.DefaultRetryDelay, "delay between the host's retries of a hook answered non-2xx without errorResponseCode")
	if err := hf.parse(args, 0, 0); err != nil {
		return err
	}
	switch {
	case o.ClientKey == "":
		return usagef("--client-key is required")
	case o.To == "":
		return usagef("--to is required")
	case o.Window <= 0 || o.Poll <= 0 || o.CancelAfter < 0 || *retryDelay < 0:
		return usagef("--window and --poll must be positive, --cancel-after and --retry-delay not negative")
	}
	h, err := hf.open(stdout, stderr)
	if err != nil {
		return err
	}
	h.RetryDelay = *retryDelay
	_, err = h.Migrate(ctx, o)
	return err
}

func runHostConformance(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	hf := newHostFlags("conformance", stderr)
	var o hostsim.ConformanceOptions
	hf.fs.StringVar(&o.DescriptorURL, "descriptor", "", "`URL` of the app's atlassian-connect.json (required)")
	hf.fs.StringVar(&o.Source, "source", "", "`REALM` throwaway tenants are installed in (default global)")
	hf.fs.StringVar(&o.Target, "target", "", "`REALM` they migrate to (default: the first other regionBaseUrls key)")
	hf.fs.IntVar(&o.ConcurrencyAttempts, "attempts", hostsim.DefaultConcurrencyAttempts, "most concurrent migrations scheduled while looking for E0004")
	hf.fs.DurationVar(&o.StatusTimeout, "status-timeout", hostsim.DefaultStatusTimeout, "how long to wait for ready-to-commit")
	hf.fs.DurationVar(&o.Poll, "poll", hostsim.DefaultConformancePoll, "status poll interval")
	junit := hf.fs.String("junit", "", "also write a JUnit XML report to `FILE`")
	keysURL := hf.fs.String("keys-url", "", "`URL` of the key server the app trusts (default: the one `host keys` recorded)")
	serveAddr := hf.fs.String("serve-keys", "", "serve the key server in-process on `ADDR`; the app's installKeys.url must point at it")
	advertise := hf.fs.String("advertise", "", "with --serve-keys: the `URL` the app reaches it at")
	probe := hf.fs.String("probe", "none", "data probe: none (judge hook answers only) or properties (realmhook's /api/v1/properties)")
	hf.fs.StringVar(&o.GatewayPath, "gateway-path", "", "with the app behind realmhook's gateway: a module `PATH` (e.g. a page's url) a signed page load must reach and an unsigned one must not")
	retryDelay := hf.fs.Duration("retry-delay", hostsim.DefaultRetryDelay, "delay between the host's retries of a hook")
	forge := hf.fs.Bool("forge", false, "check a Forge remote (FITs signed by the key `host keys` serves as a JWKS)")
	manifestPath := hf.fs.String("manifest", "", "with --forge: the app's manifest.yml `FILE`")
	if err := hf.parse(args, 0, 0); err != nil {
		return err
	}
	if *forge {
		return runForgeConformance(ctx, hf, forgeConformance{manifest: *manifestPath, source: o.Source, target: o.Target,
			probe: *probe, statusTimeout: o.StatusTimeout, poll: o.Poll, junit: *junit, retryDelay: *retryDelay}, stdout, stderr)
	}
	switch {
	case o.DescriptorURL == "":
		return usagef("--descriptor is required")
	case *keysURL != "" && *serveAddr != "":
		return usagef("give --keys-url or --serve-keys, not both")
	case *retryDelay < 0:
		return usagef("--retry-delay must not be negative")
	}
	switch *probe {
	case "none":
	case "properties":
		o.Probe = hostsim.PropertyProbe{}
	default:
		return usagef("--probe must be none or properties, got %q", *probe)
	}
	h, err := hf.open(stdout, stderr)
	if err != nil {
		return err
	}
	h.RetryDelay = *retryDelay
	run := func() error {
		rep, err := h.Conformance(ctx, o)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, rep.Summary())
		if *junit != "" {
			if err := writeJUnit(*junit, rep); err != nil {
				return err
			}
		}
		if !rep.OK() {
			return errReported
		}
		return nil
	}
	if *serveAddr != "" {
		return serveKeys(ctx, h, *serveAddr, *advertise, stdout, func(u string) error {
			h.KeysURL = u
			return run()
		})
	}
	h.KeysURL = *keysURL
	return run()
}

func writeJUnit(path string, rep hostsim.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("junit report: %w", err)
	}
	if err := rep.WriteJUnit(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("junit report: %w", err)
	}
	return nil
}

func runHostTenants(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	hf := newHostFlags("tenants", stderr)
	if err := hf.parse(args, 0, 0); err != nil {
		return err
	}
	h, err := hf.open(stdout, stderr)
	if err != nil {
		return err
	}
	for _, t := range h.Tenants() {
		state := "uninstalled"
		if t.Installed && t.Enabled {
			state = "enabled"
		} else if t.Installed {
			state = "disabled"
		}
		fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", t.ClientKey, t.Realm, state, t.DescriptorURL)
	}
	return nil
}
