package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of the sweep of chatd_conns (connsSweep).
const (
	// connsSweepInterval is how often a round of the sweep runs.
	connsSweepInterval = 10 * time.Second
	// connsSweepKeys bounds the keys one round reads (one request each).
	connsSweepKeys = 500
)

// kvOperation is the header of a KV delete or purge marker.
const kvOperation = "KV-Operation"

// connsSweep removes the counts of dead instances from chatd_conns. Such
// a count is otherwise dropped only when the user's key is written again
// (setOwn, at the user's next connection opened or closed anywhere), so
// the key of a user connected to an instance when it crashed, who never
// connects again, stayed for good. Each round reads a page of keys from
// where the last one stopped, in the order of the bucket's stream (which
// keeps one message per key), and starts again from the first key once
// it reached the last: the work of a round is bounded whatever the
// bucket's size. A key naming a dead instance is written again without
// its count (deleted when nothing else is left) by compare-and-swap, as
// every change of the bucket is, so a connection opened or closed
// meanwhile wins and the key is judged again from what it holds then.
// Every instance sweeps; several doing so at once only lose swaps to
// each other. Only the sweep's goroutine uses it.
type connsSweep struct {
	l *Limits
	// cursor is the stream sequence the next round reads from.
	cursor uint64
	// end is the stream's last sequence when the current pass began (0:
	// no pass begun): the pass ends there. A key written after it went
	// through setOwn, which drops the dead instances' counts (pruneDead);
	// without the bound, writes coming faster than a round reads kept the
	// cursor from the stream's end, so a pass never ended, and a key read
	// once, too early to judge, was never read again.
	end uint64
	// noticed is when the sweep first found each instance named in a key
	// without a lease seen (the leases' clock; see leaseView.deadNamed):
	// kept here rather than in the lease view's own, which forgets
	// after a while, so that an instance named in one key only, read
	// once a pass over a large bucket, is still judged dead.
	noticed map[string]time.Time
	// named are the instances found in keys during the current pass; at
	// its end, noticed keeps only those.
	named map[string]bool
}

func newConnsSweep(l *Limits) *connsSweep {
	return &connsSweep{l: l, cursor: 1, noticed: map[string]time.Time{}, named: map[string]bool{}}
}

// sweepLoop runs a round of the sweep every connsSweepEvery until ctx ends.
func (l *Limits) sweepLoop(ctx context.Context) {
	s := newConnsSweep(l)
	t := time.NewTicker(l.b.opts.connsSweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		read, removed, err := s.round(ctx)
		if err != nil && ctx.Err() == nil {
			l.b.log.Warn("sweep the connection counts of dead instances; going on at the next round", slog.Any("err", err))
		}
		if removed > 0 {
			l.b.log.Info("connection counts of dead instances removed", slog.Int("keys", removed))
		}
		if hook := l.b.sweepHook.Load(); hook != nil {
			(*hook)(read)
		}
	}
}

// round reads up to connsSweepPage keys from the cursor and removes the
// dead instances' counts from them; it returns how many keys it read and
// how many it changed. It does nothing while this instance may not judge
// leases (leaseView.judging) or the bus is not usable.
func (s *connsSweep) round(ctx context.Context) (read, removed int, err error) {
	b := s.l.b
	now, ok := b.lease.judging()
	if !ok || b.usable() != nil {
		return 0, 0, nil
	}
	bucket := b.name("conns")
	sctx, cancel := opContext(ctx)
	st, err := b.js.Stream(sctx, "KV_"+bucket)
	cancel()
	if err != nil {
		return 0, 0, fmt.Errorf("read the stream of %s: %w", bucket, err)
	}
	if s.end == 0 {
		s.end = st.CachedInfo().State.LastSeq
	}
	prefix := "$KV." + bucket + "."
	for read < b.opts.connsSweepPage {
		if s.cursor > s.end {
			s.passEnded()
			return read, removed, nil
		}
		gctx, cancel := opContext(ctx)
		m, err := st.GetMsg(gctx, s.cursor, jetstream.WithGetMsgSubject(prefix+">"))
		cancel()
		if errors.Is(err, jetstream.ErrMsgNotFound) || err == nil && m.Sequence > s.end {
			s.passEnded()
			return read, removed, nil
		}
		if err != nil {
			return read, removed, fmt.Errorf("read %s from sequence %d: %w", bucket, s.cursor, err)
		}
		read++
		if m.Header.Get(kvOperation) == "" && m.Header.Get(jetstream.MarkerReasonHeader) == "" {
			changed, err := s.prune(ctx, strings.TrimPrefix(m.Subject, prefix), m.Data, now)
			if err != nil {
				return read, removed, err // the key is read again at the next round
			}
			if changed {
				removed++
			}
		}
		s.cursor = m.Sequence + 1
	}
	return read, removed, nil
}

// passEnded starts the next pass from the bucket's first key (up to the
// stream's last sequence then) and forgets the instances no key named
// during the pass that ended.
func (s *connsSweep) passEnded() {
	s.cursor, s.end = 1, 0
	for inst := range s.noticed {
		if !s.named[inst] {
			delete(s.noticed, inst)
		}
	}
	clear(s.named)
}

// prune writes key again without the counts of dead instances if val,
// its value as the round read it, names one; it reports whether it
// changed the key. A value it cannot read is left to setOwn.
func (s *connsSweep) prune(ctx context.Context, key string, val []byte, now time.Time) (bool, error) {
	if c, err := decodeConnCounts(val); err != nil || !s.dropDead(c, now) {
		return false, nil
	}
	changed := false
	err := s.l.b.updateKey(ctx, func(r *resources) jetstream.KeyValue { return r.conns }, key, func(val []byte) ([]byte, bool, error) {
		c, err := decodeConnCounts(val)
		if changed = err == nil && s.dropDead(c, now); !changed {
			return nil, false, nil
		}
		if len(c) == 0 {
			return nil, true, nil // delete the key
		}
		out, err := json.Marshal(c)
		return out, true, err
	})
	return changed && err == nil, err
}

// dropDead drops from c the counts of the instances dead by now (the
// leases' clock), never this instance's own, and reports whether it
// dropped any.
func (s *connsSweep) dropDead(c connCounts, now time.Time) bool {
	dropped := false
	for inst := range c {
		if inst == s.l.b.id {
			continue
		}
		s.named[inst] = true
		if s.l.b.lease.deadNamed(inst, now, s.noticed) {
			delete(c, inst)
			dropped = true
		}
	}
	return dropped
}
