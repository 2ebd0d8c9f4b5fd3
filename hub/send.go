package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"chatd/hub/protocol"
	"chatd/llm"
	"chatd/persistence"
)

// SendRequest asks for a user message to be stored and answered.
type SendRequest struct {
	FrameID         json.RawMessage // echoed in the ack
	ConnectionID    string          // for logs
	ConversationID  string          // "" creates a conversation
	Content         string
	ClientMessageID string
	ParentMessageID *string // nil: after the latest message; "": a new root
	Model           string
	// Stored is what the transport found ClientMessageID to be among the
	// user's messages before the send spent the user's budgets
	// (StoredNone: not found, or not looked up). A key stored already is
	// looked up before the conversation is read (a retry then reads its
	// message and answer only) and anything is reserved, locked or
	// written, so a send naming another conversation than the one its key
	// was stored in is answered as a repeat of that send, or refused when
	// a regenerate stored it, without a failed insert.
	Stored Stored
}

// RegenerateRequest asks for an answer to be produced again.
type RegenerateRequest struct {
	FrameID        json.RawMessage
	ConnectionID   string
	ConversationID string
	MessageID      string // the answer to replace; "" is the latest answer
	Model          string
	// ClientMessageID is the regenerate's idempotency key, as a send's:
	// the new answer is stored with it, and a regenerate repeating one
	// (a lost ack) is answered with that answer, starting nothing.
	ClientMessageID string
	// Stored is what the transport found ClientMessageID to be, as a
	// send's (SendRequest.Stored).
	Stored Stored
}

// Stored says which kind of request stored a client message id among a
// user's messages (persistence's MessageByClientID finds it), as a
// transport found it before a send or regenerate spends the user's
// budgets. A key names one request of the user, whatever its
// conversation.
type Stored uint8

const (
	// StoredNone: no message carries the key (or it was not looked up).
	StoredNone Stored = iota
	// StoredSend: a send's user message carries the key.
	StoredSend
	// StoredRegenerate: a regenerate's answer carries the key.
	StoredRegenerate
)

// Retries reports whether a send (regenerate false) or a regenerate
// carrying a key stored as s is a retry of the request that stored it,
// which the hub answers with what that one stored, wherever it names,
// and which spends none of the user's budgets. A key that the other kind
// of request stored is refused (invalid_field): not a retry, it spends
// as any refused request does.
func (s Stored) Retries(regenerate bool) bool {
	if regenerate {
		return s == StoredRegenerate
	}
	return s == StoredSend
}

// Result names what a send or regenerate created (or found, for a repeated
// client message id).
type Result struct {
	ConversationID string
	UserMessageID  string
	MessageID      string // the answer; "" if a repeated send has none
	// Repeated says the request's clientMessageId was found stored (a
	// retry, or a copy stored first, here or on another instance): it
	// stored and started nothing, and the transports give back the budget
	// it spent.
	Repeated bool
	// ReplacedModel, when set, is the conversation's model, no longer
	// offered, that Model answers in place of (the ack says so too).
	ReplacedModel, Model string
}

// Send stores the user's message and starts its answer. sub (which may be
// nil) follows the conversation from then on and receives the ack first.
// A send past the user's answers running here at once
// (Options.MaxAnswersPerUser) is refused with rate_limited before its
// message is stored (one creating its conversation, before that too,
// unless the last slot was taken meanwhile: see below).
//
// A send that creates its conversation and stores none of its messages
// (the store failed, the bus is down, or the same send was stored first
// elsewhere) removes that conversation again before it returns: it was
// never announced. Only when the cluster bus may have taken the
// conversation's lock for it and lost the reply does it stay (empty),
// see dropCreated.
func (h *Hub) Send(ctx context.Context, sub Subscriber, userID string, req SendRequest) (_ Result, err error) {
	if !h.enter() {
		return Result{}, errUnavailable
	}
	defer h.work.Done()
	// A repeated send is found first, so a retry of the send that created
	// a conversation does not create another. One whose id the transport
	// found stored (a retry, which spent none of the user's budgets) is
	// looked up before the conversation is read (repeatElsewhere), in
	// whichever conversation holds it: answering it reads that message
	// and its answer, never every message's text. A send into a
	// conversation whose id was stored there since (or that no transport
	// looked up) is found among the messages it reads anyway, or refused
	// by the store's unique index and found below.
	if req.ConversationID == "" {
		if m, ok, err := h.keyedElsewhere(ctx, userID, req.ClientMessageID); err != nil {
			return Result{}, err
		} else if ok {
			return h.repeatSend(ctx, sub, m, nil, req.Model, req.FrameID)
		}
		if h.answers.full(userID) {
			return Result{}, h.answers.refusal // before the conversation is created
		}
	} else if m, ok, err := h.repeatElsewhere(ctx, userID, req.ClientMessageID, req.Stored); err != nil || ok {
		if err != nil {
			return Result{}, err
		}
		return h.repeatSend(ctx, sub, m, nil, req.Model, req.FrameID)
	}
	conv, history, created, err := h.sendTarget(ctx, userID, req)
	if err != nil {
		return Result{}, err
	}
	var user persistence.Message // its CreatedAt is set once it is stored
	if created {
		defer func() {
			if user.CreatedAt.IsZero() {
				h.dropCreated(ctx, userID, conv.ID, err)
			}
		}()
	}
	if m, ok := keyed(history, req.ClientMessageID); ok {
		return h.repeatSend(ctx, sub, m, history, req.Model, req.FrameID)
	}
	model := modelChoice{id: conv.Model} // a new conversation's model was picked as it was created
	if !created {
		if model, err = h.pickModel(ctx, req.Model, conv.Model); err != nil {
			return Result{}, err
		}
	}
	parentID, err := sendParent(history, req.ParentMessageID)
	if err != nil {
		return Result{}, err
	}
	c, err := h.reserveAnswer(conv.ID, userID, sub)
	if err != nil {
		if res, found, err := h.sentMeanwhile(ctx, sub, userID, conv.ID, req); found {
			return res, err
		}
		return Result{}, err
	}
	if err := h.lockCluster(ctx, c, userID, false); err != nil {
		h.unreserve(c)
		return Result{}, err
	}
	if !settled(history) {
		if conv, history, parentID, err = h.rereadSend(ctx, userID, conv.ID, req.ParentMessageID); err != nil {
			h.unreserve(c)
			return Result{}, err
		}
	}
	// The user message's id is chosen here so that the answer's row, which
	// names it as its parent, can be stored with it in one write.
	user = persistence.Message{ID: persistence.NewID(), ConversationID: conv.ID, OwnerID: userID, ParentID: parentID,
		Role: persistence.RoleUser, Content: req.Content, Status: persistence.StatusComplete,
		ClientMessageID: req.ClientMessageID}
	// The user's tabs here move the conversation up (or add it) after the
	// ack and before the answer's first delta, once the user message is
	// stored; the other instances' tabs after the answer started (the
	// bus is not waited for before it starts).
	var announced *protocol.Frame
	var touched persistence.Conversation // as the insert left it, where the store says
	announce := func() {
		action := "updated"
		if created {
			action = "created"
		}
		announced = protocol.Conversation(action, h.sentConversation(ctx, userID, conv, touched, user.CreatedAt))
		h.deliverConv(userID, conv.ID, action, announced)
	}
	from := origin{sub: sub, frameID: req.FrameID, connID: req.ConnectionID, announce: announce, touched: &touched}
	res, err := h.startAnswer(ctx, c, conv, append(history, user), &user, true, model, from)
	if m, ok := h.storedFirst(ctx, userID, req.ClientMessageID, err); ok {
		return h.repeatSend(ctx, sub, m, nil, req.Model, req.FrameID)
	}
	if announced == nil && !user.CreatedAt.IsZero() {
		announce() // the user message was stored, its answer not
	}
	if announced != nil {
		h.broadcast(UserEvent{UserID: userID, Frame: announced})
	}
	return res, err
}

// sentConversation is the conversation a send or regenerate announces: as
// the insert of its messages left it (touched, from a
// persistence.TouchingInserter), else as read again (a store without the
// interface, or one that could not say: touched is then zero), so that a
// rename or a title stored since the request read the conversation (read)
// is not undone in the tabs by that older copy carrying a newer UpdatedAt.
// Only when neither can be had is read announced, moved to at (the time of
// the request's first message stored, or about it).
func (h *Hub) sentConversation(ctx context.Context, userID string, read, touched persistence.Conversation, at time.Time) persistence.Conversation {
	if touched.ID != "" {
		return touched
	}
	if c, err := h.opts.Store.Conversation(persistence.WithLatest(ctx), userID, read.ID); err == nil {
		return c
	}
	read.UpdatedAt = at
	return read
}

// dropCreated removes the conversation a send created and stored no
// message in (cause is why), so nothing of the send remains; the send's
// own context may be what ended, so the removal has its own, bounded by
// FinishTimeout. A store that refuses the removal too leaves the empty
// conversation, logged.
//
// The conversation is listed (after a reload) from its creation on, so
// another tab may have sent into it meanwhile, on this instance or another:
// the removal reserves it and takes its cluster lock, as a send does
// (every message is stored under both), and removes it only while it is
// still empty; one another send holds, or holding messages, is left. That
// read asks for the latest state (persistence.WithLatest): a replica
// lagging behind another tab's message would have it deleted.
//
// With the bus down (its Acquire refused before anything was sent,
// ErrNotSent: no lock taken) it is removed without the cluster lock, as
// a protocol client repeating the refused send would otherwise leave an
// empty conversation per try. Nobody else knows its id but a tab that
// listed the conversations in the moment since its creation; a send
// from there on another instance, one that still reaches the bus, is
// seen by the read before the removal, or (stored in the moment between
// them) has its conversation removed under it, and its answer is ended
// as for a conversation deleted while it runs. Where the lock's state is
// unknown (an Acquire that may have been applied, its reply lost) or
// another send holds it, the empty conversation stays.
func (h *Hub) dropCreated(ctx context.Context, userID, convID string, cause error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.opts.FinishTimeout)
	defer cancel()
	c, err := h.reserve(convID, userID, nil)
	if err != nil {
		return // another send runs in it
	}
	defer h.unreserve(c)
	if err := h.lockCluster(ctx, c, userID, false); err != nil && !errors.Is(err, ErrNotSent) {
		return // another instance's send runs in it, or its lock's state is unknown
	}
	msgs, err := h.opts.Store.Messages(persistence.WithLatest(ctx), userID, convID)
	if err == nil && len(msgs) == 0 {
		err = h.opts.Store.DeleteConversation(ctx, userID, convID)
	}
	if err != nil && !errors.Is(err, persistence.ErrNotFound) {
		h.log.Warn("remove the conversation of a failed send", "conversation", convID, "cause", cause, "err", err)
	}
}

// sentMeanwhile answers a send refused because an answer is being
// prepared or runs in its conversation, when that answer is this very send
// (its client message id), stored after this one read the conversation: a
// retry that came while the first was still being stored. It waits for
// the reservation to end, then answers as a repeated send (its refusal
// too: the key of a regenerate's answer); found is false when the key is
// not found in the conversation (another send holds it).
func (h *Hub) sentMeanwhile(ctx context.Context, sub Subscriber, userID, convID string, req SendRequest) (_ Result, found bool, _ error) {
	if req.ClientMessageID == "" {
		return Result{}, false, nil
	}
	if ch := h.reservation(convID, userID); ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return Result{}, false, nil
		}
	}
	m, err := h.opts.Store.MessageByClientID(ctx, userID, req.ClientMessageID)
	if err != nil || m.ConversationID != convID {
		return Result{}, false, nil
	}
	res, err := h.repeatSend(ctx, sub, m, nil, req.Model, req.FrameID)
	return res, true, err
}

// sendTarget loads the conversation of a send and its messages, with one
// read where the store allows (persistence.ReadConversation), or creates
// the conversation when the request names none (created is then true, and
// it has no messages: nobody else knows its id yet).
func (h *Hub) sendTarget(ctx context.Context, userID string, req SendRequest) (conv persistence.Conversation,
	msgs []persistence.Message, created bool, err error,
) {
	if req.ConversationID != "" {
		conv, msgs, err = h.readConversation(ctx, userID, req.ConversationID)
		return conv, msgs, false, err
	}
	// A new conversation has no message to be a parent: refused before
	// anything is stored.
	if _, err := sendParent(nil, req.ParentMessageID); err != nil {
		return conv, nil, false, err
	}
	model, err := h.pickModel(ctx, req.Model, "")
	if err != nil {
		return conv, nil, false, err
	}
	conv = persistence.Conversation{OwnerID: userID, Model: model.id}
	if err := h.opts.Store.CreateConversation(ctx, &conv); err != nil {
		if errors.Is(err, persistence.ErrUnknownOwner) {
			return conv, nil, false, ErrSessionEnded
		}
		return conv, nil, false, fmt.Errorf("create conversation: %w", err)
	}
	return conv, []persistence.Message{}, true, nil
}

// readConversation loads a conversation of userID and its messages, with
// one read where the store allows (persistence.ReadConversation); another
// user's is not found. It reads the latest state (persistence.WithLatest):
// what it reads is the prompt sent upstream, decides the new message's
// parent and whether it was sent before, and a replica lagging behind the
// last exchange would leave it out.
func (h *Hub) readConversation(ctx context.Context, userID, id string) (persistence.Conversation, []persistence.Message, error) {
	conv, msgs, err := persistence.ReadConversation(persistence.WithLatest(ctx), h.opts.Store, userID, id)
	if errors.Is(err, persistence.ErrNotFound) {
		return conv, nil, protocol.Errorf(protocol.CodeNotFound, "conversation %s not found", id)
	}
	if err != nil {
		return conv, nil, fmt.Errorf("load conversation %s and its messages: %w", id, err)
	}
	return conv, msgs, nil
}

// settled reports whether every message of msgs is final: no answer was
// running (stored streaming) when they were read.
func settled(msgs []persistence.Message) bool {
	return !slices.ContainsFunc(msgs, func(m persistence.Message) bool { return !m.Status.Final() })
}

// rereadSend reads again, once the send has reserved the conversation and
// taken its cluster lock, a history read while an answer was running: that
// answer has ended since (nothing runs now, here or elsewhere), its final
// text stored and maybe more messages after it, while the first read holds
// it streaming with the text of a checkpoint (empty, or a checkpoint
// interval behind). The prompt and the new message's parent come from this
// read (the latest state, persistence.WithLatest, as supersede reads), or
// the answer would go upstream cut short and the message would become a
// sibling of an exchange that ended in between. It reads once and waits
// for nothing: an answer still stored streaming now runs nowhere (its
// instance died, or its end could not be stored) and is sent as stored. A
// conversation deleted meanwhile is not found; so is a parent deleted with
// it.
func (h *Hub) rereadSend(ctx context.Context, userID, convID string, parent *string) (
	persistence.Conversation, []persistence.Message, string, error,
) {
	conv, msgs, err := h.readConversation(ctx, userID, convID)
	if err != nil {
		return conv, nil, "", err
	}
	parentID, err := sendParent(msgs, parent)
	return conv, msgs, parentID, err
}

// sendParent returns the parent a new user message gets among the
// conversation's messages: the latest when parent is nil, none when it is "".
// A parent named must be an answer: a user message would make two user
// turns in a row, unless it has no answer (none was stored), which the new
// message then follows, as it would with parent nil (and an edit of the
// message that followed it does).
func sendParent(msgs []persistence.Message, parent *string) (string, error) {
	switch {
	case parent == nil && len(msgs) == 0:
		return "", nil
	case parent == nil:
		return msgs[len(msgs)-1].ID, nil
	case *parent == "":
		return "", nil
	}
	i := slices.IndexFunc(msgs, func(m persistence.Message) bool { return m.ID == *parent })
	if i < 0 {
		return "", protocol.Errorf(protocol.CodeNotFound, "message %s not found in this conversation", *parent)
	}
	if msgs[i].Role == persistence.RoleUser && slices.ContainsFunc(msgs, func(m persistence.Message) bool {
		return m.ParentID == *parent && m.Role == persistence.RoleAssistant
	}) {
		return "", protocol.Errorf(protocol.CodeInvalidField, "parentMessageId must name an answer")
	}
	return *parent, nil
}

// repeatSend answers a send whose client message id was already stored:
// nothing new is stored or started. The connection follows the answer: a
// running one is caught up, an ended one is sent whole with its done.
// msgs are user's conversation's messages when the caller read them, nil
// otherwise: the answer is then read alone (repeatedAnswer), as a retry
// is bounded by no budget. An id a regenerate used (its answer carries
// it) is refused. Its reads ask for the latest state
// (persistence.WithLatest), as the read that found user did: a lagging
// replica would miss the answer stored with it, or its final state stored
// just before its done. requested is the model the repeated request names
// ("": none).
func (h *Hub) repeatSend(ctx context.Context, sub Subscriber, user persistence.Message, msgs []persistence.Message,
	requested string, frameID json.RawMessage,
) (Result, error) {
	if user.Role != persistence.RoleUser {
		return Result{}, keyUsedBy(user.ClientMessageID, "a regenerate")
	}
	res := Result{ConversationID: user.ConversationID, UserMessageID: user.ID, Repeated: true}
	var answer *persistence.Message
	if msgs == nil {
		var err error
		if answer, err = h.repeatedAnswer(ctx, user); err != nil {
			return res, err
		}
	} else {
		answer = latestAnswer(msgs, user.ID)
	}
	if answer != nil {
		res.MessageID = answer.ID
	}
	res.ReplacedModel, res.Model = h.repeatReplaced(ctx, user.OwnerID, user.ConversationID, requested, answer)
	return res, h.repeatAnswer(ctx, sub, user.OwnerID, res, answer, frameID)
}

// repeatedAnswer reads the latest answer to user (nil: none) alone, none
// of its conversation's other messages.
func (h *Hub) repeatedAnswer(ctx context.Context, user persistence.Message) (*persistence.Message, error) {
	answer, err := h.opts.Store.LatestAnswer(persistence.WithLatest(ctx), user.OwnerID, user.ConversationID, user.ID)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("load the answer to %s: %w", user.ID, err)
	}
	return &answer, nil
}

// latestAnswer is the last answer to user message userID among msgs
// (oldest first), nil when none.
func latestAnswer(msgs []persistence.Message, userID string) *persistence.Message {
	var answer *persistence.Message
	for i, m := range msgs {
		if m.ParentID == userID && m.Role == persistence.RoleAssistant {
			answer = &msgs[i]
		}
	}
	return answer
}

// repeatRegenerate answers a regenerate whose client message id was
// already stored, on its answer: nothing new is stored or started, and the
// connection follows that answer as a repeated send's does. An id a send
// used (its user message carries it) is refused. requested is the model
// the repeated request names ("": none).
func (h *Hub) repeatRegenerate(ctx context.Context, sub Subscriber, answer persistence.Message,
	requested string, frameID json.RawMessage,
) (Result, error) {
	if answer.Role != persistence.RoleAssistant {
		return Result{}, keyUsedBy(answer.ClientMessageID, "a send")
	}
	res := Result{ConversationID: answer.ConversationID, UserMessageID: answer.ParentID, MessageID: answer.ID, Repeated: true}
	res.ReplacedModel, res.Model = h.repeatReplaced(ctx, answer.OwnerID, answer.ConversationID, requested, &answer)
	return res, h.repeatAnswer(ctx, sub, answer.OwnerID, res, &answer, frameID)
}

// repeatReplaced says, for a repeated request that named the model
// requested ("": none), whether its answer (nil: none) came from the
// default in place of the conversation's model, as pickModel chose for
// the first request: the model replaced and the one answering, for the
// repeat's ack to say again what the first one's said (that ack may be
// the one lost). It is so when the request named no model, the answer's
// model is not the conversation's and the catalog lists the
// conversation's no longer; a model changed since to a listed one (a
// PATCH) is not told as replaced. The conversation or the catalog unread
// leaves it untold ("", ""): the repeat is still answered.
func (h *Hub) repeatReplaced(ctx context.Context, ownerID, convID, requested string, answer *persistence.Message) (replaced, model string) {
	if requested != "" || answer == nil {
		return "", ""
	}
	conv, err := h.opts.Store.Conversation(persistence.WithLatest(ctx), ownerID, convID)
	if err != nil || conv.Model == "" || conv.Model == answer.Model {
		return "", ""
	}
	models, err := h.opts.Model.Models(ctx)
	if err != nil || slices.ContainsFunc(models, func(m llm.ModelInfo) bool { return m.ID == conv.Model }) {
		return "", ""
	}
	return conv.Model, answer.Model
}

// keyUsedBy refuses a client message id that another kind of request used.
func keyUsedBy(clientID, other string) error {
	return protocol.Errorf(protocol.CodeInvalidField, "clientMessageId %q was already used by %s", clientID, other)
}

// repeatAnswer acks ownerID's repeated request with res and makes sub
// follow its answer (nil: none): a running one is caught up, an ended one
// is sent whole with its done.
func (h *Hub) repeatAnswer(ctx context.Context, sub Subscriber, ownerID string, res Result, answer *persistence.Message,
	frameID json.RawMessage,
) error {
	if sub == nil {
		return nil
	}
	var elsewhere *AnswerRef // the answer still runs, on another instance
	if answer != nil && !answer.Status.Final() {
		elsewhere = h.runningElsewhere(ctx, res.ConversationID, answer.ID)
	}
	c := h.lockConv(res.ConversationID, ownerID)
	sub.Deliver(protocol.AckReplaced(frameID, res.ConversationID, res.UserMessageID, res.MessageID,
		res.ReplacedModel, res.Model))
	h.followLocked(c, sub)
	ended := false // the answer read as running is running nowhere now
	if g := c.gen; g != nil && g.msg.ID == res.MessageID {
		g.catchUpLocked(sub, 0, 0, true)
	} else if m := c.remote; m != nil && m.ref.MessageID == res.MessageID {
		m.catchUpLocked(sub, 0, true)
	} else if answer != nil && answer.Status.Final() {
		deliverStored(sub, *answer)
	} else if elsewhere != nil {
		h.mirrorLocked(c, *elsewhere) // sub gets it from its first frame
	} else {
		ended = answer != nil
	}
	c.mu.Unlock()
	h.release(c)
	if ended {
		// It ended between the read and the lock, its done sent to the
		// tabs that followed it then: its stored state, final since, is
		// sent whole, as Subscribe does, or, when it ended here without
		// its end stored, as its done said (unsaved.go).
		m, err := h.opts.Store.Message(persistence.WithLatest(ctx), ownerID, answer.ID)
		if m, _ = h.unsaved.end(m, time.Now()); err == nil && m.Status.Final() {
			deliverStored(sub, m)
		}
	}
	return nil
}

// deliverStored sends sub an ended answer whole: its message, then its done.
func deliverStored(sub Subscriber, m persistence.Message) {
	sub.Deliver(protocol.Message(m))
	sub.Deliver(protocol.Done(m, storedError(m)))
}

// Regenerate cancels the running answer, if any, and answers the same user
// message again as a sibling of the old answer, with the requested model,
// else the conversation's current one (else the default), as Send does. A
// request refused (an unknown model, a message that is no answer of the
// conversation, the user's answers running at once: Options.MaxAnswersPerUser)
// leaves the running answer alone; one replacing an answer running here
// takes its slot.
func (h *Hub) Regenerate(ctx context.Context, sub Subscriber, userID string, req RegenerateRequest) (Result, error) {
	if !h.enter() {
		return Result{}, errUnavailable
	}
	defer h.work.Done()
	// A repeated regenerate is found before anything is stopped: the
	// answer it would stop may be the one it made. One whose key the
	// transport found stored (a retry, which spent none of the user's
	// budgets) is looked up before the conversation is read, in
	// whichever conversation holds it (repeatElsewhere); one stored since
	// is found among the messages.
	if m, ok, err := h.repeatElsewhere(ctx, userID, req.ClientMessageID, req.Stored); err != nil || ok {
		if err != nil {
			return Result{}, err
		}
		return h.repeatRegenerate(ctx, sub, m, req.Model, req.FrameID)
	}
	conv, msgs, err := h.readConversation(ctx, userID, req.ConversationID)
	if err != nil {
		return Result{}, err
	}
	if m, ok := keyed(msgs, req.ClientMessageID); ok {
		return h.repeatRegenerate(ctx, sub, m, req.Model, req.FrameID)
	}
	// The request is checked before the running answer is stopped: a
	// refused regenerate leaves it running.
	user, err := regenerateUser(msgs, req.MessageID)
	if err != nil {
		return Result{}, err
	}
	// As for a send, the conversation's current model (the picker's
	// choice), not the one of the answer being replaced.
	model, err := h.pickModel(ctx, req.Model, conv.Model)
	if err != nil {
		return Result{}, err
	}
	// An answer runs when one is stored streaming (here or on another
	// instance), or while this instance's has not let the conversation go:
	// its end may be stored already.
	here := h.runningHere(conv.ID)
	running := here || slices.ContainsFunc(msgs, func(m persistence.Message) bool { return !m.Status.Final() })
	if running {
		// Nothing is stopped for a repeat: its key, not among this
		// conversation's messages, may be stored since (the first copy,
		// on another instance) or in another conversation.
		if m, ok, err := h.keyedElsewhere(ctx, userID, req.ClientMessageID); err != nil || ok {
			if err != nil {
				return Result{}, err
			}
			return h.repeatRegenerate(ctx, sub, m, req.Model, req.FrameID)
		}
	}
	// A regenerate refused for the user's answers running at once leaves
	// the running answer alone too, unless it runs here: stopped, it gives
	// back the slot the new one takes. (A send of the user taking that
	// slot in between has the regenerate refused after the stop.)
	if !here && h.answers.full(userID) {
		return Result{}, h.answers.refusal
	}
	if running {
		if msgs, user, err = h.supersede(ctx, userID, conv.ID, req.MessageID); err != nil {
			return Result{}, err
		}
	}
	c, err := h.reserveAnswer(conv.ID, userID, sub)
	if err != nil {
		return Result{}, err
	}
	if err := h.lockCluster(ctx, c, userID, true); err != nil {
		h.unreserve(c)
		return Result{}, err
	}
	// The new answer moved the conversation up: the user's tabs here are
	// told after the ack and the answer's message and before its first
	// delta, as for a send; the other instances' once it started.
	var announced *protocol.Frame
	var touched persistence.Conversation // as the answer's insert left it, where the store says
	announce := func() {
		announced = protocol.Conversation("updated", h.sentConversation(ctx, userID, conv, touched, time.Now().UTC()))
		h.deliverConv(userID, conv.ID, "updated", announced)
	}
	from := origin{sub: sub, frameID: req.FrameID, connID: req.ConnectionID, clientID: req.ClientMessageID,
		announce: announce, touched: &touched}
	res, err := h.startAnswer(ctx, c, conv, msgs, &user, false, model, from)
	if m, ok := h.storedFirst(ctx, userID, req.ClientMessageID, err); ok {
		return h.repeatRegenerate(ctx, sub, m, req.Model, req.FrameID)
	}
	if announced != nil {
		h.broadcast(UserEvent{UserID: userID, Frame: announced})
	}
	return res, err
}

// storedFirst is the message that holds clientID when the store refused a
// request's message for it (err is persistence.ErrDuplicate): the same
// request, repeated at the same instant or on another instance, stored
// first, or the id used in another conversation. The caller answers the
// request as a repeat of it; ok is false for any other err.
func (h *Hub) storedFirst(ctx context.Context, userID, clientID string, err error) (persistence.Message, bool) {
	if clientID == "" || !errors.Is(err, persistence.ErrDuplicate) {
		return persistence.Message{}, false
	}
	m, err := h.opts.Store.MessageByClientID(ctx, userID, clientID)
	return m, err == nil
}

// keyedElsewhere looks up the message of userID that carries clientID
// ("": none) in the store.
func (h *Hub) keyedElsewhere(ctx context.Context, userID, clientID string) (persistence.Message, bool, error) {
	if clientID == "" {
		return persistence.Message{}, false, nil
	}
	m, err := h.opts.Store.MessageByClientID(ctx, userID, clientID)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return m, false, nil
	case err != nil:
		return m, false, fmt.Errorf("find client message %q: %w", clientID, err)
	}
	return m, true, nil
}

// repeatElsewhere looks up the message of userID that carries clientID
// when the transport found it stored (stored is not StoredNone), before
// the request's conversation is read, in whichever conversation holds it.
// A retry spends none of the user's budgets, so it must cost little: it
// used to read every message of the conversation with its text first (a
// long conversation's tens of megabytes per retry). A key stored in
// another conversation went on, before that, to reserve the conversation,
// take its cluster lock and insert, which the store's unique index
// refused (storedFirst), and ended an answer row never written. A key not
// found (its message deleted since) is a new request.
func (h *Hub) repeatElsewhere(ctx context.Context, userID, clientID string, stored Stored) (persistence.Message, bool, error) {
	if stored == StoredNone {
		return persistence.Message{}, false, nil
	}
	return h.keyedElsewhere(ctx, userID, clientID)
}

// keyed returns the message of msgs that carries clientID, if any: a
// send's user message or a regenerate's answer (repeatSend and
// repeatRegenerate refuse the other kind's).
func keyed(msgs []persistence.Message, clientID string) (persistence.Message, bool) {
	if clientID == "" {
		return persistence.Message{}, false
	}
	i := slices.IndexFunc(msgs, func(m persistence.Message) bool { return m.ClientMessageID == clientID })
	if i < 0 {
		return persistence.Message{}, false
	}
	return msgs[i], true
}

// supersede stops the answer running in a conversation (here or on
// another instance) for a regenerate of answer id, and reads the messages
// again as it left them (the latest state, persistence.WithLatest: the
// stopped answer's end was stored just now): the user message to answer
// again is found anew, as the latest answer may be the one stopped.
func (h *Hub) supersede(ctx context.Context, userID, convID, id string) ([]persistence.Message, persistence.Message, error) {
	if err := h.stopRunning(ctx, convID, errSuperseded); err != nil {
		return nil, persistence.Message{}, err
	}
	msgs, err := h.opts.Store.Messages(persistence.WithLatest(ctx), userID, convID)
	if err != nil {
		return nil, persistence.Message{}, fmt.Errorf("load messages of %s: %w", convID, err)
	}
	user, err := regenerateUser(msgs, id)
	return msgs, user, err
}

// runningHere reports whether an answer of this instance holds the
// conversation.
func (h *Hub) runningHere(convID string) bool {
	c := h.lookup(convID)
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen != nil
}

// regenerateUser returns the user message a regenerate of answer id
// ("": the latest answer) answers again.
func regenerateUser(msgs []persistence.Message, id string) (persistence.Message, error) {
	old, err := regenerateTarget(msgs, id)
	if err != nil {
		return old, err
	}
	user, ok := findMessage(msgs, old.ParentID)
	if !ok {
		return user, protocol.Errorf(protocol.CodeInvalidField, "the answer %s has no user message to answer again", old.ID)
	}
	return user, nil
}

func regenerateTarget(msgs []persistence.Message, id string) (persistence.Message, error) {
	if id != "" {
		m, ok := findMessage(msgs, id)
		if !ok {
			return m, protocol.Errorf(protocol.CodeNotFound, "message %s not found in this conversation", id)
		}
		if m.Role != persistence.RoleAssistant {
			return m, protocol.Errorf(protocol.CodeInvalidField, "messageId must name an answer, not a user message")
		}
		return m, nil
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == persistence.RoleAssistant {
			return msgs[i], nil
		}
	}
	return persistence.Message{}, protocol.Errorf(protocol.CodeNotFound, "this conversation has no answer to regenerate")
}

// Cancel stops the running answer of a conversation for every subscriber.
// It is idempotent: with nothing running it does nothing.
func (h *Hub) Cancel(ctx context.Context, userID, conversationID string) error {
	return h.CancelAnswer(ctx, userID, conversationID, "")
}

// CancelAnswer is Cancel for answer messageID only ("": whichever runs):
// when the conversation's running answer is another one, or none, it stops
// nothing and returns nil, as a cancel that came after its answer ended
// does. A conversation of another user is not found, whatever messageID.
// An answer running on another instance that the stop may not have
// reached (the bus failed until FinishTimeout, or is down) is answered
// unavailable: it may run on, and the client asks again.
func (h *Hub) CancelAnswer(ctx context.Context, userID, conversationID, messageID string) error {
	if c := h.lookup(conversationID); c == nil || c.owner != userID {
		if _, err := h.ownedConversation(ctx, userID, conversationID); err != nil {
			return err
		}
	}
	return h.cancelAnswer(ctx, userID, conversationID, messageID)
}

// stopRunning cancels the conversation's answer with cause and waits for its done.
func (h *Hub) stopRunning(ctx context.Context, convID string, cause error) error {
	c := h.lookup(convID)
	var g *generation
	if c != nil {
		c.mu.Lock()
		g = c.gen
		c.mu.Unlock()
	}
	if g == nil {
		return h.stopRemote(ctx, convID, ControlSupersede, "")
	}
	g.cancel(cause)
	select {
	case <-g.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the running answer to stop: %w", ctx.Err())
	}
}

// reserve claims the conversation for a new answer and makes sub follow it.
func (h *Hub) reserve(convID, userID string, sub Subscriber) (*conv, error) {
	c := h.lockConv(convID, userID)
	defer c.mu.Unlock()
	h.followLocked(c, sub)
	if err := reservableLocked(c); err != nil {
		return nil, err
	}
	c.unreserved = make(chan struct{})
	return c, nil
}

// reservableLocked refuses a reservation of c while an answer runs in it
// or is being prepared; c.mu is held.
func reservableLocked(c *conv) error {
	if c.gen != nil || c.reservedLocked() {
		return protocol.Errorf(protocol.CodeGenerationRunning,
			"an answer is already running in this conversation; cancel it or regenerate")
	}
	return nil
}

// endReservationLocked ends c's reservation; c.mu is held.
func (c *conv) endReservationLocked() {
	if c.unreserved != nil {
		close(c.unreserved)
		c.unreserved = nil
	}
}

// reservation returns what closes when the conversation's reservation
// ends, or nil when nothing is reserved.
func (h *Hub) reservation(convID, userID string) <-chan struct{} {
	c := h.lockConv(convID, userID)
	ch := c.unreserved
	c.mu.Unlock()
	h.release(c)
	return ch
}

// unreserve gives up c's reservation, its answer slot (it never started)
// and its cluster lock.
func (h *Hub) unreserve(c *conv) {
	c.mu.Lock()
	c.endReservationLocked()
	h.giveSlotLocked(c)
	lock := c.lock
	c.lock, c.halt = nil, nil
	c.mu.Unlock()
	h.abortLock(lock)
	h.release(c)
}

// origin is the connection and frame that asked for an answer.
type origin struct {
	sub     Subscriber // may be nil
	frameID json.RawMessage
	connID  string
	// clientID is the idempotency key of a regenerate, stored with its
	// answer ("": the store generates one).
	clientID string
	// announce, when set, runs once the ack and the new messages are
	// delivered and before the generation starts, with no lock held: a
	// send's or regenerate's conversation frame thereby reaches the tabs
	// before any delta.
	announce func()
	// touched, when set, receives the conversation as the insert of the
	// new messages left it, where the store returns it
	// (persistence.TouchingInserter); left as it is otherwise.
	touched *persistence.Conversation
}

// startAnswer stores the streaming answer under user (and user first, in
// the same write where the store allows, when newUser: a send), acks the
// request, announces the new messages and starts the generation. Nothing
// goes upstream before both are stored, nor unless the cluster lock still
// names the answer then (lockKept). The caller reserved c.
func (h *Hub) startAnswer(ctx context.Context, c *conv, conv persistence.Conversation, msgs []persistence.Message,
	user *persistence.Message, newUser bool, model modelChoice, from origin,
) (Result, error) {
	req, omitted, src := h.request(ctx, conv, msgs, user.ID, model.id)
	answer := persistence.Message{ConversationID: conv.ID, OwnerID: user.OwnerID, ParentID: user.ID,
		Role: persistence.RoleAssistant, Model: model.id, Status: persistence.StatusStreaming, OmittedMessages: omitted,
		ClientMessageID: from.clientID}
	// The answer's id is the one its cluster lock names, else chosen here:
	// known before the insert, a row the store wrote although it reported
	// a failure can be ended (unstarted).
	if answer.ID = c.lockedAnswerID(); answer.ID == "" {
		answer.ID = persistence.NewID()
	}
	var announce []persistence.Message
	if newUser {
		if err := h.storeSend(ctx, user, &answer, from.touched); err != nil {
			h.unstarted(c, answer, err)
			return Result{}, insertRefused(conv.ID, err)
		}
		announce = append(announce, *user)
	} else if err := h.insertAnswer(ctx, &answer, from.touched); err != nil {
		h.unstarted(c, answer, err)
		return Result{}, insertRefused(conv.ID, fmt.Errorf("store answer: %w", err))
	}
	g := h.newGeneration(c, answer, user.Content, from.connID)
	g.titled, g.src = conv.Title != "", src
	kept := h.lockKept(ctx, c)
	res := Result{ConversationID: conv.ID, UserMessageID: user.ID, MessageID: answer.ID}
	if model.replaced != "" {
		res.ReplacedModel, res.Model = model.replaced, model.id
	}

	c.mu.Lock()
	h.publishLocked(c, kept)
	if from.sub != nil {
		from.sub.Deliver(protocol.AckReplaced(from.frameID, res.ConversationID, res.UserMessageID, res.MessageID,
			res.ReplacedModel, res.Model))
	}
	for _, m := range append(announce, answer) {
		c.deliverLocked(protocol.Message(m))
	}
	c.endReservationLocked()
	c.gen = g
	haltLocked(c, g)
	if !kept {
		g.cancel(errLockLost)
	}
	h.work.Add(1)
	c.mu.Unlock()
	if from.announce != nil {
		from.announce()
	}
	go g.run(req)
	return res, nil
}

// unstarted gives up the reservation of answer a, whose insert the store
// reported failed (err), and its cluster lock if it holds one (abortLock,
// which tells the other instances at once, without waiting for the
// store). Unless err says the row was not written (notWritten), the store
// may have written it all the same (a reply lost, the request's context
// ended on the way), and it would stay streaming with nothing to end it:
// it is ended as interrupted in the background by the sweep of late ends
// (lateEnds: one store call at a time however many sends failed, given up
// at shutdown, the row then left to the next start's sweep, in a cluster
// to the periodic sweep of answers left streaming).
func (h *Hub) unstarted(c *conv, a persistence.Message, err error) {
	h.unreserve(c)
	if notWritten(err) {
		return
	}
	if !h.endInBackground(a.OwnerID, a.ID, unstartedReason) {
		h.log.Error("an answer whose insert failed may have been stored: it stays streaming until the next start (in a cluster, until a sweep of answers left streaming)",
			"message", a.ID, "conversation", a.ConversationID, "err", err)
	}
}

// insertRefused is what a send or regenerate whose insert failed (err)
// returns: the conversation deleted since the request read it (another
// tab, another instance; persistence.ErrNotFound) is not found, as when
// a read finds it gone, and the account deleted
// (persistence.ErrUnknownOwner) ends the session (ErrSessionEnded), as
// when sendTarget's creation finds it gone. Any other err is returned as
// it is.
func insertRefused(convID string, err error) error {
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return protocol.Errorf(protocol.CodeNotFound, "conversation %s not found", convID)
	case errors.Is(err, persistence.ErrUnknownOwner):
		return ErrSessionEnded
	}
	return err
}

// notWritten reports whether err, the failure of an answer's insert, says
// the answer's row was not written: its insert was not tried
// (answerNotTried), or the store refused it (a key taken, the
// conversation or its owner gone; MongoDB may leave a row in a
// conversation gone, which nobody reads). Any other failure (a timeout, a
// lost connection, the request's context ending) may come after the
// database applied the write.
func notWritten(err error) bool {
	var notTried answerNotTried
	return errors.As(err, &notTried) || errors.Is(err, persistence.ErrDuplicate) ||
		errors.Is(err, persistence.ErrNotFound) || errors.Is(err, persistence.ErrUnknownOwner)
}

// answerNotTried is storeSend's error when the user message's insert
// failed, so that the answer's was not tried.
type answerNotTried struct{ error }

func (e answerNotTried) Unwrap() error { return e.error }

// unstartedReason is the error stored with an answer that never started.
const unstartedReason = "The answer could not be started; try again."

// storeSend stores a user's new message and the row of its answer: in one
// write when the store can (persistence.MessagesInserter), so a burst of
// sends costs the store one write each, else one after the other. On
// error, user.CreatedAt stays zero unless the user message was stored.
// Where the store returns the conversation with its inserts
// (persistence.TouchingInserter), touched (when not nil) is set to it as
// the last insert that succeeded left it.
func (h *Hub) storeSend(ctx context.Context, user, answer *persistence.Message, touched *persistence.Conversation) error {
	if touched == nil {
		touched = new(persistence.Conversation)
	}
	if _, ok := h.opts.Store.(persistence.MessagesInserter); ok {
		if err := h.insert(ctx, touched, user, answer); err != nil {
			return fmt.Errorf("store user message and answer: %w", err)
		}
		return nil
	}
	if err := h.insert(ctx, touched, user); err != nil {
		return answerNotTried{fmt.Errorf("store user message: %w", err)}
	}
	if err := h.insert(ctx, touched, answer); err != nil {
		return fmt.Errorf("store answer: %w", err)
	}
	return nil
}

// insertAnswer stores a regenerate's answer: with InsertTouching where
// the store has it, touched (when not nil) then set as insert does, else
// with InsertMessage.
func (h *Hub) insertAnswer(ctx context.Context, answer *persistence.Message, touched *persistence.Conversation) error {
	if _, ok := h.opts.Store.(persistence.TouchingInserter); ok && touched != nil {
		return h.insert(ctx, touched, answer)
	}
	return h.opts.Store.InsertMessage(ctx, answer)
}

// insert stores ms: one message, or several with InsertMessages (the
// caller checked that the store has it). On success, touched is set to
// their conversation as the store left it where the store returns it
// (persistence.TouchingInserter).
func (h *Hub) insert(ctx context.Context, touched *persistence.Conversation, ms ...*persistence.Message) error {
	if ti, ok := h.opts.Store.(persistence.TouchingInserter); ok {
		c, err := ti.InsertTouching(ctx, ms...)
		if err == nil {
			*touched = c
		}
		return err
	}
	if mi, ok := h.opts.Store.(persistence.MessagesInserter); ok {
		return mi.InsertMessages(ctx, ms...)
	}
	return h.opts.Store.InsertMessage(ctx, ms[0])
}

func (h *Hub) newGeneration(c *conv, answer persistence.Message, prompt, connID string) *generation {
	id := persistence.NewID()
	ctx, cancel := context.WithCancelCause(llm.WithRequestID(h.base, id))
	ctx, stop := context.WithTimeoutCause(ctx, h.opts.MaxDuration, context.DeadlineExceeded)
	return &generation{id: id, hub: h, conv: c, msg: answer, prompt: prompt, connID: connID,
		ctx: ctx, cancel: cancel, stop: stop, done: make(chan struct{}), lastFlush: time.Now()}
}

// ownedConversation loads a conversation of userID; another user's id is
// not found. A conversation not found is looked for again in the latest
// state (persistence.WithLatest) before it is answered so: a replica
// lagging behind a conversation another instance created a moment ago
// (MongoDB, readPreference=secondaryPreferred) would have a Stop, a
// subscribe or a resume of it told that it does not exist, which the web
// client takes for a deleted conversation.
func (h *Hub) ownedConversation(ctx context.Context, userID, id string) (persistence.Conversation, error) {
	conv, err := h.opts.Store.Conversation(ctx, userID, id)
	if errors.Is(err, persistence.ErrNotFound) && !persistence.Latest(ctx) {
		conv, err = h.opts.Store.Conversation(persistence.WithLatest(ctx), userID, id)
	}
	if errors.Is(err, persistence.ErrNotFound) {
		return conv, protocol.Errorf(protocol.CodeNotFound, "conversation %s not found", id)
	}
	if err != nil {
		return conv, fmt.Errorf("load conversation %s: %w", id, err)
	}
	return conv, nil
}

// modelChoice is the model a send or regenerate answers with.
type modelChoice struct {
	id string
	// replaced is the conversation's model that id stands in for, no
	// longer offered ("": none replaced).
	replaced string
}

// pickModel returns the model to use: the requested one (by its id, or
// by another name the catalog knows it by: its id is used), else the
// conversation's (current), else the catalog's default. A catalog that
// lists no model because its upstreams failed (llm.Error) is refused as
// unavailable with the upstream's reason: an outage, not a server fault.
//
// The conversation's model missing from the catalog is missing for now
// while the catalog cannot list an upstream's models (llm.Unlister: the
// model may be one of them): refused as unknown_model, naming the model and
// why, rather than answered by another provider unasked (not unavailable,
// which clients repeat without a word: the user must see this one and may
// pick another model). Otherwise it is
// no longer offered (removed from the configuration, or from its
// upstream's list), and the default answers in its place, replaced
// naming it: the caller tells the client (ack and Result). The
// conversation keeps its model: the next answer is replaced and told
// again, and it comes from that model again once it is listed again.
func (h *Hub) pickModel(ctx context.Context, requested, current string) (modelChoice, error) {
	models, err := h.opts.Model.Models(ctx)
	if upstream := (*llm.Error)(nil); errors.As(err, &upstream) && ctx.Err() == nil {
		return modelChoice{}, h.noModel(upstream, err)
	}
	if err != nil {
		return modelChoice{}, fmt.Errorf("list models: %w", err)
	}
	known := func(id string) bool {
		return slices.ContainsFunc(models, func(m llm.ModelInfo) bool { return m.ID == id })
	}
	if requested != "" {
		id, ok := llm.ResolveModel(ctx, h.opts.Model, models, requested)
		if !ok {
			return modelChoice{}, protocol.Errorf(protocol.CodeUnknownModel, "model %q is not available", shownModel(requested))
		}
		return modelChoice{id: id}, nil
	}
	if current != "" {
		if known(current) {
			return modelChoice{id: current}, nil
		}
		if err := h.unlisted(current); err != nil {
			return modelChoice{}, err
		}
	}
	def := llm.DefaultModel(models)
	if def == "" {
		return modelChoice{}, protocol.Errorf(protocol.CodeUnknownModel, "no model is configured")
	}
	if current != "" {
		h.log.Info("a conversation's model is no longer offered; the default answers", "model", current, "default", def)
	}
	return modelChoice{id: def, replaced: current}, nil
}

// unlisted refuses an answer by model, the conversation's, which the
// catalog does not list, while the catalog says it may lack models for
// now (llm.Unlister); nil otherwise: model is no longer offered.
func (h *Hub) unlisted(model string) error {
	u, ok := h.opts.Model.(llm.Unlister)
	if !ok {
		return nil
	}
	err := u.Unlisted()
	if err == nil {
		return nil
	}
	h.log.Warn("a conversation's model is not listed while an upstream's models cannot be", "model", model, "err", err)
	reason := err.Error()
	if e := (*llm.Error)(nil); errors.As(err, &e) {
		reason = e.Message
	}
	return protocol.Errorf(protocol.CodeUnknownModel, "model %q is not available right now (%s); try again later, or pick another model",
		shownModel(model), strings.TrimSuffix(reason, "."))
}

// noModel is the refusal of a send or regenerate when the catalog lists
// no model because of upstream, an unknown model when the upstreams list
// none, else unavailable (an upstream down); err is logged.
func (h *Hub) noModel(upstream *llm.Error, err error) error {
	h.log.Warn("no model is available", "err", err)
	if upstream.Kind == llm.KindUnknownModel {
		return protocol.Errorf(protocol.CodeUnknownModel, "%s", upstream.Message)
	}
	return protocol.Errorf(protocol.CodeUnavailable, "no model is available: %s; try again later",
		strings.TrimSuffix(upstream.Message, "."))
}

var errUnavailable = protocol.Errorf(protocol.CodeUnavailable, "the server is shutting down; try again in a moment")

// ErrSessionEnded is what Send (and Regenerate) returns when the store
// refused to create the conversation, or to insert the messages, because
// the user no longer exists (persistence.ErrUnknownOwner): the account
// was deleted while the request, which passed its session check just
// before, was under way. Transports answer it (code unauthorized) as they
// answer a revoked token.
var ErrSessionEnded = protocol.Errorf(protocol.CodeUnauthorized, "this session has ended; sign in again")

func findMessage(msgs []persistence.Message, id string) (persistence.Message, bool) {
	for _, m := range msgs {
		if m.ID == id {
			return m, true
		}
	}
	return persistence.Message{}, false
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
