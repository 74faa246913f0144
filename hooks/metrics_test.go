package hooks

import "testing"

func TestMetrics_Misdirected(t *testing.T) {
	m := NewMetrics()
	m.misdirected.WithLabelValues("EU", "US").Add(2)
	m.misdirected.WithLabelValues("EU", "global").Inc()
	m.misdirected.WithLabelValues("US", "EU").Inc()
	for realm, want := range map[string]int64{"EU": 3, "US": 1, "global": 0} {
		if got := m.Misdirected(realm); got != want {
			t.Errorf("Misdirected(%s) = %d, want %d", realm, got, want)
		}
	}
}
