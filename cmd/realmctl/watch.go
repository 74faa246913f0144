package main

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	adminv1 "github.com/realmhook/realmhook/gen/realmhook/admin/v1"
	"github.com/realmhook/realmhook/gen/realmhook/admin/v1/adminv1connect"
)

// watched is one migration's bar and what the admin API last said of it.
type watched struct {
	bar *mpb.Bar
	// last is read by the bar's decorators as it is drawn.
	last atomic.Pointer[adminv1.Migration]
}

// watchMigrations draws a bar per running migration, rows copied of rows
// total, with the rate and ETA the admin API works out, until none runs.
func watchMigrations(ctx context.Context, c adminv1connect.AdminServiceClient, w io.Writer, every time.Duration) error {
	p := mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithRefreshRate(every/2),
		// Bars are drawn into a pipe or a file too, not only a terminal.
		mpb.WithAutoRefresh())
	bars := map[string]*watched{}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		resp, err := c.ListMigrations(ctx, connect.NewRequest(&adminv1.ListMigrationsRequest{States: activeStates(), Limit: 1000}))
		if err != nil {
			p.Shutdown()
			return rpcError(err)
		}
		seen := map[string]bool{}
		for _, m := range resp.Msg.GetMigrations() {
			key := m.GetClientKey() + "/" + m.GetId()
			seen[key] = true
			wm := bars[key]
			if wm == nil {
				wm = &watched{}
				wm.last.Store(m)
				wm.bar = p.AddBar(max(m.GetProgress().GetRowsTotal(), 1), mpb.BarWidth(24),
					mpb.PrependDecorators(
						decor.Name(fmt.Sprintf("%s %s→%s ", m.GetId(), m.GetSourceRealm(), m.GetTargetRealm())),
						decor.Any(func(decor.Statistics) string { return fmt.Sprintf("%-10s", wm.last.Load().GetState()) }),
					),
					mpb.AppendDecorators(
						decor.CountersNoUnit(" %d/%d rows "),
						decor.Percentage(),
						decor.Any(func(decor.Statistics) string { return rateAndETA(wm.last.Load()) }),
					))
				bars[key] = wm
			}
			wm.last.Store(m)
			pr := m.GetProgress()
			if pr.GetRowsTotal() > 0 {
				wm.bar.SetTotal(pr.GetRowsTotal(), false)
			}
			wm.bar.SetCurrent(pr.GetRowsCopied())
		}
		for key, wm := range bars {
			if !seen[key] && !wm.bar.Completed() {
				// No longer running: committed, failed or rolled back.
				wm.bar.SetTotal(-1, true)
			}
		}
		if len(seen) == 0 {
			p.Wait()
			if len(bars) == 0 {
				fmt.Fprintln(w, "no migration is running")
			} else {
				fmt.Fprintln(w, "no migration is running any more")
			}
			return nil
		}
		select {
		case <-ctx.Done():
			p.Shutdown()
			return nil
		case <-tick.C:
		}
	}
}

// rateAndETA is the admin API's rate and ETA of a copy, and whether it
// ends before the host's window does.
func rateAndETA(m *adminv1.Migration) string {
	pr := m.GetProgress()
	s := fmt.Sprintf("  %.0f rows/s", pr.GetRowsPerSecond())
	if pr.GetEta() != nil {
		left := time.Until(pr.GetEta().AsTime()).Round(time.Second)
		s += fmt.Sprintf("  ETA %s", max(left, 0))
		if !pr.GetFitsWindow() {
			s += " (past the window's end)"
		}
	}
	return s
}
