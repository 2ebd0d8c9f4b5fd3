package limits

import (
	"errors"
	"time"

	"chatd/hub/protocol"
)

// spend names budgets of one request (a bit set).
type spend int

const (
	spendSend spend = 1 << iota
	spendConversation
)

// Spent is what SpendSend or SpendConversation took of a user's budgets
// for one request; Give gives it back. The zero Spent holds nothing.
type Spent struct {
	l      *Users
	userID string
	local  spend // of this process
	shared spend // of the cluster: only what it took (not when unreachable)
}

// Refusal is a send refused for one of the user's budgets.
type Refusal struct {
	// Err is the rate_limited error to answer, naming the budget.
	Err *protocol.Error
	// Conversations says the new conversations budget refused (else the
	// sends budget did); Wait is then how long until the next.
	Conversations bool
	Wait          time.Duration
}

// SpendSend spends the user's budget for one send or regenerate and, with
// creates (a send without a conversation), one of their new conversations
// too: both or neither, of this process and of the cluster with
// Options.Shared, so a send refused for either budget leaves the other as
// it was. The sends budget is checked first. The transports call it after
// AllowFrame, once they know the request is no retry: a send repeating a
// client message id already stored spends nothing. In this process both
// are checked in one step; with a cluster, what the cluster took before
// another of its budgets refused is given back (Shared.GiveSend), so
// parallel requests may see it spent meanwhile.
func (l *Users) SpendSend(userID string, creates bool) (Spent, *Refusal) {
	want := spendSend
	if creates {
		want |= spendConversation
	}
	return l.spend(userID, want)
}

// SpendConversation spends the user's budget for creating one
// conversation (POST /api/conversations), of this process and of the
// cluster with Options.Shared, or says (Refusal.Wait) how long to wait for
// the next. A creation the cluster refuses gives this process's token
// back; Spent.Give gives back one that then creates nothing.
func (l *Users) SpendConversation(userID string) (Spent, *Refusal) {
	return l.spend(userID, spendConversation)
}

// spend takes want here, then on the cluster, all or nothing.
func (l *Users) spend(userID string, want spend) (Spent, *Refusal) {
	sp := Spent{l: l, userID: userID}
	wait, refused := l.takeLocal(userID, want)
	if refused == 0 {
		sp.local = want
		refused, wait = l.takeShared(&sp, want)
	}
	if refused != 0 {
		sp.Give()
		return Spent{}, refusal(refused, wait)
	}
	return sp, nil
}

// takeShared takes want from the cluster, sends first, noting in sp what
// it took; it returns the budget that refused (0 for none).
func (l *Users) takeShared(sp *Spent, want spend) (spend, time.Duration) {
	if want&spendSend != 0 {
		ok, taken := l.shared.takeSend(sp.userID)
		if !ok {
			return spendSend, 0
		}
		if taken {
			sp.shared |= spendSend
		}
	}
	if want&spendConversation == 0 {
		return 0, 0
	}
	wait, ok, taken := l.shared.takeConversation(sp.userID)
	if !ok {
		return spendConversation, wait
	}
	if taken {
		sp.shared |= spendConversation
	}
	return 0, 0
}

func refusal(refused spend, wait time.Duration) *Refusal {
	if refused == spendConversation {
		return &Refusal{Conversations: true, Wait: wait, Err: protocol.Errorf(protocol.CodeRateLimited,
			"too many new conversations; retry in %d s", int(wait.Seconds())+1)}
	}
	return &Refusal{Err: protocol.Errorf(protocol.CodeRateLimited, "too many messages per minute; wait a moment")}
}

// Give gives back what SpendSend or SpendConversation took, here and on
// the cluster, for a request that then did not happen (refused by the
// hub, failed before its answer started, a creation the store did not
// make). Call it at most once.
func (s Spent) Give() {
	if s.l == nil {
		return
	}
	if s.shared&spendSend != 0 {
		s.l.shared.giveSend(s.userID)
	}
	if s.shared&spendConversation != 0 {
		s.l.shared.giveConversation(s.userID)
	}
	s.l.giveLocal(s.userID, s.local)
}

// GiveOn gives back what was spent (Give) when err, the outcome of the
// request that spent it, is not nil, so no answer started: always when the
// server failed it (internal, unavailable, out of time), and when the hub
// refused it (generation_running, not_found, an invalid field) while the
// user's refused sends per minute (Options.RefusedSendsPerMinute, of this
// process and of the cluster with Options.Shared) last;
// past them a refusal keeps its send spent (a new conversation it spent is
// still given back). It returns err.
func (s Spent) GiveOn(err error) error {
	switch {
	case err == nil || s.l == nil:
	case hubRefused(err) && !s.l.takeRefused(s.userID):
		s.local &^= spendSend
		s.shared &^= spendSend
		s.Give()
	default:
		s.Give()
	}
	return err
}

// hubRefused reports whether err is the hub refusing a request, rather than
// the server failing it: a protocol error other than internal or
// unavailable.
func hubRefused(err error) bool {
	var pe *protocol.Error
	return errors.As(err, &pe) && pe.Code != protocol.CodeInternal && pe.Code != protocol.CodeUnavailable
}

// takeRefused spends one of the user's refused sends, of this process
// and of the cluster with Options.Shared: one the cluster refuses gives
// this process's back.
func (l *Users) takeRefused(userID string) bool {
	if !l.takeRefusedLocal(userID) {
		return false
	}
	if !l.shared.takeRefused(userID) {
		l.giveRefusedLocal(userID)
		return false
	}
	return true
}

func (l *Users) takeRefusedLocal(userID string) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state(userID).refused.take(l.refused, now)
}

func (l *Users) giveRefusedLocal(userID string) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state(userID).refused.give(l.refused, now)
}

// takeLocal spends want in this process, all or nothing, under one lock:
// it returns the budget that refused (0 for none) and, for new
// conversations, how long until the next.
func (l *Users) takeLocal(userID string, want spend) (time.Duration, spend) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.state(userID)
	if want&spendSend != 0 && !s.sends.take(l.sends, now) {
		return 0, spendSend
	}
	if want&spendConversation != 0 {
		if wait, ok := s.convs.takeOrWait(l.convs, now); !ok {
			if want&spendSend != 0 {
				s.sends.give(l.sends, now)
			}
			return wait, spendConversation
		}
	}
	return 0, 0
}

// giveLocal gives back the tokens of the budgets in b that this process
// spent for a request that did not happen.
func (l *Users) giveLocal(userID string, b spend) {
	if b == 0 {
		return
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.state(userID)
	if b&spendSend != 0 {
		s.sends.give(l.sends, now)
	}
	if b&spendConversation != 0 {
		s.convs.give(l.convs, now)
	}
}
