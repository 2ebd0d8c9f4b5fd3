package hub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// gatedReads is a Store whose Conversation reads wait at gate, once
// read, while gate is set (reading closes as the first waits), or fail
// with err while it is set.
type gatedReads struct {
	Store
	mu      sync.Mutex
	gate    chan struct{}
	reading chan struct{}
	once    sync.Once
	err     error
}

func newGatedReads() *gatedReads { return &gatedReads{reading: make(chan struct{})} }

func (s *gatedReads) Conversation(ctx context.Context, owner, id string) (persistence.Conversation, error) {
	c, err := s.Store.Conversation(ctx, owner, id)
	s.mu.Lock()
	gate, failure := s.gate, s.err
	s.mu.Unlock()
	if gate != nil {
		s.once.Do(func() { close(s.reading) })
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}
	if failure != nil {
		return persistence.Conversation{}, failure
	}
	return c, err
}

func (s *gatedReads) set(gate chan struct{}, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate, s.err = gate, err
}

// lastTitle returns the title in the last of frames telling of id, and
// whether there is one.
func lastTitle(t *testing.T, frames []*protocol.Frame, id string) (string, bool) {
	got := framesOf(frames, id)
	if len(got) == 0 {
		return "", false
	}
	return field(t, got[len(got)-1], "title"), true
}

// TestConversationFrameBurst: a cut-off instance's outbox holds frames
// of more new conversations than the first checks' queue held (1,024),
// among hundreds of renames of a few conversations; once they are
// published, the tab elsewhere has every new conversation, as created,
// and each renamed one ends on its stored title.
func TestConversationFrameBurst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tc, held, a, b := startHeldPair(t)
	user := tc.user.ID
	s := newTab(user, "t")
	b.Register(s)
	t.Cleanup(func() { b.Detach(s) })
	renamed := []persistence.Conversation{tc.conversation(t), tc.conversation(t), tc.conversation(t)}

	held.hold()
	const created, renames = 1500, 100
	ids := make([]string, created)
	want := make(map[string]string) // a renamed conversation's stored title
	for i := range ids {
		c := persistence.Conversation{OwnerID: user, Model: "script", Title: fmt.Sprint("c", i)}
		if err := tc.store.CreateConversation(ctx, &c); err != nil {
			t.Fatal(err)
		}
		ids[i] = c.ID
		a.ConversationChanged(user, "created", c)
		if i%(created/renames) != 0 {
			continue
		}
		for _, r := range renamed {
			title := fmt.Sprint(r.ID, "-", i)
			c, err := tc.store.UpdateConversation(ctx, user, r.ID, persistence.ConversationPatch{Title: &title})
			if err != nil {
				t.Fatal(err)
			}
			want[r.ID] = title
			a.ConversationChanged(user, "updated", c)
		}
	}
	held.release(t)

	s.waitUntil(t, "every conversation's frame, the renamed ones on their stored titles", func(frames []*protocol.Frame, _ protocol.CloseCode) bool {
		for _, r := range renamed {
			if title, _ := lastTitle(t, frames, r.ID); title != want[r.ID] {
				return false
			}
		}
		for i, id := range ids {
			if title, ok := lastTitle(t, frames, id); !ok || title != fmt.Sprint("c", i) {
				return false
			}
		}
		return true
	})
	frames, _ := s.snapshot()
	for _, id := range ids {
		if got := framesOf(frames, id); len(got) != 1 || protocol.ConversationAction(got[0]) != "created" {
			t.Fatalf("a new conversation's frames, want one created:\n%s", dump(got))
		}
	}
}

// TestConversationCheckOvertaken: while the check of another instance's
// frame (renamed "Old") reads the store, the conversation is renamed
// "New" here and that frame goes out at once; the check then holds the
// older state. The tab ends on "New", not on what the check read.
func TestConversationCheckOvertaken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tc := newTestCluster(t)
	a := tc.start(t, "A")
	reads := newGatedReads()
	b := tc.startWith(t, "B", nil, func(o *Options) { reads.Store = o.Store; o.Store = reads })
	user := tc.user.ID
	x := tc.conversation(t)
	rename := func(title string) persistence.Conversation {
		c, err := tc.store.UpdateConversation(ctx, user, x.ID, persistence.ConversationPatch{Title: &title})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	s := newTab(user, "t")
	b.Register(s)
	t.Cleanup(func() { b.Detach(s) })

	gate := make(chan struct{})
	reads.set(gate, nil)
	a.ConversationChanged(user, "updated", rename("Old"))
	<-reads.reading // the check has read "Old"
	reads.set(nil, nil)
	b.ConversationChanged(user, "updated", rename("New"))
	close(gate)

	s.waitUntil(t, "the check's frame after the fresh one", func(frames []*protocol.Frame, _ protocol.CloseCode) bool {
		return len(framesOf(frames, x.ID)) >= 2
	})
	frames, _ := s.snapshot()
	if title, _ := lastTitle(t, frames, x.ID); title != "New" {
		t.Errorf("the tab ends on %q, stored %q:\n%s", title, "New", dump(framesOf(frames, x.ID)))
	}
}

// TestConversationCheckStoreFails: when the store cannot say, another
// instance's conversation frame goes to the tabs as it came, unless the
// conversation's deletion was told here.
func TestConversationCheckStoreFails(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	a := tc.start(t, "A")
	reads := newGatedReads()
	b := tc.startWith(t, "B", nil, func(o *Options) { reads.Store = o.Store; o.Store = reads })
	user := tc.user.ID
	gone, told := tc.conversation(t), tc.conversation(t)
	s := newTab(user, "t")
	b.Register(s)
	t.Cleanup(func() { b.Detach(s) })

	reads.set(nil, errors.New("store down"))
	b.ConversationChanged(user, protocol.ActionDeleted, persistence.Conversation{ID: gone.ID})
	gone.Title = "Otters"
	a.ConversationChanged(user, "updated", gone)
	told.Title = "As told"
	a.ConversationChanged(user, "updated", told)

	s.waitUntil(t, "the frame as told", func(frames []*protocol.Frame, _ protocol.CloseCode) bool {
		title, _ := lastTitle(t, frames, told.ID)
		return title == "As told"
	})
	frames, _ := s.snapshot()
	if got := framesOf(frames, gone.ID); len(got) != 1 || protocol.ConversationAction(got[0]) != protocol.ActionDeleted {
		t.Errorf("the deleted conversation's frames, want its deletion alone:\n%s", dump(got))
	}
}

// TestConversationChecksBounded: past the bound of conversations waiting
// for their check, a new one's frame is dropped and counted; a frame of
// one waiting is merged into its check, not dropped: a created and an
// updated merged go out as both, created first (a tab that made the
// conversation learns it was used elsewhere).
func TestConversationChecksBounded(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	a := tc.start(t, "A")
	reads := newGatedReads()
	b := tc.startWith(t, "B", nil, func(o *Options) { reads.Store = o.Store; o.Store = reads })
	b.convFrames.mu.Lock()
	b.convFrames.max = 2
	b.convFrames.mu.Unlock()
	user := tc.user.ID
	s := newTab(user, "t")
	b.Register(s)
	t.Cleanup(func() { b.Detach(s) })

	gate := make(chan struct{})
	reads.set(gate, nil)
	convs := make([]persistence.Conversation, 5)
	for i := range convs {
		convs[i] = tc.conversation(t)
		a.ConversationChanged(user, "created", convs[i])
		if i == 0 {
			<-reads.reading // the first is being read; the next two wait, the last two find no room
		}
	}
	a.ConversationChanged(user, "updated", convs[1]) // merged into its check
	b.convFrames.mu.Lock()
	waiting, dropped := len(b.convFrames.queue), b.convFrames.dropped
	b.convFrames.mu.Unlock()
	if waiting != 2 || dropped != 2 {
		t.Errorf("%d waiting, %d dropped; want 2 and 2", waiting, dropped)
	}
	reads.set(nil, nil)
	close(gate)
	s.waitUntil(t, "the three checked", func(frames []*protocol.Frame, _ protocol.CloseCode) bool {
		for _, c := range convs[:3] {
			if len(framesOf(frames, c.ID)) == 0 {
				return false
			}
		}
		return true
	})
	frames, _ := s.snapshot()
	for i, c := range convs {
		got := framesOf(frames, c.ID)
		var want []string // the actions, in order
		switch {
		case i == 1:
			want = []string{"created", "updated"}
		case i < 3:
			want = []string{"created"}
		}
		actions := make([]string, len(got))
		for j, f := range got {
			actions[j] = protocol.ConversationAction(f)
		}
		if !slices.Equal(actions, want) {
			t.Errorf("conversation %d: actions %q, want %q:\n%s", i, actions, want, dump(got))
		}
	}
}

// hangingReads is a Store whose Conversation reads of the conversations
// in hang wait until their context ends, and fail with its error.
type hangingReads struct {
	Store
	hang    map[string]bool // read only once set
	hanging chan struct{}   // closed as the first read hangs
	once    sync.Once
	hangs   atomic.Int64 // reads that hung
}

func (s *hangingReads) Conversation(ctx context.Context, owner, id string) (persistence.Conversation, error) {
	if s.hang[id] {
		s.once.Do(func() { close(s.hanging) })
		s.hangs.Add(1)
		<-ctx.Done()
		return persistence.Conversation{}, ctx.Err()
	}
	return s.Store.Conversation(ctx, owner, id)
}

// TestConversationChecksHungStore: one goroutine checks every user's
// conversation frames, so a store whose reads hang (a primary this
// instance cannot reach) held each frame behind the ones before it a
// read timeout apiece (5 s): a read timing out now lets frames go out
// unchecked for a while, so a third conversation's frame behind two that
// hang arrives after one read that hangs (convCheckTimeout), not two
// (of 5 s each before); also when a newer frame of the hung conversation
// came during its read (a check of its own, which read again).
func TestConversationChecksHungStore(t *testing.T) {
	t.Parallel()
	for _, newer := range []bool{false, true} {
		t.Run(fmt.Sprintf("newer frame during the read %v", newer), func(t *testing.T) {
			t.Parallel()
			tc := newTestCluster(t)
			a := tc.start(t, "A")
			hung := &hangingReads{hang: map[string]bool{}, hanging: make(chan struct{})}
			convs := []persistence.Conversation{tc.conversation(t), tc.conversation(t), tc.conversation(t)}
			hung.hang[convs[0].ID], hung.hang[convs[1].ID] = true, true
			b := tc.startWith(t, "B", nil, func(o *Options) { hung.Store = o.Store; o.Store = hung })
			user := tc.user.ID
			s := newTab(user, "t")
			b.Register(s)
			t.Cleanup(func() { b.Detach(s) })

			start := time.Now()
			a.ConversationChanged(user, "created", convs[0])
			<-hung.hanging
			if newer {
				a.ConversationChanged(user, "updated", convs[0])
			}
			for _, c := range convs[1:] {
				a.ConversationChanged(user, "created", c)
			}
			s.waitUntil(t, "the third conversation", func(frames []*protocol.Frame, _ protocol.CloseCode) bool {
				return len(framesOf(frames, convs[2].ID)) > 0
			})
			took := time.Since(start)
			t.Logf("the third conversation's frame after %s", took)
			if n := hung.hangs.Load(); n != 1 {
				t.Errorf("%d reads hung, want 1: the frames after the first read that timed out go out unchecked", n)
			}
			if took >= 2*busTimeout {
				t.Errorf("the third conversation's frame after %s, behind hung reads: want well under %s", took, 2*busTimeout)
			}
			frames, _ := s.snapshot()
			if got := framesOf(frames, convs[1].ID); len(got) != 1 || protocol.ConversationAction(got[0]) != "created" {
				t.Errorf("the second hung conversation: frames\n%s\nwant its created, sent unchecked", dump(got))
			}
		})
	}
}
