package hub

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/llm"
	"chatd/persistence"
)

// titleCall is one title request a test Titler received: the instance
// that asked, and where the test tells it what to answer.
type titleCall struct {
	instance string
	answer   chan string
}

// gatedTitler is a Titler of instance that hands each call to calls and
// answers what the test sends back ("": no title, as a failed request).
func gatedTitler(instance string, calls chan<- titleCall) Titler {
	return func(ctx context.Context, _ llm.ModelInfo, _, _ string) string {
		c := titleCall{instance: instance, answer: make(chan string, 1)}
		select {
		case calls <- c:
		case <-ctx.Done():
			return ""
		}
		select {
		case title := <-c.answer:
			return title
		case <-ctx.Done():
			return ""
		}
	}
}

// TestClusterTitleOncePerConversation: a conversation whose title is being
// asked for on one instance gets no second title request from another
// instance whose answer in it ended meanwhile (a second paid call and a
// second rename); once the first job failed, the next answer on another
// instance asks again. Each instance titled each conversation once,
// whatever the others did.
func TestClusterTitleOncePerConversation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		titleA string // what A's title request answers ("": it failed)
		wantB  bool   // B's later answer asks for a title
	}{
		{"while the first is asked for", "Otters", false},
		{"after the first failed", "", true},
	}
	for _, tcase := range cases {
		t.Run(tcase.name, func(t *testing.T) {
			t.Parallel()
			tc := newTestCluster(t)
			calls := make(chan titleCall, 4)
			withTitler := func(name string) func(*Options) {
				return func(o *Options) { o.Titler = gatedTitler(name, calls) }
			}
			a := tc.startWith(t, "A", nil, withTitler("A"))
			b := tc.startWith(t, "B", nil, withTitler("B"))
			conv := tc.conversation(t)
			onA := tc.follow(t, a, "a1", conv.ID)
			onB := tc.follow(t, b, "b1", conv.ID)

			first := tc.send(t, a, onA, conv.ID, "otters?")
			run := a.model.next(t)
			run.say(t, "they swim")
			close(run.tokens)
			onA.waitDone(t, first.MessageID)
			callA := nextTitleCall(t, calls)
			if callA.instance != "A" {
				t.Fatalf("title asked by %s, want A", callA.instance)
			}
			if tcase.titleA == "" {
				callA.answer <- "" // failed: the next answer may try again
				a.work.Wait()
			}

			tc.waitUnlocked(t, conv.ID)
			second := tc.send(t, b, onB, conv.ID, "and beavers?")
			run = b.model.next(t)
			run.say(t, "they build")
			close(run.tokens)
			onB.waitDone(t, second.MessageID)
			bDone := make(chan struct{})
			go func() { b.work.Wait(); close(bDone) }() // B's generation, then its title job if any

			var callB *titleCall
			select {
			case c := <-calls:
				callB = &c
				c.answer <- "Beavers"
			case <-bDone:
			}
			if got := callB != nil; got != tcase.wantB {
				t.Fatalf("B asked for a title: %v, want %v", got, tcase.wantB)
			}
			if tcase.titleA != "" {
				callA.answer <- tcase.titleA
			}
			a.work.Wait()
			b.work.Wait()
			want := tcase.titleA
			if tcase.wantB {
				want = "Beavers"
			}
			got, err := tc.store.Conversation(context.Background(), tc.user.ID, conv.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Title != want {
				t.Fatalf("title %q, want %q", got.Title, want)
			}
		})
	}
}

// nextTitleCall returns the next title request made.
func nextTitleCall(t *testing.T, calls <-chan titleCall) titleCall {
	t.Helper()
	select {
	case c := <-calls:
		return c
	case <-time.After(waitLimit):
		t.Fatal("no title request came")
		return titleCall{}
	}
}

// abortableTitler is a Titler that tells asked of each request and
// aborted when one's context ends (it then answers no title); it answers
// nothing before that.
func abortableTitler(asked, aborted chan<- struct{}) Titler {
	return func(ctx context.Context, _ llm.ModelInfo, _, _ string) string {
		asked <- struct{}{}
		<-ctx.Done()
		aborted <- struct{}{}
		return ""
	}
}

// waitSignal waits for one signal on ch, failing with what otherwise.
func waitSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitLimit):
		t.Fatal(what)
	}
}

// TestClusterDeletionAsksNoTitle: deleting a conversation on one instance
// (CancelConversation, before DELETE /api/conversations/:id) while its
// answer runs on another stops that answer as deleted (ControlDelete):
// it is stored cancelled and its instance asks for no title, and a title
// request that instance runs for the conversation is aborted. It was
// stopped as cancelled (ControlCancel): its instance then sent the
// deleted prompt and partial answer upstream for a title, and went on
// with a title request already running. A title request on an instance
// running no answer in the conversation (its answer ended there) is out
// of the control's reach: the deletion's conversation frame, broadcast
// once the conversation is gone, aborts it (it went on, up to 40 s, with
// the deleted conversation's text).
func TestClusterDeletionAsksNoTitle(t *testing.T) {
	t.Parallel()
	t.Run("answer streaming", func(t *testing.T) {
		t.Parallel()
		var calls atomic.Int64
		counting := func(context.Context, llm.ModelInfo, string, string) string { calls.Add(1); return "" }
		tc := newTestCluster(t)
		a := tc.startWith(t, "A", nil, func(o *Options) { o.Titler = counting })
		b := tc.startWith(t, "B", nil, func(o *Options) { o.Titler = counting })
		conv := tc.conversation(t)
		onA := tc.follow(t, a, "a1", conv.ID)
		res := tc.send(t, a, onA, conv.ID, "my secret prompt")
		a.model.next(t).say(t, "partial answer")
		onA.waitText(t, res.MessageID, "partial answer")
		b.CancelConversation(tc.user.ID, conv.ID)
		if status := onA.waitDone(t, res.MessageID); status != "cancelled" {
			t.Fatalf("answer ended %q, want cancelled", status)
		}
		a.work.Wait() // the generation, and the title job it would start
		b.work.Wait()
		if n := calls.Load(); n != 0 {
			t.Fatalf("%d title requests for a conversation being deleted, want 0", n)
		}
	})
	t.Run("title request running where the answer runs", func(t *testing.T) {
		t.Parallel()
		tr := titleRunningOnA(t)
		tr.tc.waitUnlocked(t, tr.conv.ID)
		second := tr.tc.send(t, tr.a, tr.onA, tr.conv.ID, "and beavers?")
		tr.a.model.next(t).say(t, "they")
		tr.onA.waitText(t, second.MessageID, "they")
		tr.b.CancelConversation(tr.tc.user.ID, tr.conv.ID)
		waitSignal(t, tr.aborted, "the title request on A goes on for a conversation deleted on B")
	})
	t.Run("title request running where the answer ended", func(t *testing.T) {
		t.Parallel()
		tr := titleRunningOnA(t)
		// DELETE on B: no answer runs anywhere, then the conversation goes.
		tr.b.CancelConversation(tr.tc.user.ID, tr.conv.ID)
		tr.b.ConversationChanged(tr.tc.user.ID, protocol.ActionDeleted, tr.conv)
		waitSignal(t, tr.aborted, "the title request on A goes on for a conversation deleted on B")
	})
}

// titledCluster is a cluster of A and B whose conversation's first answer
// ended on A, where its title request now runs until aborted.
type titledCluster struct {
	tc      *testCluster
	a, b    *testHub
	conv    persistence.Conversation
	onA     *tab
	aborted chan struct{}
}

// titleRunningOnA starts a titledCluster.
func titleRunningOnA(t *testing.T) titledCluster {
	t.Helper()
	asked, aborted := make(chan struct{}, 2), make(chan struct{}, 2)
	tc := newTestCluster(t)
	a := tc.startWith(t, "A", nil, func(o *Options) { o.Titler = abortableTitler(asked, aborted) })
	b := tc.start(t, "B")
	conv := tc.conversation(t)
	onA := tc.follow(t, a, "a1", conv.ID)
	first := tc.send(t, a, onA, conv.ID, "otters?")
	run := a.model.next(t)
	run.say(t, "they swim")
	close(run.tokens)
	onA.waitDone(t, first.MessageID)
	waitSignal(t, asked, "no title request after the first answer")
	return titledCluster{tc: tc, a: a, b: b, conv: conv, onA: onA, aborted: aborted}
}

// TestClusterEndUserAbortsTitles: deleting an account (EndUser) aborts
// the user's title requests, on this instance and on those its close
// reaches, also in conversations not listed (their answer ended: the
// store holds none streaming). Only the listed conversations were
// cancelled: a title request for an answer that had just ended went on,
// up to 40 s, with the deleted account's text.
func TestClusterEndUserAbortsTitles(t *testing.T) {
	t.Parallel()
	for _, where := range []string{"same instance", "other instance"} {
		t.Run(where, func(t *testing.T) {
			t.Parallel()
			asked, aborted := make(chan struct{}, 1), make(chan struct{}, 1)
			tc := newTestCluster(t)
			a := tc.startWith(t, "A", nil, func(o *Options) { o.Titler = abortableTitler(asked, aborted) })
			b := tc.start(t, "B")
			conv := tc.conversation(t)
			onA := tc.follow(t, a, "a1", conv.ID)
			res := tc.send(t, a, onA, conv.ID, "otters?")
			run := a.model.next(t)
			run.say(t, "they swim")
			close(run.tokens)
			if status := onA.waitDone(t, res.MessageID); status != "complete" {
				t.Fatalf("answer ended %q", status)
			}
			waitSignal(t, asked, "no title request after the answer")
			deleter := a
			if where == "other instance" {
				deleter = b
			}
			deleter.EndUser(tc.user.ID, nil)
			waitSignal(t, aborted, "the title request goes on for a deleted account")
		})
	}
}
