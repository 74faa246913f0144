package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// mustPutProperty stores a property and returns whether it was created.
func mustPutProperty(t testing.TB, s store.Store, clientKey, key, value string) bool {
	t.Helper()
	created, err := s.PutProperty(t.Context(), clientKey, key, []byte(value))
	mustNoErr(t, err, fmt.Sprintf("PutProperty(%q, %q)", clientKey, key))
	return created
}

// mustGetProperty fails unless the property holds exactly want.
func mustGetProperty(t testing.TB, s store.Store, clientKey, key, want string) {
	t.Helper()
	got, err := s.GetProperty(t.Context(), clientKey, key)
	mustNoErr(t, err, fmt.Sprintf("GetProperty(%q, %q)", clientKey, key))
	if string(got) != want {
		t.Fatalf("GetProperty(%q, %q) = %q, want %q", clientKey, key, got, want)
	}
}

func testProperties(t *testing.T, h Harness) {
	t.Run("CreateReplaceGetDelete", func(t *testing.T) {
		s := h.Open(t)
		mustPutTenant(t, s, "ck", realmhook.TenantActive)
		// Whitespace and key order must survive: values are stored byte for byte.
		v1 := `{ "b": 1,  "a": [1, 2] }`
		if !mustPutProperty(t, s, "ck", "k", v1) {
			t.Fatal("first PutProperty reported created = false")
		}
		mustGetProperty(t, s, "ck", "k", v1)
		v2 := `"replaced"`
		if mustPutProperty(t, s, "ck", "k", v2) {
			t.Fatal("second PutProperty reported created = true")
		}
		mustGetProperty(t, s, "ck", "k", v2)

		mustNoErr(t, s.DeleteProperty(t.Context(), "ck", "k"), "DeleteProperty")
		_, err := s.GetProperty(t.Context(), "ck", "k")
		mustCode(t, err, realmhook.ENOTFOUND)
		mustCode(t, s.DeleteProperty(t.Context(), "ck", "k"), realmhook.ENOTFOUND)
		if !mustPutProperty(t, s, "ck", "k", v1) {
			t.Fatal("PutProperty after delete reported created = false")
		}
	})

	t.Run("GetMissing", func(t *testing.T) {
		s := h.Open(t)
		mustPutTenant(t, s, "ck", realmhook.TenantActive)
		_, err := s.GetProperty(t.Context(), "ck", "nothing")
		mustCode(t, err, realmhook.ENOTFOUND)
	})

	t.Run("WriteRefused", func(t *testing.T) {
		s := h.Open(t)
		frozen := newTenant("frozen", realmhook.TenantActive)
		frozen.MigrationID = "mig-1"
		mustNoErr(t, s.PutTenant(t.Context(), frozen), "PutTenant")
		mustPutTenant(t, s, "incoming", realmhook.TenantIncoming)
		mustPutTenant(t, s, "moved", realmhook.TenantMoved)
		mustPutTenant(t, s, "uninstalled", realmhook.TenantUninstalled)

		for _, tc := range []struct {
			clientKey string
			code      string
		}{
			{"frozen", realmhook.EMIGRATING},
			{"absent", realmhook.ENOTFOUND},
			{"incoming", realmhook.ENOTFOUND},
			{"moved", realmhook.ENOTFOUND},
			{"uninstalled", realmhook.ENOTFOUND},
		} {
			t.Run(tc.clientKey, func(t *testing.T) {
				_, err := s.PutProperty(t.Context(), tc.clientKey, "k", []byte(`1`))
				mustCode(t, err, tc.code)
				mustCode(t, s.DeleteProperty(t.Context(), tc.clientKey, "k"), tc.code)
				_, err = s.GetProperty(t.Context(), tc.clientKey, "k")
				mustCode(t, err, realmhook.ENOTFOUND)
			})
		}
	})

	t.Run("FrozenKeepsValue", func(t *testing.T) {
		s := h.Open(t)
		tn := mustPutTenant(t, s, "ck", realmhook.TenantActive)
		mustPutProperty(t, s, "ck", "k", `"before"`)
		tn.MigrationID = "mig-1"
		mustNoErr(t, s.PutTenant(t.Context(), tn), "freeze tenant")
		_, err := s.PutProperty(t.Context(), "ck", "k", []byte(`"after"`))
		mustCode(t, err, realmhook.EMIGRATING)
		mustCode(t, s.DeleteProperty(t.Context(), "ck", "k"), realmhook.EMIGRATING)
		mustGetProperty(t, s, "ck", "k", `"before"`)
	})

	t.Run("TenantsIsolated", func(t *testing.T) {
		s := h.Open(t)
		mustPutTenant(t, s, "a", realmhook.TenantActive)
		mustPutTenant(t, s, "b", realmhook.TenantActive)
		mustPutProperty(t, s, "a", "k", `"a"`)
		if !mustPutProperty(t, s, "b", "k", `"b"`) {
			t.Fatal("same key in another tenant reported created = false")
		}
		mustPutProperty(t, s, "a", "only-a", `1`)
		mustGetProperty(t, s, "a", "k", `"a"`)
		mustGetProperty(t, s, "b", "k", `"b"`)
		_, err := s.GetProperty(t.Context(), "b", "only-a")
		mustCode(t, err, realmhook.ENOTFOUND)

		mustNoErr(t, s.DeleteProperty(t.Context(), "a", "k"), "DeleteProperty")
		mustGetProperty(t, s, "b", "k", `"b"`)
		props, err := s.ListProperties(t.Context(), "b", "", "", 100)
		mustNoErr(t, err, "ListProperties")
		if len(props) != 1 || props[0].Key != "k" || string(props[0].Value) != `"b"` {
			t.Fatalf("ListProperties(b) = %+v, want only k", props)
		}
	})
}

// listKeys has keys where LIKE wildcards, case and multi-byte UTF-8 would
// give a different order or match set than plain byte comparison.
var listKeys = []string{
	"a", "a%", "a%b", "a_c", "abc", "ab", "aXc", "a\\b", "A", "B", "b", "b%", "z", "~",
	"é", "éa", "日本", "日本語", "\u00ff", "\u0100", "𝄞music", "prefix/1", "prefix/10", "prefix/2", "prefix0",
}

func testListProperties(t *testing.T, h Harness) {
	s := h.Open(t)
	mustPutTenant(t, s, "ck", realmhook.TenantActive)
	mustPutTenant(t, s, "other", realmhook.TenantActive)
	for i, k := range listKeys {
		mustPutProperty(t, s, "ck", k, fmt.Sprintf(`{"i":%d}`, i))
		mustPutProperty(t, s, "other", k, `"other"`)
	}
	mustPutProperty(t, s, "other", "a-only-other", `"other"`)
	valueOf := map[string]string{}
	for i, k := range listKeys {
		valueOf[k] = fmt.Sprintf(`{"i":%d}`, i)
	}

	// The oracle: Go's string comparison is byte order.
	expect := func(prefix, after string, limit int) []string {
		var keys []string
		for _, k := range listKeys {
			if strings.HasPrefix(k, prefix) && k > after {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		if len(keys) > limit {
			keys = keys[:limit]
		}
		return keys
	}

	for _, tc := range []struct {
		name          string
		prefix, after string
		limit         int
	}{
		{"All", "", "", 1000},
		{"Limit", "", "", 3},
		{"After", "", "a%b", 1000},
		{"AfterAbsentKey", "", "aa", 4},
		{"PrefixA", "a", "", 1000},
		{"PercentIsLiteral", "a%", "", 1000},
		{"UnderscoreIsLiteral", "a_", "", 1000},
		{"BackslashIsLiteral", "a\\", "", 1000},
		{"CaseSensitive", "A", "", 1000},
		{"Unicode", "日本", "", 1000},
		{"UnicodeAccent", "é", "", 1000},
		{"PrefixAndAfter", "prefix/", "prefix/1", 1000},
		{"NoMatch", "q", "", 1000},
		{"AfterEverything", "", "\U0010ffff", 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListProperties(t.Context(), "ck", tc.prefix, tc.after, tc.limit)
			mustNoErr(t, err, "ListProperties")
			want := expect(tc.prefix, tc.after, tc.limit)
			var keys []string
			for _, p := range got {
				keys = append(keys, p.Key)
				if string(p.Value) != valueOf[p.Key] {
					t.Errorf("value of %q = %q, want %q", p.Key, p.Value, valueOf[p.Key])
				}
			}
			if !slices.Equal(keys, want) {
				t.Fatalf("ListProperties(prefix %q, after %q, limit %d) =\n%q\nwant\n%q", tc.prefix, tc.after, tc.limit, keys, want)
			}
		})
	}

	t.Run("Pagination", func(t *testing.T) {
		for _, limit := range []int{1, 2, 7} {
			var keys []string
			after := ""
			for page := 0; ; page++ {
				if page > len(listKeys)+1 {
					t.Fatalf("limit %d: pagination did not end", limit)
				}
				got, err := s.ListProperties(t.Context(), "ck", "", after, limit)
				mustNoErr(t, err, "ListProperties")
				if len(got) > limit {
					t.Fatalf("limit %d: page has %d entries", limit, len(got))
				}
				if len(got) == 0 {
					break
				}
				for _, p := range got {
					keys = append(keys, p.Key)
				}
				after = got[len(got)-1].Key
			}
			if want := expect("", "", len(listKeys)); !slices.Equal(keys, want) {
				t.Fatalf("limit %d: paged keys =\n%q\nwant\n%q", limit, keys, want)
			}
		}
	})
}

// testPropertyText: what one backend cannot hold, none holds. A key with NUL
// or invalid UTF-8 and a value that is not UTF-8 JSON are EINVALID on every
// backend (the tenant API refuses them first, with the same rule), so a
// tenant's properties can always migrate between backends.
func testPropertyText(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	mustPutTenant(t, s, "ck", realmhook.TenantActive)
	for _, tc := range []struct {
		name, key, value string
	}{
		{"KeyNUL", "nul\x00byte", `1`},
		{"KeyBadUTF8", "bad\xffutf8", `1`},
		{"ValueBadUTF8", "k", "\"bad\xffutf8\""},
		{"ValueOverlong", "k", "\"\xc0\xaf\""},
		{"ValueNotJSON", "k", `{"a":`},
		{"ValueRawNUL", "k", "\"a\x00b\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.PutProperty(ctx, "ck", tc.key, []byte(tc.value))
			mustCode(t, err, realmhook.EINVALID)
			if !strings.Contains(realmhook.ErrorMessage(err), "property") {
				t.Errorf("message %q does not say what was wrong", realmhook.ErrorMessage(err))
			}
			if _, err := s.GetProperty(ctx, "ck", tc.key); err == nil {
				t.Errorf("refused property %q was stored", tc.key)
			}
		})
	}
	t.Run("EscapedNULIsJSON", func(t *testing.T) {
		// \u0000 is valid JSON text and stored byte for byte (as text, not jsonb).
		v := `"a\u0000b"`
		_, err := s.PutProperty(ctx, "ck", "escaped", []byte(v))
		mustNoErr(t, err, "PutProperty")
		got, err := s.GetProperty(ctx, "ck", "escaped")
		mustNoErr(t, err, "GetProperty")
		if string(got) != v {
			t.Fatalf("GetProperty = %q, want %q", got, v)
		}
	})
}
