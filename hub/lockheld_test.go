package hub

import (
	"context"
	"sync"
	"testing"

	"chatd/hub/protocol"
)

// TestClusterRefusedSendFollowsRunningAnswer: a tab that begins to follow
// a conversation while a send of this instance holds it (the send is
// taking the cluster lock) looks up no answer running elsewhere: the send
// is about to run one. When the send is refused because an answer of
// another instance holds the lock, the tabs here follow that answer. They
// used to see none of it until it ended: its start had been announced
// before they followed the conversation.
func TestClusterRefusedSendFollowsRunningAnswer(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A")
	a := tc.hubs[0]
	gated := &gateAcquireBus{entered: make(chan struct{}), gate: make(chan struct{})}
	b := tc.startWith(t, "B", func(m *MemBus) Bus { gated.MemBus = m; return gated }, nil)
	conv := tc.conversation(t)
	onA := tc.follow(t, a, "a1", conv.ID)
	res := tc.send(t, a, onA, conv.ID, "hi")
	run := a.model.next(t)
	run.say(t, "one ")
	onA.waitText(t, res.MessageID, "one ")

	sender := newTab(tc.user.ID, "b1")
	b.Register(sender)
	t.Cleanup(func() { b.Detach(sender) })
	sent := make(chan error, 1)
	go func() {
		_, err := b.Send(context.Background(), sender, tc.user.ID, SendRequest{ConversationID: conv.ID, Content: "too"})
		sent <- err
	}()
	<-gated.entered // the send holds the conversation here
	onB := tc.follow(t, b, "b2", conv.ID)
	close(gated.gate)
	if err := <-sent; errCode(err) != protocol.CodeGenerationRunning {
		t.Fatalf("send on B: %v, want generation_running", err)
	}
	run.say(t, "two")
	for _, s := range []*tab{onB, sender} {
		s.waitText(t, res.MessageID, "one two")
	}
	close(run.tokens)
	onB.waitDone(t, res.MessageID)
}

// gateAcquireBus is a MemBus whose first Acquire waits, once entered is
// closed, until gate is closed.
type gateAcquireBus struct {
	*MemBus
	once          sync.Once
	entered, gate chan struct{}
}

func (b *gateAcquireBus) Acquire(ctx context.Context, a AnswerRef) (AnswerRef, error) {
	b.once.Do(func() {
		close(b.entered)
		<-b.gate
	})
	return b.MemBus.Acquire(ctx, a)
}
