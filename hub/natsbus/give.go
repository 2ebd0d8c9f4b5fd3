package natsbus

import (
	"context"
	"encoding/json"

	"github.com/nats-io/nats.go/jetstream"
)

// GiveSend implements limits.Shared: it puts back one token of the user's
// sends bucket, refilled first, up to its burst of perMinute/4 (at least
// 1), for a send that did not happen after TakeSend spent it (another
// budget refused it, or the hub refused or failed it). A key
// that expired meanwhile is a full bucket and stays absent. Like every
// update it is a compare-and-swap, and a write whose outcome is unknown is
// not sent again (casLoop), so a token is never given back twice.
func (l *Limits) GiveSend(ctx context.Context, userID string, perMinute int) error {
	return l.b.limitResult(l.giveToken(ctx, token(userID), perMinute, max(1, float64(perMinute)/4)))
}

// GiveBudget implements limits.Shared: it puts back one event of the
// named budget that TakeBudget spent, up to its burst of perMinute, as
// GiveSend does for sends.
func (l *Limits) GiveBudget(ctx context.Context, budget, userID string, perMinute int) error {
	return l.b.limitResult(l.giveToken(ctx, token(budget+":"+userID), perMinute, max(1, float64(perMinute))))
}

// giveToken puts back one token of the bucket under key in chatd_sends,
// refilled at perMinute/60 per second up to burst.
func (l *Limits) giveToken(ctx context.Context, key string, perMinute int, burst float64) error {
	rate := float64(perMinute) / 60
	return l.b.updateKey(ctx, func(r *resources) jetstream.KeyValue { return r.sends }, key, func(val []byte) ([]byte, bool, error) {
		if val == nil {
			return nil, false, nil // expired: full
		}
		now, known := l.b.lease.natsNow()
		if !known {
			return nil, false, errNoNATSTime
		}
		s, err := refilled(val, now, rate, burst)
		if err != nil {
			return nil, false, err
		}
		s.Tokens = min(burst, s.Tokens+1)
		out, err := json.Marshal(s)
		return out, true, err
	})
}
