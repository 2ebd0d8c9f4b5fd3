package hub

import "testing"

// TestActiveAnswerOwnerOnly: the running answer is named to its owner on
// the instance running it, on one mirroring it and on one that only asks
// the bus; anyone else is told nothing runs.
func TestActiveAnswerOwnerOnly(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A", "B", "C")
	a, b, c := tc.hubs[0], tc.hubs[1], tc.hubs[2]
	conv := tc.conversation(t)
	onA := tc.follow(t, a, "a1", conv.ID)
	onB := tc.follow(t, b, "b1", conv.ID)
	res := tc.send(t, a, onA, conv.ID, "hello")
	run := a.model.next(t)
	run.say(t, "x")
	onB.waitText(t, res.MessageID, "x")
	for _, h := range []*testHub{a, b, c} {
		if got := h.ActiveAnswer(tc.user.ID, conv.ID); got != res.MessageID {
			t.Errorf("hub %s: owner told %q, want %s", h.name, got, res.MessageID)
		}
		if got := h.ActiveAnswer("another-user", conv.ID); got != "" {
			t.Errorf("hub %s: another user told %q", h.name, got)
		}
	}
	close(run.tokens)
	onA.waitDone(t, res.MessageID)
}
