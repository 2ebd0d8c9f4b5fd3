package hub

import (
	"sync"

	"chatd/hub/protocol"
)

// DefaultMaxAnswersPerUser is the default Options.MaxAnswersPerUser.
//
// A person reads one answer at a time; a few conversations answering at
// once in several tabs is heavy use, and the web client never starts two
// answers for one action. The bound is what one user can hold of the
// model servers: against a self-hosted one with a few parallel slots
// (Ollama, vLLM), every answer past them waits for a slot, and another
// user's answer queues behind them. Five leaves that use its room while
// a script sending at its whole budget of sends (a burst of seven, then
// one every two seconds, each answer up to MaxDuration) holds five
// streams, not hundreds.
const DefaultMaxAnswersPerUser = 5

// answerSlots counts, per user, the answers of this instance that run or
// are being prepared (a conversation reserved for one), against a bound.
// A conversation holds one of its owner's slots from its reservation for
// an answer to the end of that answer (conv.slot): reserveAnswer takes
// it, unreserve gives it back for an answer that never started, and the
// generation's finish for one that ran. Its lock is innermost (taken
// under conv.mu).
type answerSlots struct {
	max int
	// refusal answers a request past max (rate_limited: a wait cures it).
	refusal *protocol.Error

	mu      sync.Mutex
	running map[string]int
}

func newAnswerSlots(max int) *answerSlots {
	return &answerSlots{max: max, running: make(map[string]int),
		refusal: protocol.Errorf(protocol.CodeRateLimited,
			"you have %d answers running at once, the most allowed; wait for one to end, or stop one", max)}
}

// take counts one more answer of userID unless it has max already.
func (s *answerSlots) take(userID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[userID] >= s.max {
		return false
	}
	s.running[userID]++
	return true
}

// give forgets an answer take counted.
func (s *answerSlots) give(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.running[userID] - 1; n > 0 {
		s.running[userID] = n
	} else {
		delete(s.running, userID)
	}
}

// full reports whether userID has max answers counted: a request that
// would write before it reserves (a send creating its conversation) is
// refused early, so that a refusal costs no write in the common case.
// Only reserveAnswer's take is binding.
func (s *answerSlots) full(userID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running[userID] >= s.max
}

// count is how many answers of userID are counted (tests).
func (s *answerSlots) count(userID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running[userID]
}

// reserveAnswer is reserve for a send's or regenerate's answer: the
// conversation also takes one of its owner's answer slots, or the request
// is refused (Options.MaxAnswersPerUser) in the same step, after the check
// for an answer already running in it and before anything is stored.
func (h *Hub) reserveAnswer(convID, userID string, sub Subscriber) (*conv, error) {
	c := h.lockConv(convID, userID)
	h.followLocked(c, sub)
	err := reservableLocked(c)
	if err == nil && !h.answers.take(userID) {
		err = h.answers.refusal
	}
	if err != nil {
		c.mu.Unlock()
		h.release(c) // sub may be nil: nothing else keeps c
		return nil, err
	}
	c.slot = userID
	c.unreserved = make(chan struct{})
	c.mu.Unlock()
	return c, nil
}

// giveSlotLocked gives back the answer slot c holds, if any; c.mu is held.
func (h *Hub) giveSlotLocked(c *conv) {
	if c.slot != "" {
		h.answers.give(c.slot)
		c.slot = ""
	}
}
