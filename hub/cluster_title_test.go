package hub

import (
	"context"
	"testing"
	"time"
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
	return func(ctx context.Context, _, _, _ string) string {
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
