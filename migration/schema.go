package migration

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// CheckSchema is the engine's start-up check of the migrated tables in every
// served database. It orders the tables by their foreign keys, read from the
// databases' own catalogs, so that a copy writes parents before children and
// every delete (trim, rollback, purge) removes children before parents; a
// cycle of foreign keys that cannot be deferred is refused, naming its
// tables. It also refuses a table whose triggers would fire for copied rows
// (see checkTriggers). Call it once after New and before Run or any hook: the order is
// the copy's checkpoint index, so it must not change while jobs run.
func (s *Service) CheckSchema(ctx context.Context) error {
	var fks []store.ForeignKey
	for _, realm := range sortedKeys(s.served) {
		st := s.served[realm]
		for _, t := range s.tables {
			got, err := st.ForeignKeys(ctx, t.Name)
			if err != nil {
				return fmt.Errorf("realm %s: %w", realm, err)
			}
			fks = append(fks, got...)
		}
	}
	ordered, err := orderTables(s.tables, fks)
	if err != nil {
		return err
	}
	if err := s.checkTriggers(ctx); err != nil {
		return err
	}
	s.tables = ordered
	return nil
}

// checkTriggers refuses a table with triggers that would fire for copied
// rows (the backend cannot keep them quiet), unless the table allows them:
// what they write would stay behind a rolled-back copy.
func (s *Service) checkTriggers(ctx context.Context) error {
	for _, realm := range sortedKeys(s.served) {
		for _, t := range s.tables {
			if t.AllowTriggers {
				continue
			}
			names, err := s.served[realm].Triggers(ctx, t.Name)
			if err != nil {
				return fmt.Errorf("realm %s: %w", realm, err)
			}
			if len(names) > 0 {
				return realmhook.Errorf(realmhook.EINVALID,
					"realm %s: table %s has triggers %s that would fire for every row a migration copies in (and what they write would outlive a rollback); drop them, or set tables[].allowTriggers: true for %s to accept that",
					realm, t.Name, strings.Join(names, ", "), t.Name)
			}
		}
	}
	return nil
}

// orderTables sorts tables so that every table comes after the tables its
// foreign keys reference, keeping the given order wherever the keys allow
// (the result is the same for the same input: checkpoints index it). A
// cycle is broken only at deferrable keys; one without is EINVALID naming
// its tables. Keys to tables outside the set, and a table's keys to itself,
// do not order anything.
func orderTables(tables []store.Table, fks []store.ForeignKey) ([]store.Table, error) {
	order, rest := topoSort(tables, fks, true)
	if len(rest) > 0 {
		order, rest = topoSort(tables, fks, false)
	}
	if len(rest) > 0 {
		return nil, realmhook.Errorf(realmhook.EINVALID,
			"tables %s reference each other in a cycle of foreign keys that are not deferrable: no copy order writes every parent before its children",
			strings.Join(rest, ", "))
	}
	return order, nil
}

// topoSort is Kahn's algorithm taking, at each step, the first ready table
// in the given order. It returns the sorted tables and, if some form a
// cycle, the names of those left over.
func topoSort(tables []store.Table, fks []store.ForeignKey, withDeferrable bool) ([]store.Table, []string) {
	index := make(map[string]int, len(tables))
	for i, t := range tables {
		index[strings.ToLower(t.Name)] = i
	}
	parents := make([]map[int]bool, len(tables))
	for _, fk := range fks {
		c, okc := index[strings.ToLower(fk.Child)]
		p, okp := index[strings.ToLower(fk.Parent)]
		if !okc || !okp || c == p || (fk.Deferrable && !withDeferrable) {
			continue
		}
		if parents[c] == nil {
			parents[c] = map[int]bool{}
		}
		parents[c][p] = true
	}
	done := make([]bool, len(tables))
	var out []store.Table
	for len(out) < len(tables) {
		next := -1
		for i := range tables {
			if done[i] {
				continue
			}
			ready := true
			for p := range parents[i] {
				if !done[p] {
					ready = false
					break
				}
			}
			if ready {
				next = i
				break
			}
		}
		if next < 0 {
			var rest []string
			for i, t := range tables {
				if !done[i] {
					rest = append(rest, t.Name)
				}
			}
			return out, rest
		}
		done[next] = true
		out = append(out, tables[next])
	}
	return out, nil
}

// childrenFirst returns tables in the order deletes must run: the reverse of
// the copy order.
func childrenFirst(tables []store.Table) []store.Table {
	out := slices.Clone(tables)
	slices.Reverse(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
