package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/realmhook/realmhook/connecterr"
	adminv1 "github.com/realmhook/realmhook/gen/realmhook/admin/v1"
	"github.com/realmhook/realmhook/gen/realmhook/admin/v1/adminv1connect"
	"github.com/realmhook/realmhook/migration"
)

// The environment variables the admin commands read when their flags are
// not given.
const (
	envAdminURL   = "REALMHOOK_ADMIN_URL"
	envAdminToken = "REALMHOOK_ADMIN_TOKEN"
)

// adminFlags are the flags every admin command shares.
type adminFlags struct {
	server, token, output string
}

func (f *adminFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.server, "server", os.Getenv(envAdminURL), "admin API `URL` (admin.listen), default $"+envAdminURL)
	fs.StringVar(&f.token, "token", "", "admin bearer `token` (admin.token), default $"+envAdminToken)
	fs.StringVar(&f.output, "output", "text", "output `format`: text or json")
}

// client checks the shared flags and returns the API client.
func (f *adminFlags) client() (adminv1connect.AdminServiceClient, error) {
	if f.token == "" {
		f.token = os.Getenv(envAdminToken)
	}
	switch {
	case f.server == "":
		return nil, usagef("no admin API: give --server URL or set %s", envAdminURL)
	case f.token == "":
		return nil, usagef("no admin token: give --token or set %s", envAdminToken)
	case f.output != "text" && f.output != "json":
		return nil, usagef("--output must be text or json, got %q", f.output)
	}
	token := f.token
	auth := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+token)
			return next(ctx, req)
		}
	})
	return adminv1connect.NewAdminServiceClient(&http.Client{Timeout: 30 * time.Second},
		strings.TrimSuffix(f.server, "/"), connect.WithInterceptors(auth)), nil
}

// parseAdmin parses an admin command's flags and returns its client.
func parseAdmin(fs *flag.FlagSet, f *adminFlags, args []string, want int, usage string) (adminv1connect.AdminServiceClient, error) {
	f.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage:\n  realmctl %s\n\n", usage)
		fs.PrintDefaults()
	}
	// Flags may come after the arguments too (realmctl tenant KEY --output json).
	var positional []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) != want {
		return nil, usagef("want %d argument(s), got %d: realmctl %s", want, len(positional), usage)
	}
	// Parse the positional arguments back in, so that fs.Arg reads them.
	_ = fs.Parse(positional)
	return f.client()
}

// rpcError is an admin API error as the operator reads it.
func rpcError(err error) error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return fmt.Errorf("%s: %w", ce.Code(), connecterr.FromConnect(err))
	}
	return err
}

// writeJSON prints a response message as JSON (proto field names in
// lowerCamelCase, as the Connect JSON protocol has them).
func writeJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func when(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}

func runRealms(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("realms", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f adminFlags
	c, err := parseAdmin(fs, &f, args, 0, "realms [--server URL] [--token TOKEN] [--output json]")
	if err != nil {
		return err
	}
	resp, err := c.ListRealms(ctx, connect.NewRequest(&adminv1.ListRealmsRequest{}))
	if err != nil {
		return rpcError(err)
	}
	if f.output == "json" {
		return writeJSON(stdout, resp.Msg)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REALM\tSERVED\tHEALTH\tPROBED\tTENANTS\tMISROUTED\tBASE URL")
	for _, r := range resp.Msg.GetRealms() {
		health := "healthy"
		if !r.GetHealth().GetHealthy() {
			health = "UNHEALTHY"
			for _, ch := range r.GetHealth().GetChecks() {
				if !ch.GetOk() {
					health += " (" + ch.GetName() + ")"
				}
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.GetKey(), yesNo(r.GetServed()), health,
			when(r.GetHealth().GetProbedAt()), counts(r), r.GetMisroutedRequests(), r.GetBaseUrl())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range resp.Msg.GetRealms() {
		for _, ch := range r.GetHealth().GetChecks() {
			if !ch.GetOk() {
				fmt.Fprintf(stdout, "%s %s: %s\n", r.GetKey(), ch.GetName(), ch.GetDetail())
			}
		}
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// counts renders a realm's tenant counts as "active=3 moved=1".
func counts(r *adminv1.Realm) string {
	if !r.GetServed() {
		return "-"
	}
	var parts []string
	for st, n := range r.GetTenantCounts() {
		parts = append(parts, fmt.Sprintf("%s=%d", st, n))
	}
	if len(parts) == 0 {
		return "none"
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func runTenants(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tenants", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f adminFlags
	realm := fs.String("realm", "", "list this `realm` only (default: every realm the process serves)")
	state := fs.String("state", "", "list tenants in this `state` only (active, incoming, moved, uninstalled, purging)")
	c, err := parseAdmin(fs, &f, args, 0, "tenants [--realm EU] [--state active] [--output json]")
	if err != nil {
		return err
	}
	realms := []string{*realm}
	if *realm == "" {
		resp, err := c.ListRealms(ctx, connect.NewRequest(&adminv1.ListRealmsRequest{}))
		if err != nil {
			return rpcError(err)
		}
		realms = nil
		for _, r := range resp.Msg.GetRealms() {
			if r.GetServed() {
				realms = append(realms, r.GetKey())
			}
		}
	}
	all := &adminv1.ListTenantsResponse{}
	for _, r := range realms {
		token := ""
		for {
			resp, err := c.ListTenants(ctx, connect.NewRequest(&adminv1.ListTenantsRequest{
				Realm: r, State: *state, PageSize: 500, PageToken: token}))
			if err != nil {
				return rpcError(err)
			}
			all.Tenants = append(all.Tenants, resp.Msg.GetTenants()...)
			if token = resp.Msg.GetNextPageToken(); token == "" {
				break
			}
		}
	}
	if f.output == "json" {
		return writeJSON(stdout, all)
	}
	return printTenants(stdout, all.GetTenants())
}

func printTenants(w io.Writer, ts []*adminv1.Tenant) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT KEY\tREALM\tSTATE\tFROZEN\tMIGRATION\tINSTALLED\tUPDATED\tSITE")
	for _, t := range ts {
		state := t.GetState()
		if t.GetMovedTo() != "" {
			state += " to " + t.GetMovedTo()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.GetClientKey(), t.GetRealm(), state, yesNo(t.GetFrozen()),
			dash(t.GetMigrationId()), when(t.GetInstalledAt()), when(t.GetUpdatedAt()), t.GetBaseUrl())
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runTenant(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tenant", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f adminFlags
	c, err := parseAdmin(fs, &f, args, 1, "tenant CLIENT_KEY [--output json]")
	if err != nil {
		return err
	}
	resp, err := c.GetTenant(ctx, connect.NewRequest(&adminv1.GetTenantRequest{ClientKey: fs.Arg(0)}))
	if err != nil {
		return rpcError(err)
	}
	if f.output == "json" {
		return writeJSON(stdout, resp.Msg)
	}
	if err := printTenants(stdout, resp.Msg.GetRecords()); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	return printMigrations(stdout, resp.Msg.GetMigrations())
}

func printMigrations(w io.Writer, ms []*adminv1.Migration) error {
	if len(ms) == 0 {
		_, err := fmt.Fprintln(w, "no migrations")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MIGRATION\tTENANT\tFROM\tTO\tSTATE\tROWS\tPROGRESS\tROWS/S\tETA\tWINDOW ENDS\tERROR")
	for _, m := range ms {
		p := m.GetProgress()
		rate, eta := "-", "-"
		if p.GetRowsPerSecond() > 0 {
			rate = fmt.Sprintf("%.0f", p.GetRowsPerSecond())
		}
		if p.GetEta() != nil {
			eta = when(p.GetEta())
			if !p.GetFitsWindow() {
				eta += " (past window)"
			}
		}
		errText := dash(m.GetErrorResponseCode())
		if m.GetMessage() != "" {
			errText += " " + m.GetMessage()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%.1f%%\t%s\t%s\t%s\t%s\n", m.GetId(), m.GetClientKey(), m.GetSourceRealm(),
			m.GetTargetRealm(), m.GetState(), p.GetRowsCopied(), p.GetRowsTotal(), p.GetPercent(), rate, eta, when(m.GetEndTime()), errText)
	}
	return tw.Flush()
}

func runMigrations(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrations", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f adminFlags
	watch := fs.Bool("watch", false, "show a live progress bar for each running migration until none runs")
	every := fs.Duration("interval", time.Second, "how often --watch asks the admin API")
	state := fs.String("state", "", "only migrations in these `states` (comma-separated)")
	realm := fs.String("realm", "", "only migrations from or to this `realm`")
	limit := fs.Int("limit", 100, "at most this many, newest first")
	c, err := parseAdmin(fs, &f, args, 0, "migrations [--watch] [--state copying,verifying] [--realm EU] [--output json]")
	if err != nil {
		return err
	}
	if *watch {
		if f.output == "json" {
			return usagef("--watch draws progress bars; it has no JSON output")
		}
		return watchMigrations(ctx, c, stdout, *every)
	}
	req := &adminv1.ListMigrationsRequest{Realm: *realm, Limit: int32(*limit)}
	if *state != "" {
		req.States = strings.Split(*state, ",")
	}
	resp, err := c.ListMigrations(ctx, connect.NewRequest(req))
	if err != nil {
		return rpcError(err)
	}
	if f.output == "json" {
		return writeJSON(stdout, resp.Msg)
	}
	return printMigrations(stdout, resp.Msg.GetMigrations())
}

// activeStates are the states --watch follows.
func activeStates() []string {
	var out []string
	for _, s := range migration.ActiveStates() {
		out = append(out, string(s))
	}
	return out
}

func runMigration(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migration", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f adminFlags
	tenant := fs.String("tenant", "", "the tenant's client `key`, needed only when two tenants' migrations share the id")
	c, err := parseAdmin(fs, &f, args, 1, "migration ID [--tenant CLIENT_KEY] [--output json]")
	if err != nil {
		return err
	}
	resp, err := c.GetMigration(ctx, connect.NewRequest(&adminv1.GetMigrationRequest{Id: fs.Arg(0), ClientKey: *tenant}))
	if err != nil {
		return rpcError(err)
	}
	if f.output == "json" {
		return writeJSON(stdout, resp.Msg)
	}
	if err := printMigrations(stdout, []*adminv1.Migration{resp.Msg.GetMigration()}); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\nEVENTS")
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, e := range resp.Msg.GetEvents() {
		fmt.Fprintf(tw, "%s\t%s → %s\t%s\n", e.GetAt().AsTime().UTC().Format(time.RFC3339Nano), dash(e.GetFrom()), e.GetTo(), e.GetDetail())
	}
	return tw.Flush()
}

func runPurge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("purge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f adminFlags
	realm := fs.String("realm", "", "the `realm` whose leftover copy to delete (required)")
	c, err := parseAdmin(fs, &f, args, 1, "purge --realm EU CLIENT_KEY")
	if err != nil {
		return err
	}
	if *realm == "" {
		return usagef("--realm is required")
	}
	resp, err := c.PurgeTenant(ctx, connect.NewRequest(&adminv1.PurgeTenantRequest{Realm: *realm, ClientKey: fs.Arg(0)}))
	if err != nil {
		return rpcError(err)
	}
	if f.output == "json" {
		return writeJSON(stdout, resp.Msg)
	}
	if resp.Msg.GetPurged() {
		_, err = fmt.Fprintf(stdout, "purged %s's copy in %s\n", fs.Arg(0), *realm)
	} else {
		_, err = fmt.Fprintf(stdout, "nothing of %s left in %s\n", fs.Arg(0), *realm)
	}
	return err
}
