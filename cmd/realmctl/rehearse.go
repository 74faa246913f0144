package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"connectrpc.com/connect"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "github.com/realmhook/realmhook/gen/realmhook/admin/v1"
	"github.com/realmhook/realmhook/migration"
)

func runRehearse(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rehearse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f adminFlags
	to := fs.String("to", "", "the `realm` to rehearse moving the tenant to (required)")
	window := fs.Duration("window", migration.DefaultRehearsalWindow, "the migration `window` the rehearsal must fit in")
	every := fs.Duration("interval", time.Second, "how often to ask how it goes")
	c, err := parseAdmin(fs, &f, args, 1, "rehearse CLIENT_KEY --to US [--window 1h30m] [--output json]")
	if err != nil {
		return err
	}
	if *to == "" {
		return usagef("--to REALM is required")
	}
	if *window <= 0 {
		return usagef("--window must be positive, got %s", *window)
	}
	start, err := c.StartRehearsal(ctx, connect.NewRequest(&adminv1.StartRehearsalRequest{
		ClientKey: fs.Arg(0), TargetRealm: *to, Window: durationpb.New(*window)}))
	if err != nil {
		return rpcError(err)
	}
	r := start.Msg.GetRehearsal()
	var bar *mpb.Bar
	var p *mpb.Progress
	if f.output == "text" {
		fmt.Fprintf(stdout, "rehearsing %s %s → %s (%s), window %s\n", r.GetClientKey(), r.GetSourceRealm(), r.GetTargetRealm(), r.GetId(), *window)
		p = mpb.NewWithContext(ctx, mpb.WithOutput(stdout), mpb.WithRefreshRate(*every/2), mpb.WithAutoRefresh())
		bar = p.AddBar(max(r.GetProgress().GetRowsTotal(), 1), mpb.BarWidth(24),
			mpb.PrependDecorators(decor.Name("copy ")),
			mpb.AppendDecorators(decor.CountersNoUnit(" %d/%d rows "), decor.Percentage()))
	}
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for r.GetState() == string(migration.RehearsalRunning) {
		select {
		case <-ctx.Done():
			if p != nil {
				p.Shutdown()
			}
			return ctx.Err()
		case <-tick.C:
		}
		resp, err := c.GetRehearsal(ctx, connect.NewRequest(&adminv1.GetRehearsalRequest{Id: r.GetId()}))
		if err != nil {
			if p != nil {
				p.Shutdown()
			}
			return rpcError(err)
		}
		r = resp.Msg.GetRehearsal()
		if bar != nil {
			if n := r.GetProgress().GetRowsTotal(); n > 0 {
				bar.SetTotal(n, false)
			}
			bar.SetCurrent(r.GetProgress().GetRowsCopied())
		}
	}
	if bar != nil {
		bar.SetTotal(-1, true)
		p.Wait()
	}
	if f.output == "json" {
		if err := writeJSON(stdout, r); err != nil {
			return err
		}
	} else {
		fits := "fits"
		if !r.GetFitsWindow() {
			fits = "does NOT fit"
		}
		fmt.Fprintf(stdout, "%s: %d rows in %s, %s the %s window\n%s\n", r.GetState(), r.GetProgress().GetRowsCopied(),
			r.GetDuration().AsDuration().Round(time.Millisecond), fits, r.GetWindow().AsDuration(), r.GetDetail())
	}
	if r.GetState() != string(migration.RehearsalPassed) {
		return errReported
	}
	return nil
}
