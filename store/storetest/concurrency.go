package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

func testConcurrency(t *testing.T, h Harness) {
	t.Run("ParallelPutProperty", func(t *testing.T) {
		s := h.Open(t)
		mustPutTenant(t, s, "ck", realmhook.TenantActive)
		const workers, each = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					created, err := s.PutProperty(t.Context(), "ck", fmt.Sprintf("w%d/k%03d", w, i), []byte(fmt.Sprint(i)))
					if err != nil {
						errs <- fmt.Errorf("worker %d put %d: %w", w, i, err)
					} else if !created {
						errs <- fmt.Errorf("worker %d put %d: created = false for a new key", w, i)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		props, err := s.ListProperties(t.Context(), "ck", "", "", workers*each+10)
		mustNoErr(t, err, "ListProperties")
		if len(props) != workers*each {
			t.Fatalf("%d properties landed, want %d", len(props), workers*each)
		}
	})

	t.Run("ReadWhileWriting", func(t *testing.T) {
		s := h.Open(t)
		h.CreateAppTable(t, s, appTableName)
		tbl := AppTable(appTableName)
		const batches, per = 20, 50
		done := make(chan error, 1)
		go func() {
			for b := range batches {
				var rows []store.Row
				for i := range per {
					id := int64(b*per + i)
					rows = append(rows, store.Row{"t", id, "s", "v", float64(id), nil, true, base})
				}
				if err := WriteRows(t.Context(), s, tbl, AppColumns, rows); err != nil {
					done <- fmt.Errorf("batch %d: %w", b, err)
					return
				}
			}
			done <- nil
		}()

		// Read until the writer is done; every page must be in key order and
		// every pass must see whole batches, since each batch is one transaction.
		deadline := time.Now().Add(2 * time.Minute)
		passes := 0
		for writing := true; writing; passes++ {
			select {
			case err := <-done:
				mustNoErr(t, err, "WriteRows")
				writing = false
			default:
			}
			if time.Now().After(deadline) {
				t.Fatal("writer did not finish in time")
			}
			var n int64
			var last int64 = -1
			err := s.ScanRows(t.Context(), tbl, []string{"id"}, "t", func(store.Row) error { n++; return nil })
			mustNoErr(t, err, "ScanRows")
			rows, err := s.ReadRows(t.Context(), tbl, AppColumns, "t", nil, batches*per)
			mustNoErr(t, err, "ReadRows")
			for _, r := range rows {
				id := r[1].(int64)
				if id <= last {
					t.Fatalf("ReadRows out of order: %d after %d", id, last)
				}
				last = id
			}
			if n%per != 0 || len(rows)%per != 0 {
				t.Fatalf("saw part of a batch: scan %d rows, read %d rows", n, len(rows))
			}
		}
		got, err := s.CountRows(t.Context(), tbl, "t")
		mustNoErr(t, err, "CountRows")
		if got != batches*per {
			t.Fatalf("CountRows = %d, want %d", got, batches*per)
		}
		t.Logf("%d read passes during writes", passes)
	})
}
