package admin

import (
	"time"

	"github.com/realmhook/realmhook"
)

// progress is how a copy is going, beyond the counts the record keeps.
type progress struct {
	// CopyStartedAt is the first event into copying.
	CopyStartedAt time.Time
	// RowsPerSecond is the average rate from CopyStartedAt to the last
	// checkpoint (the record's UpdatedAt, when RowsCopied was counted).
	RowsPerSecond float64
	// ETA is when the copy ends at that rate; zero when not copying or no
	// rate is known yet.
	ETA time.Time
	// FitsWindow: ETA is before the host's EndTime.
	FitsWindow bool
}

// progressOf is the one place a copy's rate and ETA are worked out, for
// realmctl and the page alike.
func progressOf(m *realmhook.Migration, events []realmhook.MigrationEvent) progress {
	var p progress
	for _, e := range events {
		if e.To == realmhook.MigrationCopying {
			p.CopyStartedAt = e.At
			break
		}
	}
	if p.CopyStartedAt.IsZero() {
		return p
	}
	elapsed := m.UpdatedAt.Sub(p.CopyStartedAt).Seconds()
	if elapsed > 0 && m.Progress.RowsCopied > 0 {
		p.RowsPerSecond = float64(m.Progress.RowsCopied) / elapsed
	}
	if m.State != realmhook.MigrationCopying || p.RowsPerSecond == 0 {
		return p
	}
	left := max(m.Progress.RowsTotal-m.Progress.RowsCopied, 0)
	p.ETA = m.UpdatedAt.Add(time.Duration(float64(left) / p.RowsPerSecond * float64(time.Second))).UTC()
	p.FitsWindow = p.ETA.Before(m.EndTime)
	return p
}
