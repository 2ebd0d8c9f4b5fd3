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

// inProcessKV refuses every create until a moment: what a stream's
// leader answers while another write to the key is in process (its
// error 10164), the key reading as before until that write lands.
type inProcessKV struct {
	jetstream.KeyValue // not called
	until              time.Time
	refused            int
	created            []byte
}

func (k *inProcessKV) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	return nil, jetstream.ErrKeyNotFound
}

func (k *inProcessKV) Create(_ context.Context, _ string, v []byte, _ ...jetstream.KVCreateOpt) (uint64, error) {
	if time.Now().Before(k.until) {
		k.refused++
		return 0, &jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequenceConstant}
	}
	k.created = v
	return 1, nil
}

// TestCasLoopOutlastsWriteInProcess: a limit's write refused while
// another write to its key is in process for 120 ms (a loaded machine)
// is written once it lands, instead of failing as "too many concurrent
// updates" (30 short waits of at most 5 ms, about 75 ms, did).
func TestCasLoopOutlastsWriteInProcess(t *testing.T) {
	t.Parallel()
	kv := &inProcessKV{until: time.Now().Add(120 * time.Millisecond)}
	err := (&Bus{}).casLoop(context.Background(), kv, "k", func([]byte) ([]byte, bool, error) { return []byte("v"), true, nil })
	if err != nil {
		t.Fatalf("casLoop: %v after %d refusals", err, kv.refused)
	}
	if string(kv.created) != "v" || kv.refused == 0 {
		t.Fatalf("written %q after %d refusals, want v after some", kv.created, kv.refused)
	}
}

// TestConflictWait: the waits after lost compare-and-swaps grow with
// their number, within their bounds.
func TestConflictWait(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		conflicts int
		bound     time.Duration
	}{{0, 2 * time.Millisecond}, {4, 2 * time.Millisecond}, {5, 4 * time.Millisecond}, {24, 32 * time.Millisecond},
		{25, 64 * time.Millisecond}, {casRetries - 1, 64 * time.Millisecond}} {
		longest := time.Duration(0)
		for range 200 {
			d := conflictWait(tc.conflicts)
			if d < 0 || d >= tc.bound {
				t.Fatalf("conflictWait(%d) = %v, want within [0, %v)", tc.conflicts, d, tc.bound)
			}
			longest = max(longest, d)
		}
		if longest < tc.bound/2 {
			t.Errorf("conflictWait(%d): longest of 200 %v, want waits spread up to %v", tc.conflicts, longest, tc.bound)
		}
	}
}
