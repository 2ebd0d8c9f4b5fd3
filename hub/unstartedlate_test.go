package hub

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/persistence"
)

// outageStore is a memStore whose message inserts fail as fail says and
// whose InterruptMessage fails while down is set; it records how many
// InterruptMessage calls were made and how many were in flight at once.
type outageStore struct {
	*memStore
	// fail, when set, is the error of an insert of m; the insert is
	// applied all the same when applied is set (a reply lost).
	fail    func(m *persistence.Message) error
	applied bool
	down    atomic.Bool

	gate        sync.Mutex
	calls       int
	inFlight    int
	maxInFlight int
}

func newOutageStore(fail func(m *persistence.Message) error, applied bool) *outageStore {
	return &outageStore{memStore: newMemStore(), fail: fail, applied: applied}
}

func (s *outageStore) InsertMessage(ctx context.Context, m *persistence.Message) error {
	return s.InsertMessages(ctx, m)
}

// InsertMessages fails, all or none, as fail says of any of ms.
func (s *outageStore) InsertMessages(ctx context.Context, ms ...*persistence.Message) error {
	var err error
	for _, m := range ms {
		if s.fail != nil && err == nil {
			err = s.fail(m)
		}
	}
	if err != nil && !s.applied {
		return err
	}
	if ierr := s.memStore.InsertMessages(ctx, ms...); ierr != nil {
		return ierr
	}
	return err
}

func (s *outageStore) InterruptMessage(ctx context.Context, ownerID, id, reason string, at time.Time) (persistence.Message, error) {
	s.gate.Lock()
	s.calls++
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
	s.gate.Unlock()
	defer func() {
		s.gate.Lock()
		s.inFlight--
		s.gate.Unlock()
	}()
	if s.down.Load() {
		return persistence.Message{}, errors.New("database is locked")
	}
	return s.memStore.InterruptMessage(ctx, ownerID, id, reason, at)
}

func (s *outageStore) counts() (calls, most int) {
	s.gate.Lock()
	defer s.gate.Unlock()
	return s.calls, s.maxInFlight
}

// conversations creates n conversations of user "u".
func (s *outageStore) conversations(t *testing.T, n int) []persistence.Conversation {
	t.Helper()
	convs := make([]persistence.Conversation, n)
	for i := range convs {
		convs[i] = persistence.Conversation{OwnerID: "u", Model: "fake"}
		if err := s.CreateConversation(context.Background(), &convs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return convs
}

// answers returns the answer rows stored.
func (s *outageStore) answers() []persistence.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []persistence.Message
	for _, m := range s.msgs {
		if m.Role == persistence.RoleAssistant {
			out = append(out, m)
		}
	}
	return out
}

// lostReply fails every insert after applying it, as a reply lost.
func lostReply() *outageStore {
	return newOutageStore(func(*persistence.Message) error {
		return fmt.Errorf("insert messages: %w", context.DeadlineExceeded)
	}, true)
}

// failSends sends once into each of convs, each send failing.
func failSends(t *testing.T, h *Hub, convs []persistence.Conversation) {
	t.Helper()
	for _, conv := range convs {
		if _, err := h.Send(context.Background(), newSub("u"), "u", SendRequest{ConversationID: conv.ID, Content: "hi"}); err == nil {
			t.Fatal("a send whose insert failed did not fail")
		}
	}
}

// TestUnstartedEndsOneCallAtATime: with one instance, the answer rows of
// sends whose insert the store reported failed (and may have written:
// here it did) are ended by the one sweep of late ends, one store call at
// a time, and not as cluster bus calls. Before, each failed send left a
// goroutine retrying InterruptMessage on its own every 2 s at most for
// the whole outage (50 sends: 50 goroutines), all hitting the recovering
// store at once, each failure counted and logged as a cluster bus call.
func TestUnstartedEndsOneCallAtATime(t *testing.T) { // not parallel: counts goroutines
	const sends = 50
	metrics := newBusMetricsRecorder()
	st := lostReply()
	st.down.Store(true)
	h := New(Options{Store: st, Writer: &memWriter{store: st.memStore}, Model: &fakeModel{script: say("x")}, Metrics: metrics})
	runHub(t, h, nil)
	pauses := pausedSweep(h)
	idle := watchLateIdle(h)
	convs := st.conversations(t, sends)
	baseline := runtime.NumGoroutine()
	failSends(t, h, convs)
	if n := runtime.NumGoroutine(); n > baseline+3 {
		t.Errorf("%d goroutines after %d failed sends, %d before", n, sends, baseline)
	}
	var p pause
	select {
	case p = <-pauses:
	case <-time.After(waitTimeout):
		t.Fatalf("the sweep did not wait after a failed call in %s", waitTimeout)
	}
	if calls, _ := st.counts(); calls != 1 {
		t.Errorf("%d InterruptMessage calls before the wait after the first failure, want 1", calls)
	}
	if c := metrics.counts(); len(c.failed) != 0 {
		t.Errorf("bus call failures counted for store calls of one instance: %v", c.failed)
	}
	st.down.Store(false) // the store is back
	p.fire <- time.Now()
	select {
	case <-idle:
	case <-time.After(waitTimeout):
		t.Fatalf("%d answers still wait after %s", h.late.len(), waitTimeout)
	}
	if n := len(pauses); n != 0 {
		t.Errorf("%d waits after calls that did not fail", n)
	}
	if calls, most := st.counts(); calls != sends+1 || most != 1 {
		t.Errorf("%d InterruptMessage calls, at most %d at once; want %d, one at a time", calls, most, sends+1)
	}
	answers := st.answers()
	if len(answers) != sends {
		t.Fatalf("%d answer rows stored, want %d", len(answers), sends)
	}
	for _, m := range answers {
		if m.Status != persistence.StatusInterrupted || m.Error != unstartedReason {
			t.Errorf("answer %s: %s %q, want interrupted %q", m.ID, m.Status, m.Error, unstartedReason)
		}
	}
}

// TestUnstartedShutdownDoesNotWait: with one instance and the store down,
// a shutdown does not wait for the answer rows of failed sends to be
// ended: it returns at once, and they stay streaming, for the next
// start's sweep. Before, Shutdown waited for each send's goroutine
// retrying InterruptMessage until its context ended and returned "publish
// the last frames to the cluster: context deadline exceeded".
func TestUnstartedShutdownDoesNotWait(t *testing.T) { // not parallel: counts goroutines
	st := lostReply()
	st.down.Store(true)
	h := New(Options{Store: st, Writer: &memWriter{store: st.memStore}, Model: &fakeModel{script: say("x")}})
	runHub(t, h, nil)
	convs := st.conversations(t, 50)
	baseline := runtime.NumGoroutine()
	failSends(t, h, convs)
	// The shutdown before waited until its context ended, however long:
	// the bound only ends a hang.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := runtime.NumGoroutine(); n > baseline+1 {
		t.Errorf("%d goroutines after the shutdown, %d before the sends", n, baseline)
	}
	for _, m := range st.answers() {
		if m.Status != persistence.StatusStreaming {
			t.Errorf("answer %s is %s after a shutdown with the store down, want streaming", m.ID, m.Status)
		}
	}
}

// singleInserts hides outageStore's InsertMessages: the hub inserts a
// send's messages one at a time.
type singleInserts struct {
	Store
	MessageInterrupter
}

// TestUnstartedOnlyWhatMayBeStored: a failed send's answer waits to be
// ended only when its row may have been written: not when the store
// refused the write (a key taken, the conversation gone) nor when the
// user message's insert failed before the answer's was tried.
func TestUnstartedOnlyWhatMayBeStored(t *testing.T) {
	t.Parallel()
	locked := errors.New("database is locked")
	onAnswer := func(err error) func(m *persistence.Message) error {
		return func(m *persistence.Message) error {
			if m.Role == persistence.RoleAssistant {
				return err
			}
			return nil
		}
	}
	onUser := func(m *persistence.Message) error {
		if m.Role == persistence.RoleUser {
			return locked
		}
		return nil
	}
	for _, tc := range []struct {
		name    string
		fail    func(m *persistence.Message) error
		applied bool
		single  bool // two inserts, not one InsertMessages
		waits   bool
	}{
		{name: "reply lost", fail: onAnswer(context.Canceled), applied: true, waits: true},
		{name: "database error", fail: onAnswer(locked), waits: true},
		{name: "key taken", fail: onAnswer(fmt.Errorf("insert: %w", persistence.ErrDuplicate))},
		{name: "conversation gone", fail: onAnswer(fmt.Errorf("insert: %w", persistence.ErrNotFound))},
		{name: "owner gone", fail: onAnswer(fmt.Errorf("insert: %w", persistence.ErrUnknownOwner))},
		{name: "answer's insert failed", fail: onAnswer(locked), single: true, waits: true},
		{name: "user message's insert failed", fail: onUser, single: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := newOutageStore(tc.fail, tc.applied)
			st.down.Store(true)
			var store Store = st
			if tc.single {
				store = singleInserts{st, st}
			}
			h := New(Options{Store: store, Writer: &memWriter{store: st.memStore}, Model: &fakeModel{script: say("x")}})
			runHub(t, h, nil)
			pausedSweep(h) // an answer waiting stays so
			failSends(t, h, st.conversations(t, 1))
			if waits := h.late.len() == 1; waits != tc.waits {
				t.Errorf("the answer waits to be ended: %t, want %t", waits, tc.waits)
			}
		})
	}
}
