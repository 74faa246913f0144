package migration

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// peerFor returns the target's Peer, or a refusal with E0002 when the target
// is not (or no longer) configured.
func (s *Service) peerFor(m *realmhook.Migration) (Peer, error) {
	p, ok := s.peers[m.TargetRealm]
	if !ok {
		return nil, refusal(realmhook.EINVALID, errRealmNotSupported, "target realm %s is not configured", m.TargetRealm)
	}
	return p, nil
}

// frozenTenant returns the source tenant, frozen by m. Start freezes it before
// the copy begins; freezing again here covers a record changed since.
func (s *Service) frozenTenant(ctx context.Context, st store.Store, m *realmhook.Migration) (*realmhook.Tenant, error) {
	t, err := st.UpdateTenant(ctx, m.ClientKey, func(t *realmhook.Tenant) error {
		switch t.MigrationID {
		case m.ID:
		case "":
			t.MigrationID = m.ID
			t.UpdatedAt = s.now().UTC()
		default:
			return realmhook.Errorf(realmhook.ECONFLICT, "tenant is frozen by migration %q", t.MigrationID)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("freeze tenant: %w", err)
	}
	return t, nil
}

// copyTenant copies the tenant record and every table to the target, resuming
// from m's checkpoint, and leaves m in state verifying.
func (s *Service) copyTenant(ctx context.Context, l *lease, st store.Store, m *realmhook.Migration) error {
	peer, err := s.peerFor(m)
	if err != nil {
		return err
	}
	if err := s.checkWindow(m); err != nil {
		return err
	}
	tenant, err := s.frozenTenant(ctx, st, m)
	if err != nil {
		return err
	}
	cp, err := decodeCheckpoint(m.Checkpoint)
	if err != nil {
		return realmhook.Errorf(realmhook.EINVALID, "%s", err)
	}
	// Idempotent, and it re-checks on every resume that the target has not
	// started serving the tenant in the meantime.
	if err := peer.PrepareIncoming(ctx, tenant, m.ID); err != nil {
		if realmhook.ErrorCode(err) == realmhook.ECONFLICT {
			// The target's own refusal, meant to be read: say it.
			return fmt.Errorf("prepare target: %w", refusal(realmhook.ECONFLICT, errCannotGoOn, "the target realm refused the tenant: %s", realmhook.ErrorMessage(err)))
		}
		return err
	}
	if cp == nil {
		if err := s.prepareCopy(ctx, st, peer, m); err != nil {
			return err
		}
		cp = &checkpoint{Summed: true}
	} else if err := s.trimTarget(ctx, st, peer, m, cp); err != nil {
		return err
	}
	for cp.Table < len(s.tables) {
		if err := s.copyTable(ctx, s.migrationJob(ctx, l, st, m), peer, m, cp); err != nil {
			return err
		}
	}
	// Before ready-to-commit, so the app's first insert after the commit
	// finds every sequence past the copied rows.
	for _, t := range s.tables {
		if err := peer.AdvanceSequences(ctx, m.ClientKey, m.ID, t); err != nil {
			return err
		}
	}
	return s.transition(ctx, st, m, realmhook.MigrationVerifying,
		fmt.Sprintf("copied %d rows in %d tables", m.Progress.RowsCopied, len(s.tables)), nil)
}

// trimTarget readies the target for resuming at cp: rows written after the
// checkpoint would be written again, so they go; later tables should be empty
// and are emptied to be sure.
func (s *Service) trimTarget(ctx context.Context, st store.Store, peer Peer, m *realmhook.Migration, cp *checkpoint) error {
	if cp.Table >= len(s.tables) {
		return nil
	}
	// Children before parents: the later tables may reference this one.
	var n int64
	for _, t := range childrenFirst(s.tables[cp.Table+1:]) {
		c, err := peer.ClearRows(ctx, m.ClientKey, m.ID, t)
		if err != nil {
			return err
		}
		n += c
	}
	// The checkpoint's key is the source's; the target holds it in its
	// own terms.
	after, err := s.targetKey(ctx, st, peer, s.tables[cp.Table], cp.After)
	if err != nil {
		return err
	}
	c, err := peer.TrimRows(ctx, m.ClientKey, m.ID, s.tables[cp.Table], after)
	if err != nil {
		return err
	}
	n += c
	s.log.Info("migration copy resumed", "tenant", m.ClientKey, "migration_id", m.ID,
		"table", s.tables[cp.Table].Name, "trimmed_rows", n, "rows_copied", m.Progress.RowsCopied)
	return nil
}

// prepareCopy starts a fresh copy: it clears whatever an earlier attempt left
// of the tenant in the target, counts the rows to copy and saves the first
// checkpoint.
func (s *Service) prepareCopy(ctx context.Context, st store.Store, peer Peer, m *realmhook.Migration) error {
	progress := realmhook.Progress{TablesTotal: len(s.tables)}
	for _, t := range childrenFirst(s.tables) {
		if _, err := peer.ClearRows(ctx, m.ClientKey, m.ID, t); err != nil {
			return err
		}
	}
	for _, t := range s.tables {
		n, err := st.CountRows(ctx, t, m.ClientKey)
		if err != nil {
			return fmt.Errorf("count %s: %w", t.Name, err)
		}
		progress.RowsTotal += n
	}
	enc, err := encodeCheckpoint(checkpoint{Summed: true})
	if err != nil {
		return err
	}
	return s.transition(ctx, st, m, realmhook.MigrationCopying, "", func(n *realmhook.Migration) {
		n.Checkpoint = enc
		n.Progress = progress
	})
}

// maxSourceWait bounds how long a copy interval waits for the source's next
// batch with the target's transaction open.
const maxSourceWait = time.Second

// batch is one read of the source: rows in key order, in the target's
// terms, their checksum, and the source's key of the last one.
type batch struct {
	rows  []store.Row
	sum   Checksum
	after store.Row
}

// copyTable copies table cp.Table from cp.After on, in key order, and
// advances cp as it saves checkpoints. The source is read a batch at a time,
// one batch ahead of the target's writes; every CheckpointRows rows' batches
// are streamed into the target in one transaction (one commit: per-batch
// commits halve the throughput), and then the checkpoint is saved with the
// source's checksum of every row up to it. A crash mid-interval leaves either
// nothing of the interval (its transaction rolls back) or, if it struck
// between the commit and the checkpoint, rows after the checkpoint that the
// resume trims: nothing is lost or written twice, and the checksum in the
// checkpoint covers exactly the rows up to its key.
func (s *Service) copyTable(ctx context.Context, job copyJob, peer Peer, m *realmhook.Migration, cp *checkpoint) error {
	st := job.src
	ti := cp.Table
	t := s.tables[ti]
	cols, err := st.Columns(ctx, t.Name)
	if err != nil {
		return fmt.Errorf("copy %s: %w", t.Name, err)
	}
	conv, err := s.incoming(ctx, st, peer, t, cols)
	if err != nil {
		return err
	}
	src := s.readSource(ctx, st, t, cols, m.ClientKey, cp.After, conv)
	defer src.stop()
	sum := cp.sum(ti)
	for {
		first, ok, err := src.receive()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		iv := &interval{
			src: src, held: &first, limit: int64(s.cfg.CheckpointRows),
			// An interval does not wait on a slow source long with its
			// transaction open: that would hold up the target's other
			// writers (SQLite has one), and a replica taking over the job
			// would queue behind its uncommitted rows. It commits what it
			// has instead.
			maxWait: min(maxSourceWait, s.cfg.LeaseTTL/3),
			// Per batch, as before the write: a copy must not outlive its
			// window or its lease by a whole interval.
			check: job.check,
		}
		n, err := peer.CopyRows(ctx, m.ClientKey, m.ID, t, cols, iv.next)
		if err != nil {
			return fmt.Errorf("copy %s: %w", t.Name, err)
		}
		if n != iv.rows {
			return fmt.Errorf("copy %s: the target wrote %d rows of %d", t.Name, n, iv.rows)
		}
		pauseAt(stepCopyWritten)
		sum.merge(iv.sum)
		next := checkpoint{Table: ti, After: iv.after, Sums: cp.withSum(ti, sum)}
		if iv.ended {
			next = checkpoint{Table: ti + 1, Sums: cp.withSum(ti, sum)}
		}
		if err := job.saveCheckpoint(cp, next, iv.rows); err != nil || iv.ended {
			return err
		}
	}
	return job.saveCheckpoint(cp, checkpoint{Table: ti + 1, Sums: cp.withSum(ti, sum)}, 0)
}

// copyJob is what copyTable needs of the copy it runs: where it reads the
// source, whether it may go on, and how it records a checkpoint. A
// migration reads the frozen source and keeps its checkpoints in the
// source's record; a rehearsal reads a snapshot and keeps them in memory.
type copyJob struct {
	src store.Reader
	// check runs before each batch is handed to the target.
	check func() error
	// save records next (rows more copied); on success the copy goes on
	// from next.
	save func(next checkpoint, rows int64) error
}

// saveCheckpoint saves next and makes it the copy's checkpoint cp.
func (j copyJob) saveCheckpoint(cp *checkpoint, next checkpoint, rows int64) error {
	next.Summed = cp.Summed
	if err := j.save(next, rows); err != nil {
		return err
	}
	*cp = next
	return nil
}

// migrationJob is the copyJob of migration m, held under lease l.
func (s *Service) migrationJob(ctx context.Context, l *lease, st store.Store, m *realmhook.Migration) copyJob {
	return copyJob{
		src:   st,
		check: func() error { return s.stillOurs(ctx, l, m) },
		save: func(next checkpoint, rows int64) error {
			return s.saveCheckpoint(ctx, l, st, m, next, rows)
		},
	}
}

// stillOurs checks, between batches, that the job may go on: the window is
// open and this replica still holds the lease.
func (s *Service) stillOurs(ctx context.Context, l *lease, m *realmhook.Migration) error {
	if err := s.checkWindow(m); err != nil {
		return err
	}
	return l.keep(ctx, false)
}

// saveCheckpoint records next (rows more copied) in m and renews the
// lease.
func (s *Service) saveCheckpoint(ctx context.Context, l *lease, st store.Store, m *realmhook.Migration, next checkpoint, rows int64) error {
	enc, err := encodeCheckpoint(next)
	if err != nil {
		return err
	}
	if err := s.transition(ctx, st, m, realmhook.MigrationCopying, "", func(n *realmhook.Migration) {
		n.Checkpoint = enc
		n.Progress.RowsCopied += rows
		n.Progress.TablesDone = next.Table
	}); err != nil {
		return err
	}
	pauseAt(stepCopyCheckpoint)
	return l.keep(ctx, true)
}

// sourceReader is the source's batches of one table, read ahead in a
// goroutine. The channel and the batch being written bound memory to a few
// batches whatever the tenant's size.
type sourceReader struct {
	batches <-chan batch
	done    <-chan error
	cancel  context.CancelFunc
}

func (s *Service) readSource(ctx context.Context, st store.Reader, t store.Table, cols []string, clientKey string, after store.Row, conv func(store.Row) error) *sourceReader {
	readCtx, cancel := context.WithCancel(ctx)
	batches := make(chan batch, 1)
	done := make(chan error, 1)
	go func() { done <- s.readBatches(readCtx, st, t, cols, clientKey, after, conv, batches) }()
	return &sourceReader{batches: batches, done: done, cancel: cancel}
}

// receive returns the next batch, or ok false at the table's end (or the
// read's error).
func (r *sourceReader) receive() (b batch, ok bool, err error) {
	if b, ok = <-r.batches; ok {
		return b, true, nil
	}
	return batch{}, false, <-r.done
}

// stop ends the read and drains what it sent.
func (r *sourceReader) stop() {
	r.cancel()
	for range r.batches {
	}
}

// interval feeds one CopyRows call, the rows up to the next checkpoint, and
// keeps their count, checksum and last row.
type interval struct {
	src     *sourceReader
	held    *batch // a batch received before the interval began
	limit   int64
	maxWait time.Duration
	check   func() error

	rows  int64
	sum   Checksum
	after store.Row // the source's key of the last row
	ended bool      // the source has no more rows
}

// next is the CopyRows callback: the next batch, or none when the interval
// is full, the source ended, or the source kept it waiting past maxWait.
func (iv *interval) next() ([]store.Row, error) {
	if iv.ended || iv.rows >= iv.limit {
		return nil, nil
	}
	var b batch
	if iv.held != nil {
		b, iv.held = *iv.held, nil
	} else {
		wait := time.NewTimer(iv.maxWait)
		select {
		case more, ok := <-iv.src.batches:
			wait.Stop()
			if !ok {
				if err := <-iv.src.done; err != nil {
					return nil, err
				}
				iv.ended = true
				return nil, nil
			}
			b = more
		case <-wait.C:
			return nil, nil
		}
	}
	if err := iv.check(); err != nil {
		return nil, err
	}
	iv.rows += int64(len(b.rows))
	iv.sum.merge(b.sum)
	iv.after = b.after
	pauseAt(stepCopyBatch)
	return b.rows, nil
}

// readBatches reads table t's rows of the tenant in key order after `after`,
// a batch at a time with its checksum, into out, and closes out when done or
// stopped. Checksumming here, beside the reads, keeps it off the writes' path.
//
// Each row is converted into the target's terms (conv) before it is
// checksummed: the checksum compares what the app will read in the target.
func (s *Service) readBatches(ctx context.Context, st store.Reader, t store.Table, cols []string, clientKey string, after store.Row, conv func(store.Row) error, out chan<- batch) error {
	defer close(out)
	keyAt, err := keyPositions(t, cols)
	if err != nil {
		return err
	}
	scratch := make([]byte, 0, 512)
	for {
		rows, err := st.ReadRows(ctx, t, cols, clientKey, after, s.cfg.BatchRows)
		if err != nil {
			return fmt.Errorf("copy %s: read: %w", t.Name, err)
		}
		if len(rows) == 0 {
			return nil
		}
		after = keyOf(rows[len(rows)-1], keyAt)
		b := batch{rows: rows, after: after}
		for _, r := range rows {
			if err := conv(r); err != nil {
				return fmt.Errorf("copy %s: %w", t.Name, err)
			}
			if scratch, err = b.sum.add(scratch, r); err != nil {
				return fmt.Errorf("copy %s: checksum: %w", t.Name, err)
			}
		}
		select {
		case out <- b:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if len(rows) < s.cfg.BatchRows {
			return nil
		}
	}
}

// incoming returns the target's conversion of the source's rows of t.
func (s *Service) incoming(ctx context.Context, st store.Reader, peer Peer, t store.Table, cols []string) (func(store.Row) error, error) {
	types, err := st.ColumnTypes(ctx, t.Name)
	if err != nil {
		return nil, fmt.Errorf("copy %s: %w", t.Name, err)
	}
	conv, err := peer.Incoming(ctx, t, cols, store.Source{Backend: st.Backend(), Types: types})
	if err != nil {
		return nil, fmt.Errorf("copy %s: %w", t.Name, err)
	}
	return conv, nil
}

// targetKey is the source's key after (a checkpoint's) in the target's terms.
func (s *Service) targetKey(ctx context.Context, st store.Reader, peer Peer, t store.Table, after store.Row) (store.Row, error) {
	if after == nil {
		return nil, nil
	}
	cols, err := st.Columns(ctx, t.Name)
	if err != nil {
		return nil, fmt.Errorf("copy %s: %w", t.Name, err)
	}
	keyAt, err := keyPositions(t, cols)
	if err != nil {
		return nil, err
	}
	conv, err := s.incoming(ctx, st, peer, t, cols)
	if err != nil {
		return nil, err
	}
	// A row of the key alone: the conversion is per value.
	r := make(store.Row, len(cols))
	for i, p := range keyAt {
		r[p] = after[i]
	}
	if err := conv(r); err != nil {
		return nil, fmt.Errorf("copy %s: checkpoint key: %w", t.Name, err)
	}
	return keyOf(r, keyAt), nil
}

// keyPositions returns where each key column of t sits among cols.
func keyPositions(t store.Table, cols []string) ([]int, error) {
	if len(t.Key) == 0 {
		return nil, realmhook.Errorf(realmhook.EINVALID, "table %s: no key columns configured", t.Name)
	}
	if !slices.Contains(cols, t.TenantColumn) {
		return nil, realmhook.Errorf(realmhook.EINVALID, "table %s: no tenant column %q", t.Name, t.TenantColumn)
	}
	at := make([]int, len(t.Key))
	for i, k := range t.Key {
		if at[i] = slices.Index(cols, k); at[i] < 0 {
			return nil, realmhook.Errorf(realmhook.EINVALID, "table %s: no key column %q", t.Name, k)
		}
	}
	return at, nil
}

func keyOf(r store.Row, at []int) store.Row {
	k := make(store.Row, len(at))
	for i, p := range at {
		k[i] = r[p]
	}
	return k
}

// verifyTenant compares, per table, the target's row count and checksum with
// the source's, and moves m to ready-to-commit only if all are equal. The
// source's checksums were taken by the copy from the very rows it sent (the
// source is frozen from start to commit), so only the target is read in full;
// the source's rows are counted, and a count that changed since the copy
// fails the migration. A copy checkpointed without checksums (by an older
// version) has the source read in full instead.
func (s *Service) verifyTenant(ctx context.Context, l *lease, st store.Store, m *realmhook.Migration) error {
	peer, err := s.peerFor(m)
	if err != nil {
		return err
	}
	cp, err := decodeCheckpoint(m.Checkpoint)
	if err != nil {
		return realmhook.Errorf(realmhook.EINVALID, "%s", err)
	}
	rows, err := s.verifyCopy(ctx, st, peer, m.ClientKey, cp, func() error {
		if err := s.checkWindow(m); err != nil {
			return err
		}
		return l.keep(ctx, true)
	})
	if err != nil {
		return err
	}
	if err := s.checkWindow(m); err != nil {
		return err
	}
	return s.transition(ctx, st, m, realmhook.MigrationReadyToCommit,
		fmt.Sprintf("verified %d rows in %d tables: counts and checksums equal", rows, len(s.tables)), nil)
}

// verifyCopy is the verification of a copy that ended at checkpoint cp:
// per table, the target's row count and checksum against the source's
// (those the copy took, with the source's rows counted again; or, for a
// copy checkpointed without them, the source read in full). check runs
// before each table. It returns the rows verified, or a refusal naming the
// first table that differs.
func (s *Service) verifyCopy(ctx context.Context, st store.Reader, peer Peer, clientKey string, cp *checkpoint, check func() error) (int64, error) {
	copied := cp != nil && cp.Summed && cp.Table == len(s.tables) && len(cp.Sums) == len(s.tables)
	var rows int64
	for ti, t := range s.tables {
		if err := check(); err != nil {
			return 0, err
		}
		cols, err := st.Columns(ctx, t.Name)
		if err != nil {
			return 0, fmt.Errorf("verify %s: %w", t.Name, err)
		}
		var src, dst Checksum
		if copied {
			src = cp.Sums[ti]
			var now int64
			if now, dst, err = countAndChecksum(ctx, st, peer, clientKey, t, cols); err != nil {
				return 0, fmt.Errorf("verify %s: %w", t.Name, err)
			}
			if now != src.Rows {
				return 0, refusal(realmhook.ECONFLICT, errCannotGoOn, "verify: source changed during migration: table %s holds %d rows, %d when copied", t.Name, now, src.Rows)
			}
		} else if src, dst, err = s.bothChecksums(ctx, st, peer, clientKey, t, cols); err != nil {
			return 0, fmt.Errorf("verify %s: %w", t.Name, err)
		}
		if src != dst {
			return 0, refusal(realmhook.ECONFLICT, errCannotGoOn, "verify: table %s differs: source %s, target %s", t.Name, src, dst)
		}
		rows += src.Rows
		pauseAt(stepVerifyTable)
	}
	return rows, nil
}

// countAndChecksum counts the source's rows of a table while the target
// computes its checksum.
func countAndChecksum(ctx context.Context, st store.Reader, peer Peer, clientKey string, t store.Table, cols []string) (int64, Checksum, error) {
	var dst Checksum
	var dstErr error
	var wg sync.WaitGroup
	wg.Go(func() { dst, dstErr = peer.Checksum(ctx, clientKey, t, cols) })
	n, err := st.CountRows(ctx, t, clientKey)
	wg.Wait()
	if err != nil {
		return 0, dst, fmt.Errorf("source: count: %w", err)
	}
	if dstErr != nil {
		return 0, dst, fmt.Errorf("target: %w", dstErr)
	}
	return n, dst, nil
}

// bothChecksums computes the source and target checksums of a table at once:
// each side streams its own rows, so the slower side sets the pace.
func (s *Service) bothChecksums(ctx context.Context, st store.Reader, peer Peer, clientKey string, t store.Table, cols []string) (src, dst Checksum, err error) {
	conv, err := s.incoming(ctx, st, peer, t, cols)
	if err != nil {
		return src, dst, err
	}
	var dstErr error
	var wg sync.WaitGroup
	wg.Go(func() { dst, dstErr = peer.Checksum(ctx, clientKey, t, cols) })
	src, err = tableChecksum(ctx, st, t, cols, clientKey, conv)
	wg.Wait()
	if err != nil {
		return src, dst, fmt.Errorf("source: %w", err)
	}
	if dstErr != nil {
		return src, dst, fmt.Errorf("target: %w", dstErr)
	}
	return src, dst, nil
}
