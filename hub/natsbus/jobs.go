package natsbus

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"chatd/hub"
)

// Job claims (hub.Bus.TakeJob) live in the bucket chatd_sends, under the
// key "job.<name>" (no user's key has a dot), so that an existing
// deployment needs no new bucket nor permission: a claim is a compare-and-
// swap on its key, and the bucket forgets it a minute after it was
// written (its entries' age, hub.JobTTLMax), a dead instance's included.
// Instances compare their clocks' times to the claim's end: a skew between
// them shortens or lengthens a claim by as much.

// jobClaim is the value of a job's key: who claims it, and until when.
type jobClaim struct {
	Instance string    `json:"instance"`
	Until    time.Time `json:"until"`
}

// jobKey is the key of job in chatd_sends.
func jobKey(job string) string { return "job." + token(job) }

func sendsBucket(r *resources) jetstream.KeyValue { return r.sends }

// TakeJob implements hub.Bus.
func (b *Bus) TakeJob(ctx context.Context, job string, ttl time.Duration) error {
	var holder string
	err := b.updateKey(ctx, sendsBucket, jobKey(job), func(val []byte) ([]byte, bool, error) {
		now := time.Now()
		if cur, ok := decodeJob(val); ok && cur.Instance != b.id && now.Before(cur.Until) {
			holder = cur.Instance
			return nil, false, nil
		}
		out, err := json.Marshal(jobClaim{Instance: b.id, Until: now.Add(min(ttl, hub.JobTTLMax))})
		return out, true, err
	})
	if err != nil {
		return fmt.Errorf("natsbus: take job %s: %w", job, err)
	}
	if holder != "" {
		return fmt.Errorf("natsbus: job %s: %w by %s", job, hub.ErrLockHeld, holder)
	}
	return nil
}

// EndJob implements hub.Bus: the claim is overwritten by an ended one
// (the bucket's entries are not removed: it has no markers that expire).
func (b *Bus) EndJob(ctx context.Context, job string) error {
	err := b.updateKey(ctx, sendsBucket, jobKey(job), func(val []byte) ([]byte, bool, error) {
		if cur, ok := decodeJob(val); !ok || cur.Instance != b.id || cur.Until.IsZero() {
			return nil, false, nil
		}
		out, err := json.Marshal(jobClaim{})
		return out, true, err
	})
	if err != nil {
		return fmt.Errorf("natsbus: end job %s: %w", job, err)
	}
	return nil
}

// decodeJob reads a job's key; ok is false when there is none (or not a
// claim: taken as ended).
func decodeJob(val []byte) (jobClaim, bool) {
	var c jobClaim
	if val == nil || json.Unmarshal(val, &c) != nil {
		return jobClaim{}, false
	}
	return c, true
}
