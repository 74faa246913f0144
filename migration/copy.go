package migration

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// peerFor returns the target's Peer, or a failure with E0002 when the target
// is not (or no longer) configured.
func (s *Service) peerFor(m *realmhook.Migration) (Peer, error) {
	p, ok := s.peers[m.TargetRealm]
	if !ok {
		return nil, &failure{realmhook.ResponseRealmNotSupported, fmt.Sprintf("target realm %s is not configured", m.TargetRealm)}
	}
	return p, nil
}

// frozenTenant returns the source tenant, frozen by m. Start freezes it before
// the copy begins; freezing again here covers a record changed since.
func (s *Service) frozenTenant(ctx context.Context, st store.Store, m *realmhook.Migration) (*realmhook.Tenant, error) {
	t, err := st.GetTenant(ctx, m.ClientKey)
	if err != nil {
		return nil, fmt.Errorf("source tenant: %w", err)
	}
	switch t.MigrationID {
	case m.ID:
		return t, nil
	case "":
		t.MigrationID = m.ID
		t.UpdatedAt = s.now().UTC()
		if err := st.PutTenant(ctx, t); err != nil {
			return nil, fmt.Errorf("freeze tenant: %w", err)
		}
		return t, nil
	default:
		return nil, realmhook.Errorf(realmhook.ECONFLICT, "tenant is frozen by migration %q", t.MigrationID)
	}
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
		return &failure{realmhook.ResponseOther, err.Error()}
	}
	// Idempotent, and it re-checks on every resume that the target has not
	// started serving the tenant in the meantime.
	if err := peer.PrepareIncoming(ctx, tenant, m.ID); err != nil {
		return err
	}
	if cp == nil {
		if err := s.prepareCopy(ctx, st, peer, m); err != nil {
			return err
		}
		cp = &checkpoint{}
	} else if err := s.trimTarget(ctx, peer, m, cp); err != nil {
		return err
	}
	for ti := cp.Table; ti < len(s.tables); ti++ {
		var after store.Row
		if ti == cp.Table {
			after = cp.After
		}
		if err := s.copyTable(ctx, l, st, peer, m, ti, after); err != nil {
			return err
		}
	}
	return s.transition(ctx, st, m, realmhook.MigrationVerifying,
		fmt.Sprintf("copied %d rows in %d tables", m.Progress.RowsCopied, len(s.tables)), nil)
}

// trimTarget readies the target for resuming at cp: rows written after the
// checkpoint would be written again, so they go; later tables should be empty
// and are emptied to be sure.
func (s *Service) trimTarget(ctx context.Context, peer Peer, m *realmhook.Migration, cp *checkpoint) error {
	if cp.Table >= len(s.tables) {
		return nil
	}
	n, err := peer.TrimRows(ctx, m.ClientKey, m.ID, s.tables[cp.Table], cp.After)
	if err != nil {
		return err
	}
	for _, t := range s.tables[cp.Table+1:] {
		c, err := peer.ClearRows(ctx, m.ClientKey, m.ID, t)
		if err != nil {
			return err
		}
		n += c
	}
	s.log.Info("migration copy resumed", "tenant", m.ClientKey, "migration_id", m.ID,
		"table", s.tables[cp.Table].Name, "trimmed_rows", n, "rows_copied", m.Progress.RowsCopied)
	return nil
}

// prepareCopy starts a fresh copy: it clears whatever an earlier attempt left
// of the tenant in the target, counts the rows to copy and saves the first
// checkpoint.
func (s *Service) prepareCopy(ctx context.Context, st store.Store, peer Peer, m *realmhook.Migration) error {
	progress := realmhook.Progress{TablesTotal: len(s.tables)}
	for _, t := range s.tables {
		if _, err := peer.ClearRows(ctx, m.ClientKey, m.ID, t); err != nil {
			return err
		}
		n, err := st.CountRows(ctx, t, m.ClientKey)
		if err != nil {
			return fmt.Errorf("count %s: %w", t.Name, err)
		}
		progress.RowsTotal += n
	}
	enc, err := encodeCheckpoint(checkpoint{})
	if err != nil {
		return err
	}
	return s.transition(ctx, st, m, realmhook.MigrationCopying, "", func(n *realmhook.Migration) {
		n.Checkpoint = enc
		n.Progress = progress
	})
}

// copyTable copies table ti in key order from after on, in batches, saving a
// checkpoint every CheckpointRows rows and when the table is done.
func (s *Service) copyTable(ctx context.Context, l *lease, st store.Store, peer Peer, m *realmhook.Migration, ti int, after store.Row) error {
	t := s.tables[ti]
	cols, err := st.Columns(ctx, t.Name)
	if err != nil {
		return fmt.Errorf("copy %s: %w", t.Name, err)
	}
	keyAt, err := keyPositions(t, cols)
	if err != nil {
		return err
	}
	var pending int64 // rows written since the last checkpoint
	save := func(cp checkpoint, tablesDone int) error {
		enc, err := encodeCheckpoint(cp)
		if err != nil {
			return err
		}
		if err := s.transition(ctx, st, m, realmhook.MigrationCopying, "", func(n *realmhook.Migration) {
			n.Checkpoint = enc
			n.Progress.RowsCopied += pending
			n.Progress.TablesDone = tablesDone
		}); err != nil {
			return err
		}
		pending = 0
		return l.keep(ctx, true)
	}
	for {
		if err := s.checkWindow(m); err != nil {
			return err
		}
		if err := l.keep(ctx, false); err != nil {
			return err
		}
		rows, err := st.ReadRows(ctx, t, cols, m.ClientKey, after, s.cfg.BatchRows)
		if err != nil {
			return fmt.Errorf("copy %s: read: %w", t.Name, err)
		}
		if len(rows) == 0 {
			break
		}
		if err := peer.WriteBatch(ctx, m.ClientKey, m.ID, t, cols, rows); err != nil {
			return fmt.Errorf("copy %s: %w", t.Name, err)
		}
		after = keyOf(rows[len(rows)-1], keyAt)
		pending += int64(len(rows))
		if pending >= int64(s.cfg.CheckpointRows) {
			if err := save(checkpoint{Table: ti, After: after}, ti); err != nil {
				return err
			}
		}
		if len(rows) < s.cfg.BatchRows {
			break
		}
	}
	return save(checkpoint{Table: ti + 1}, ti+1)
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

// verifyTenant compares, per table, the row count and checksum of the source
// with the target's, and moves m to ready-to-commit only if all are equal.
func (s *Service) verifyTenant(ctx context.Context, l *lease, st store.Store, m *realmhook.Migration) error {
	peer, err := s.peerFor(m)
	if err != nil {
		return err
	}
	var rows int64
	for _, t := range s.tables {
		if err := s.checkWindow(m); err != nil {
			return err
		}
		if err := l.keep(ctx, true); err != nil {
			return err
		}
		cols, err := st.Columns(ctx, t.Name)
		if err != nil {
			return fmt.Errorf("verify %s: %w", t.Name, err)
		}
		src, dst, err := bothChecksums(ctx, st, peer, m.ClientKey, t, cols)
		if err != nil {
			return fmt.Errorf("verify %s: %w", t.Name, err)
		}
		if src != dst {
			return &failure{realmhook.ResponseOther, fmt.Sprintf("verify: table %s differs: source %s, target %s", t.Name, src, dst)}
		}
		rows += src.Rows
	}
	if err := s.checkWindow(m); err != nil {
		return err
	}
	return s.transition(ctx, st, m, realmhook.MigrationReadyToCommit,
		fmt.Sprintf("verified %d rows in %d tables: counts and checksums equal", rows, len(s.tables)), nil)
}

// bothChecksums computes the source and target checksums of a table at once:
// each side streams its own rows, so the slower side sets the pace.
func bothChecksums(ctx context.Context, st store.Store, peer Peer, clientKey string, t store.Table, cols []string) (src, dst Checksum, err error) {
	var dstErr error
	var wg sync.WaitGroup
	wg.Go(func() { dst, dstErr = peer.Checksum(ctx, clientKey, t, cols) })
	src, err = TableChecksum(ctx, st, t, cols, clientKey)
	wg.Wait()
	if err != nil {
		return src, dst, fmt.Errorf("source: %w", err)
	}
	if dstErr != nil {
		return src, dst, fmt.Errorf("target: %w", dstErr)
	}
	return src, dst, nil
}
