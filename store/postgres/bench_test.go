package postgres_test

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/realmhook/realmhook/integration/pgtest"
	"github.com/realmhook/realmhook/store"
	"github.com/realmhook/realmhook/store/storetest"
)

// BenchmarkCopy copies one tenant's rows of the app table between two
// databases the way the migration engine does: ReadRows pages from the source,
// CopyRows (COPY) into the target. Rows per op: REALMHOOK_BENCH_ROWS
// (default 100000); batch: REALMHOOK_BENCH_BATCH (default 5000).
func BenchmarkCopy(b *testing.B) {
	n := envInt(b, "REALMHOOK_BENCH_ROWS", 100000)
	batch := envInt(b, "REALMHOOK_BENCH_BATCH", 5000)
	src := mustOpen(b, pgtest.NewDatabase(b))
	harness{}.CreateAppTable(b, src, "items")
	mustExec(b, src, `INSERT INTO items SELECT 't', g, 's' || g, repeat('body ', 10) || g, g / 3.0, '\xdeadbeef'::bytea, g % 2 = 0, now() + g * interval '1 second'
		FROM generate_series(1, $1) g`, n)
	mustExec(b, src, "ANALYZE items")
	tbl := storetest.AppTable("items")
	var reading, writing time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dst := mustOpen(b, pgtest.NewDatabase(b))
		harness{}.CreateAppTable(b, dst, "items")
		b.StartTimer()
		var after store.Row
		copied := 0
		for {
			t0 := time.Now()
			rows, err := src.ReadRows(b.Context(), tbl, storetest.AppColumns, "t", after, batch)
			reading += time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			if len(rows) == 0 {
				break
			}
			t0 = time.Now()
			if err := storetest.WriteRows(b.Context(), dst, tbl, storetest.AppColumns, rows); err != nil {
				b.Fatal(err)
			}
			writing += time.Since(t0)
			copied += len(rows)
			last := rows[len(rows)-1]
			after = store.Row{last[1], last[2]}
		}
		if copied != n {
			b.Fatalf("copied %d rows, want %d", copied, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(reading.Seconds()/float64(b.N), "read-s/op")
	b.ReportMetric(writing.Seconds()/float64(b.N), "write-s/op")
}

func envInt(b *testing.B, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		return n
	}
	return def
}

// BenchmarkPsqlPipe is the yardstick for BenchmarkCopy: the same rows through
// `psql -c "COPY ... TO STDOUT" | psql -c "COPY ... FROM STDIN"`.
func BenchmarkPsqlPipe(b *testing.B) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		b.Fatalf("psql not on PATH: %v", err)
	}
	n := envInt(b, "REALMHOOK_BENCH_ROWS", 100000)
	srcURL := pgtest.NewDatabase(b)
	src := mustOpen(b, srcURL)
	harness{}.CreateAppTable(b, src, "items")
	mustExec(b, src, `INSERT INTO items SELECT 't', g, 's' || g, repeat('body ', 10) || g, g / 3.0, '\xdeadbeef'::bytea, g % 2 = 0, now() + g * interval '1 second'
		FROM generate_series(1, $1) g`, n)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dstURL := pgtest.NewDatabase(b)
		harness{}.CreateAppTable(b, mustOpen(b, dstURL), "items")
		b.StartTimer()
		cmd := exec.Command("sh", "-c", `"$0" "$1" -qc "COPY (SELECT * FROM items WHERE tenant = 't' ORDER BY id, sub) TO STDOUT" | "$0" "$2" -qc "COPY items FROM STDIN"`, psql, srcURL, dstURL)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("psql pipe: %v: %s", err, out)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
