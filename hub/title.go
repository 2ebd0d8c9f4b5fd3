package hub

import (
	"context"
	"errors"
	"sync"
	"time"

	"chatd/llm"
	"chatd/persistence"
)

// titleTimeout bounds the title job of a new conversation: its store reads
// and writes and the title request (llm.Titler allows it 30s by default).
const titleTimeout = 40 * time.Second

// maybeTitle names the conversation after its first answer, if it has no
// title yet, and tells the owner's tabs. A failed or interrupted answer
// asks for no title (the upstream just failed, or the server is stopping):
// a later answer names the conversation. An answer in a conversation that
// had a title when it started (most answers) costs nothing here: no
// goroutine, no read of the store. Neither does one ending while the
// conversation's title is being asked for (one request per conversation,
// across the cluster: takeTitleJob).
func (h *Hub) maybeTitle(g *generation, final persistence.MessageUpdate) {
	if h.opts.Titler == nil || g.titled || final.Status == persistence.StatusInterrupted || final.Status == persistence.StatusError ||
		errors.Is(context.Cause(g.ctx), errDeleting) {
		return
	}
	convID := g.msg.ConversationID
	ctx, cancel := context.WithTimeout(h.base, titleTimeout)
	if !h.titles.start(convID, g.msg.OwnerID, cancel) {
		cancel()
		return
	}
	h.work.Add(1)
	go func() {
		defer h.work.Done()
		defer h.titles.end(convID)
		defer cancel()
		run, held := h.takeTitleJob(ctx, convID)
		if !run {
			return
		}
		if held {
			defer h.endTitleJob(convID)
		}
		// The latest state (persistence.WithLatest): a replica lagging
		// behind the new conversation would leave it unnamed.
		conv, err := h.opts.Store.Conversation(persistence.WithLatest(ctx), g.msg.OwnerID, g.msg.ConversationID)
		if err != nil || conv.Title != "" {
			return
		}
		g.conv.mu.Lock()
		answer := string(g.text)
		g.conv.mu.Unlock()
		title := h.askTitle(ctx, g, answer)
		if title == "" {
			return
		}
		// The user may have named it meanwhile, up to the very write: theirs
		// wins, and the store checks it in the write itself (IfTitle). Or
		// deleted it: nothing to name.
		untitled := ""
		conv, err = h.opts.Store.UpdateConversation(ctx, g.msg.OwnerID, g.msg.ConversationID,
			persistence.ConversationPatch{Title: &title, IfTitle: &untitled})
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, persistence.ErrConflict) && !errors.Is(err, persistence.ErrNotFound) {
				h.log.Warn("store conversation title", "conversation", g.msg.ConversationID, "err", err)
			}
			return
		}
		h.ConversationChanged(g.msg.OwnerID, "updated", conv)
	}()
}

// askTitle asks the Titler for the title of g's conversation in one of
// the owner's answer slots (Options.MaxAnswersPerUser), so that a user's
// title requests and answers together stay within the bound. With none
// free it asks nothing and names the conversation after the prompt's
// first words (llm.FallbackTitle); an answer of the user taking the slot
// meanwhile cuts the request short (the Titler then falls back likewise).
func (h *Hub) askTitle(ctx context.Context, g *generation, answer string) string {
	ask, cutShort := context.WithCancel(ctx)
	defer cutShort()
	slot := h.answers.takeTitle(g.msg.OwnerID, cutShort)
	if slot == nil {
		return llm.FallbackTitle(g.prompt)
	}
	defer h.answers.giveTitle(slot)
	return h.opts.Titler(ask, h.fittedModel(ask, g.msg.Model), g.prompt, answer)
}

// titleJobs are the conversations whose title is being asked for here, so
// that answers ending meanwhile ask for no other, each with its owner and
// the cancel of its context (abort, abortUser). Once a job ends, its title
// is stored (later answers see it) or it failed (the next answer may try
// again). The zero value is ready to use.
//
// A conversation or user whose deletion began here (abort, abortUser)
// gets no new job for titleTimeout: an answer that ended just before
// would otherwise start one after the abort, read the conversation before
// the store deletes it and send the user's prompt upstream. A deletion
// that then fails leaves the conversation to be named by a later answer.
type titleJobs struct {
	mu      sync.Mutex
	running map[string]titleRun
	refused map[titleKey]time.Time // until when
}

// titleKey names a conversation (conv) or a user (user) refused new jobs.
type titleKey struct{ conv, user string }

// titleRun is one title job running here.
type titleRun struct {
	owner  string
	cancel context.CancelFunc
}

// start claims the title job of convID, owned by ownerID, which cancel
// aborts; false when one already runs.
func (j *titleJobs) start(convID, ownerID string, cancel context.CancelFunc) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, ok := j.running[convID]; ok || j.refusedLocked(titleKey{conv: convID}) || j.refusedLocked(titleKey{user: ownerID}) {
		return false
	}
	if j.running == nil {
		j.running = make(map[string]titleRun)
	}
	j.running[convID] = titleRun{owner: ownerID, cancel: cancel}
	return true
}

// refusedLocked tells whether k's deletion began less than titleTimeout ago.
func (j *titleJobs) refusedLocked(k titleKey) bool {
	return time.Now().Before(j.refused[k])
}

// refuseLocked refuses k new jobs for titleTimeout, and forgets those
// refused longer ago.
func (j *titleJobs) refuseLocked(k titleKey) {
	now := time.Now()
	for old, until := range j.refused {
		if !now.Before(until) {
			delete(j.refused, old)
		}
	}
	if j.refused == nil {
		j.refused = make(map[titleKey]time.Time)
	}
	j.refused[k] = now.Add(titleTimeout)
}

// abort cancels convID's title job, if one runs here: its request
// upstream ends, and it stores nothing. The conversation is being
// deleted: it gets no new job (see titleJobs).
func (j *titleJobs) abort(convID string) {
	j.mu.Lock()
	cancel := j.running[convID].cancel
	j.refuseLocked(titleKey{conv: convID})
	j.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// abortOwned cancels convID's title job, as abort does, if one runs here
// for a conversation of ownerID.
func (j *titleJobs) abortOwned(convID, ownerID string) {
	j.mu.Lock()
	run, ok := j.running[convID]
	j.mu.Unlock()
	if ok && run.owner == ownerID {
		run.cancel()
	}
}

// abortUser cancels every title job running here in a conversation of
// userID (whose account is being deleted), as abort does, and refuses
// the user new ones (see titleJobs).
func (j *titleJobs) abortUser(userID string) {
	j.mu.Lock()
	j.refuseLocked(titleKey{user: userID})
	var cancels []context.CancelFunc
	for _, run := range j.running {
		if run.owner == userID {
			cancels = append(cancels, run.cancel)
		}
	}
	j.mu.Unlock()
	for _, cancel := range cancels {
		cancel()
	}
}

// end releases convID's title job.
func (j *titleJobs) end(convID string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.running, convID)
}

// titleJob names the cluster-wide job of titling conversation convID.
func titleJob(convID string) string { return "title." + convID }

// takeTitleJob claims the title job of convID across the cluster, so that
// an answer ending on another instance while this one asks for the title
// asks for no other (a second paid request, a second rename). run is
// false when another instance has the job; held says this instance
// claimed it (endTitleJob ends the claim). When the bus cannot say, the
// job runs here anyway, unclaimed: a second title is better than none.
func (h *Hub) takeTitleJob(ctx context.Context, convID string) (run, held bool) {
	if h.solo {
		return true, false
	}
	err := h.bus.TakeJob(ctx, titleJob(convID), titleTimeout)
	switch {
	case err == nil:
		return true, true
	case errors.Is(err, ErrLockHeld) || ctx.Err() != nil:
		return false, false
	}
	h.log.Warn("claim the title job across the cluster; titling here", "conversation", convID, "err", err)
	return true, false
}

// endTitleJob ends this instance's claim of convID's title job, after its
// title was stored or its request failed: the next answer, on any
// instance, may then try again. A claim not ended expires by itself.
func (h *Hub) endTitleJob(convID string) {
	ctx, cancel := context.WithTimeout(h.busCtx, busTimeout)
	defer cancel()
	if err := h.bus.EndJob(ctx, titleJob(convID)); err != nil && ctx.Err() == nil {
		h.log.Warn("end the title job's claim; it expires by itself", "conversation", convID, "err", err)
	}
}
