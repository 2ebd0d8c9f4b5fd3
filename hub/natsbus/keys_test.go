package natsbus

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// keyLease is a lease of instance declaring session keys.
func keyLease(instance string, at time.Time, signs string, accepts ...string) entry {
	v, _ := json.Marshal(lease{Instance: instance, Signs: signs, Accepts: accepts})
	return entry{key: token(instance), value: v, created: at, op: jetstream.KeyValuePut}
}

// TestSessionKeyDisagreement: an instance says in its log when another
// one starts refusing its session tokens or signing tokens it refuses, once
// per change (not at every renewal), and when they agree again; a rotation
// (each accepts the other's signing key) and leases without keys say nothing.
func TestSessionKeyDisagreement(t *testing.T) {
	t.Parallel()
	type want struct {
		level       slog.Level
		here, there string // refused_here, refused_there
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		mine  SessionKeys
		steps []entry
		want  []*want // per step: the record logged, nil for none
	}{
		{
			name: "the same secret everywhere",
			mine: SessionKeys{Signs: "A", Accepts: []string{"A"}},
			steps: []entry{keyLease("peer", t0, "A", "A"), keyLease("peer", t0.Add(time.Second), "A", "A"),
				keyLease("me", t0, "A", "A")},
			want: []*want{nil, nil, nil},
		},
		{
			name: "a different secret, renewed, half rotated, then fixed",
			mine: SessionKeys{Signs: "A", Accepts: []string{"A"}},
			steps: []entry{
				keyLease("peer", t0, "B", "B"),
				keyLease("peer", t0.Add(time.Second), "B", "B"),
				keyLease("peer", t0.Add(2*time.Second), "B", "B", "A"),
				keyLease("peer", t0.Add(3*time.Second), "A", "A", "B"),
			},
			want: []*want{
				{slog.LevelWarn, "true", "true"},
				nil,
				{slog.LevelWarn, "true", "false"},
				{level: slog.LevelInfo},
			},
		},
		{
			name:  "a rotation: each accepts the other's signing secret",
			mine:  SessionKeys{Signs: "A", Accepts: []string{"A", "B"}},
			steps: []entry{keyLease("peer", t0, "B", "B", "A"), keyLease("other", t0, "A", "A", "B")},
			want:  []*want{nil, nil},
		},
		{
			name:  "a lease without keys (a version before them)",
			mine:  SessionKeys{Signs: "A", Accepts: []string{"A"}},
			steps: []entry{keyLease("old", t0, "")},
			want:  []*want{nil},
		},
		{
			name:  "no keys here",
			steps: []entry{keyLease("peer", t0, "B", "B")},
			want:  []*want{nil},
		},
		{
			name: "an instance that stopped and came back with another secret",
			mine: SessionKeys{Signs: "A", Accepts: []string{"A"}},
			steps: []entry{keyLease("peer", t0, "A", "A"), {key: token("peer"), op: jetstream.KeyValueDelete},
				keyLease("peer", t0.Add(time.Second), "C", "C")},
			want: []*want{nil, nil, {slog.LevelWarn, "true", "true"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logs := make(logRecords, 16)
			v := newLeaseView("me", 10*time.Second, tt.mine, slog.New(logs))
			for i, e := range tt.steps {
				v.apply(e)
				var got *slog.Record
				select {
				case r := <-logs:
					got = &r
				default:
				}
				w := tt.want[i]
				switch {
				case w == nil && got != nil:
					t.Fatalf("step %d: logged %q, want nothing", i, got.Message)
				case w != nil && got == nil:
					t.Fatalf("step %d: logged nothing, want a %s record", i, w.level)
				case w != nil && (got.Level != w.level || logAttr(*got, "refused_here") != w.here ||
					logAttr(*got, "refused_there") != w.there || logAttr(*got, "other_instance") != "peer"):
					t.Fatalf("step %d: logged %s %q (here %s, there %s, instance %s), want %s (here %s, there %s)",
						i, got.Level, got.Message, logAttr(*got, "refused_here"), logAttr(*got, "refused_there"),
						logAttr(*got, "other_instance"), w.level, w.here, w.there)
				}
			}
		})
	}
}

// TestSessionKeyConflicts counts the instances with a live lease that
// disagree about session keys: not those that agree, nor one whose lease
// expired.
func TestSessionKeyConflicts(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	v := newLeaseView("me", 10*time.Second, SessionKeys{Signs: "A", Accepts: []string{"A"}}, nil)
	for _, e := range []entry{
		keyLease("me", t0.Add(30*time.Second), "A", "A"),
		keyLease("agrees", t0.Add(29*time.Second), "A", "A"),
		keyLease("differs", t0.Add(28*time.Second), "B", "B"),
		keyLease("refuses-mine", t0.Add(27*time.Second), "A", "A-old"),
		keyLease("differed-and-died", t0, "C", "C"),
	} {
		v.apply(e)
	}
	if n := v.keyConflicts(); n != 2 {
		t.Fatalf("%d conflicts, want 2 (differs, refuses-mine)", n)
	}
}
