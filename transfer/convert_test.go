package transfer

import (
	"reflect"
	"testing"
	"time"

	"github.com/realmhook/realmhook"
)

// Every field of a tenant or migration record crosses the transfer API, so a
// field added to realmhook.Tenant or realmhook.Migration and forgotten in the
// wire conversions (Tenant.CloudID was) fails here instead of being dropped
// by a move between regional processes.
func TestWire_EveryField(t *testing.T) {
	t.Run("Tenant", func(t *testing.T) {
		var in realmhook.Tenant
		fill(t, reflect.ValueOf(&in).Elem(), 1)
		same(t, "Tenant", reflect.ValueOf(in), reflect.ValueOf(*tenantFromWire(tenantToWire(&in))))
	})
	t.Run("Migration", func(t *testing.T) {
		var in realmhook.Migration
		fill(t, reflect.ValueOf(&in).Elem(), 1)
		same(t, "Migration", reflect.ValueOf(in), reflect.ValueOf(*migrationFromWire(migrationToWire(&in))))
	})
}

var timeType = reflect.TypeFor[time.Time]()

// fill sets every field of v to a distinct non-zero value.
func fill(t *testing.T, v reflect.Value, seed int) int {
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		seed++
		switch {
		case f.Type() == timeType:
			f.Set(reflect.ValueOf(time.Date(2026, 12, 2, 3, 4, 5, seed, time.UTC).Add(time.Duration(seed) * time.Hour)))
		case f.Kind() == reflect.String:
			f.SetString(name + "-value")
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		case f.CanInt():
			f.SetInt(int64(seed))
		case f.Kind() == reflect.Struct:
			seed = fill(t, f, seed)
		default:
			t.Fatalf("field %s of kind %s: teach this test to fill it", name, f.Kind())
		}
	}
	return seed
}

func same(t *testing.T, path string, want, got reflect.Value) {
	t.Helper()
	for i := range want.NumField() {
		name := path + "." + want.Type().Field(i).Name
		w, g := want.Field(i), got.Field(i)
		switch {
		case w.Type() == timeType:
			if !w.Interface().(time.Time).Equal(g.Interface().(time.Time)) {
				t.Errorf("%s = %v after the wire, want %v", name, g, w)
			}
		case w.Kind() == reflect.Struct:
			same(t, name, w, g)
		case !reflect.DeepEqual(w.Interface(), g.Interface()):
			t.Errorf("%s = %#v after the wire, want %#v", name, g, w)
		}
	}
}
