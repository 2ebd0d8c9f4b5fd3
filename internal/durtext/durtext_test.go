package durtext_test

import (
	"testing"
	"time"

	"chatd/internal/durtext"
)

func TestShort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{90 * time.Second, "1m30s"},
		{5 * time.Minute, "5m"},
		{10 * time.Minute, "10m"},
		{8760 * time.Hour, "8760h"},
		{time.Hour + 30*time.Minute, "1h30m"},
		{1500 * time.Millisecond, "1.5s"},
		{time.Second, "1s"},
	} {
		if got := durtext.Short(tc.d); got != tc.want {
			t.Errorf("Short(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
