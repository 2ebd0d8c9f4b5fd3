package hub

import (
	"context"
	"sync"
	"testing"
	"time"

	"chatd/persistence"
)

// staleStore is an instance's store whose reads of a message without
// persistence.WithLatest answer as a lagging replica for the messages
// frozen in it: the state frozen (or not found, for a message the replica
// does not have yet). Reads with WithLatest, and of other messages, read
// the store.
type staleStore struct {
	*gateStore

	mu     sync.Mutex
	frozen map[string]*persistence.Message // nil: not there yet
}

// freeze makes the replica answer m's id with its state now, or not found
// when missing.
func (s *staleStore) freeze(id string, m *persistence.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.frozen == nil {
		s.frozen = make(map[string]*persistence.Message)
	}
	s.frozen[id] = m
}

func (s *staleStore) Message(ctx context.Context, ownerID, id string) (persistence.Message, error) {
	if !persistence.Latest(ctx) {
		s.mu.Lock()
		m, ok := s.frozen[id]
		s.mu.Unlock()
		switch {
		case ok && m == nil:
			return persistence.Message{}, persistence.ErrNotFound
		case ok:
			return *m, nil
		}
	}
	return s.gateStore.Message(ctx, ownerID, id)
}

// TestClusterLockReadsTheLatest: when a send finds its conversation's
// cluster lock held by an answer that ended (its done sent; the lock is
// released right after), it reads that answer's state as the latest state
// and waits for the release. From a replica lagging behind the answer's
// end, a send on another instance was refused (generation_running); from
// one lagging behind the answer's row, a send on the same instance took
// the lock for one of an answer that never started and dropped it,
// telling the other instances' tabs that the answer, complete, was aborted.
func TestClusterLockReadsTheLatest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		sameHost bool // the second send is on A, whose answer holds the lock
	}{
		{"the answer's end, on another instance", false},
		{"the answer's row, on the same instance", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cl := newTestCluster(t)
			gate := make(chan struct{})
			onA := &releaseGateBus{gate: gate, releases: make(chan struct{}, 1), acquires: make(chan struct{}, 8)}
			var storeA, storeB *staleStore
			a := cl.startWith(t, "A", func(m *MemBus) Bus { onA.MemBus = m; return onA },
				func(o *Options) { storeA = &staleStore{gateStore: o.Store.(*gateStore)}; o.Store = storeA })
			onB := &releaseGateBus{acquires: make(chan struct{}, 8)}
			b := cl.startWith(t, "B", func(m *MemBus) Bus { onB.MemBus = m; return onB },
				func(o *Options) { storeB = &staleStore{gateStore: o.Store.(*gateStore)}; o.Store = storeB })
			conv := cl.conversation(t)
			tabA := cl.follow(t, a, "a1", conv.ID)
			tabB := cl.follow(t, b, "b1", conv.ID)

			first := cl.send(t, a, tabA, conv.ID, "first")
			run := a.model.next(t)
			if tc.sameHost {
				storeA.freeze(first.MessageID, nil) // the replica lacks the answer's row
			} else {
				m, err := cl.store.Message(context.Background(), cl.user.ID, first.MessageID)
				if err != nil {
					t.Fatal(err)
				}
				storeB.freeze(first.MessageID, &m) // the replica has it streaming
			}
			run.say(t, "one")
			close(run.tokens)
			tabB.waitDone(t, first.MessageID)
			select { // A published the done and is about to release the lock
			case <-onA.releases:
			case <-time.After(waitLimit):
				t.Fatal("A does not release the lock")
			}
			on, h, sub := onB, b, Subscriber(tabB)
			if tc.sameHost {
				on, h, sub = onA, a, tabA
			}
			for len(on.acquires) > 0 {
				<-on.acquires
			}
			type result struct {
				res Result
				err error
			}
			got := make(chan result, 1)
			go func() {
				res, err := h.Send(context.Background(), sub, cl.user.ID, SendRequest{ConversationID: conv.ID, Content: "second"})
				got <- result{res, err}
			}()
			for range 2 { // the send found the lock held, saw the answer ended, and tries again
				select {
				case r := <-got:
					t.Fatalf("the send returned before the lock was released: %+v %v", r.res, r.err)
				case <-on.acquires:
				case <-time.After(waitLimit):
					t.Fatal("the send does not try to take the lock")
				}
			}
			close(gate)
			r := <-got
			if r.err != nil {
				t.Fatalf("send after the release: %v", r.err)
			}
			next := h.model.next(t)
			close(next.tokens)
			if st := tabB.waitDone(t, r.res.MessageID); st != "complete" {
				t.Fatalf("second answer ended %q", st)
			}
			frames, closed := tabB.snapshot()
			if n := countType(frames, first.MessageID, FrameAborted); n != 0 || closed != 0 {
				t.Fatalf("B's tab was told the first answer aborted (%d frames), closed %d:\n%s", n, closed, dump(frames))
			}
		})
	}
}
