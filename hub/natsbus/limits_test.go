package natsbus

import (
	"context"
	"testing"
	"time"
)

// TestTokenBucketsAcrossSkewedClocks: a user's requests alternating
// between two instances whose clocks differ (round-robin balancing does
// that by itself) get no more than the budget. An instance whose clock is
// behind set the bucket's last refill back to its own time, and the next
// take on the instance ahead refilled the whole skew again: with a skew
// of a minute, every take passed.
func TestTokenBucketsAcrossSkewedClocks(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ahead, _ := newBusWith(t, c, Options{InstanceID: "skew-ahead", LeaseTTL: 2 * time.Second,
		clock: func() time.Time { return time.Now().Add(time.Minute) }})
	behind, _ := newBus(t, c, "skew-behind", 2*time.Second)
	waitHealthy(t, ctx, ahead, behind)

	tests := []struct {
		name string
		take func(l *Limits) (bool, error)
		max  int // the burst
	}{
		{"budget", func(l *Limits) (bool, error) {
			_, ok, err := l.TakeBudget(ctx, "conversations", "u-skew", 6)
			return ok, err
		}, 6},
		{"sends", func(l *Limits) (bool, error) { return l.TakeSend(ctx, "u-skew", 8) }, 2},
	}
	for _, tt := range tests {
		passed := 0
		for i := range 20 {
			l := ahead.Limits()
			if i%2 == 1 {
				l = behind.Limits()
			}
			ok, err := tt.take(l)
			if err != nil {
				t.Fatalf("%s: take %d: %v", tt.name, i, err)
			}
			if ok {
				passed++
			}
		}
		// The test takes well under a second: at most one token more.
		if passed > tt.max+1 {
			t.Errorf("%s: %d of 20 takes passed across two instances, want at most the burst of %d", tt.name, passed, tt.max)
		}
	}
}
