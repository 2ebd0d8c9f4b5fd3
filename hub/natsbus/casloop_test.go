package natsbus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chatd/hub"
)

// leaderlessKV is a bucket whose stream has no leader for its first
// reads and writes: they reach no one (no responders).
type leaderlessKV struct {
	jetstream.KeyValue // not called
	gets, creates      []error
	created            []byte
}

func (k *leaderlessKV) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	if len(k.gets) > 0 {
		err := k.gets[0]
		k.gets = k.gets[1:]
		return nil, err
	}
	return nil, jetstream.ErrKeyNotFound
}

func (k *leaderlessKV) Create(_ context.Context, _ string, v []byte, _ ...jetstream.KVCreateOpt) (uint64, error) {
	if len(k.creates) > 0 {
		err := k.creates[0]
		k.creates = k.creates[1:]
		return 0, err
	}
	k.created = v
	return 1, nil
}

// TestCasLoopWithoutLeader: a limit's read or write that no stream leader
// received (the bucket's stream electing one) is sent again after a
// backoff instead of failing the limit (whose callers then let the
// request through uncounted); once the context ends it fails as
// unavailable.
func TestCasLoopWithoutLeader(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		gets, creates []error
		timeout       time.Duration
		wantErr       error
	}{
		{"read without a leader", []error{nats.ErrNoResponders}, nil, 10 * time.Second, nil},
		{"write without a leader", nil, []error{jetstream.ErrNoStreamResponse, jetstream.ErrNoStreamResponse}, 10 * time.Second, nil},
		{"no leader until the context ends", nil, []error{jetstream.ErrNoStreamResponse, jetstream.ErrNoStreamResponse,
			jetstream.ErrNoStreamResponse, jetstream.ErrNoStreamResponse}, 120 * time.Millisecond, hub.ErrBusUnavailable},
		{"another error fails at once", nil, []error{errors.New("permissions violation")}, 10 * time.Second, hub.ErrBusUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kv := &leaderlessKV{gets: tc.gets, creates: tc.creates}
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			err := (&Bus{}).casLoop(ctx, kv, "k", func([]byte) ([]byte, bool, error) { return []byte("v"), true, nil })
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("casLoop: %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && string(kv.created) != "v" {
				t.Fatalf("written %q, want v", kv.created)
			}
		})
	}
}
