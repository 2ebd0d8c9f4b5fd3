package hub

import (
	"context"
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
// are being prepared (a conversation reserved for one), and its title
// requests, against a bound: together they are what the user holds of the
// model servers. A conversation holds one of its owner's slots from its
// reservation for an answer to the end of that answer (conv.slot):
// reserveAnswer takes it, unreserve gives it back for an answer that
// never started, and the generation's finish for one that ran. A title
// request only borrows a free slot (takeTitle; none free: no request) and
// gives it up to the first answer of its user that needs it: take cuts
// the title request short (it falls back to the prompt's first words), so
// that a title never refuses a send. Its lock is innermost (taken under
// conv.mu).
type answerSlots struct {
	max int
	// refusal answers a request past max (rate_limited: a wait cures it).
	refusal *protocol.Error

	mu      sync.Mutex
	running map[string]int          // answers and titles counted, per user
	titles  map[string][]*titleSlot // the titles among them, per user, in start order
}

// titleSlot is an answer slot a title request borrowed (takeTitle).
type titleSlot struct {
	user string
	// cutShort ends the title request when an answer takes the slot.
	cutShort context.CancelFunc
	// lent is set once an answer took the slot (answerSlots.mu).
	lent bool
}

func newAnswerSlots(max int) *answerSlots {
	return &answerSlots{max: max, running: make(map[string]int), titles: make(map[string][]*titleSlot),
		refusal: protocol.Errorf(protocol.CodeRateLimited,
			"you have %d answers running at once, the most allowed; wait for one to end, or stop one", max)}
}

// take counts one more answer of userID unless it has max answers
// already. With max counted, some of them titles, the latest title gives
// its slot to the answer and is cut short.
func (s *answerSlots) take(userID string) bool {
	s.mu.Lock()
	if s.running[userID] < s.max {
		s.running[userID]++
		s.mu.Unlock()
		return true
	}
	t := s.lendLocked(userID)
	s.mu.Unlock()
	if t == nil {
		return false
	}
	t.cutShort()
	return true
}

// lendLocked takes the slot of userID's latest title for an answer, or
// returns nil when the user has no title counted; s.mu is held.
func (s *answerSlots) lendLocked(userID string) *titleSlot {
	ts := s.titles[userID]
	if len(ts) == 0 {
		return nil
	}
	t := ts[len(ts)-1]
	s.setTitlesLocked(userID, ts[:len(ts)-1])
	t.lent = true
	return t
}

// give forgets an answer take counted.
func (s *answerSlots) give(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.giveLocked(userID)
}

func (s *answerSlots) giveLocked(userID string) {
	if n := s.running[userID] - 1; n > 0 {
		s.running[userID] = n
	} else {
		delete(s.running, userID)
	}
}

// takeTitle counts a title request of userID in a free slot, which
// cutShort ends if an answer takes it; nil when none is free (the title
// is then not asked for). giveTitle gives it back.
func (s *answerSlots) takeTitle(userID string, cutShort context.CancelFunc) *titleSlot {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[userID] >= s.max {
		return nil
	}
	s.running[userID]++
	t := &titleSlot{user: userID, cutShort: cutShort}
	s.titles[userID] = append(s.titles[userID], t)
	return t
}

// giveTitle forgets the title slot t, unless an answer took it.
func (s *answerSlots) giveTitle(t *titleSlot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.lent {
		return
	}
	ts := s.titles[t.user]
	for i, o := range ts {
		if o == t {
			s.setTitlesLocked(t.user, append(ts[:i:i], ts[i+1:]...))
			break
		}
	}
	s.giveLocked(t.user)
}

// setTitlesLocked sets userID's titles, forgetting the user at none.
func (s *answerSlots) setTitlesLocked(userID string, ts []*titleSlot) {
	if len(ts) == 0 {
		delete(s.titles, userID)
	} else {
		s.titles[userID] = ts
	}
}

// full reports whether userID has max answers counted, titles aside (an
// answer takes a title's slot): a request that would write before it
// reserves (a send creating its conversation) is refused early, so that
// a refusal costs no write in the common case. Only reserveAnswer's take
// is binding.
func (s *answerSlots) full(userID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running[userID]-len(s.titles[userID]) >= s.max
}

// count is how many answers and titles of userID are counted (tests).
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
	if err == nil && h.endedUsers.refused(userID) {
		err = ErrSessionEnded // the account is being deleted (EndUser)
	}
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
