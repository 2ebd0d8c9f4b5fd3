package limits

import (
	"context"
	"log/slog"
	"time"

	"chatd/internal/lograte"
)

// Shared holds per-user limits for every instance of a cluster together
// (hub/natsbus implements it over NATS JetStream KV; the app injects it).
// Users consults it after its own per-process check, so the in-process
// path stays as fast as without it. A crashed instance's connections must
// not stay counted forever (the implementation ties them to the
// instance's lease). Methods are safe for concurrent use.
type Shared interface {
	// AcquireConn counts one more open connection of the user unless the
	// cluster already holds max of them. After an error the connection is
	// admitted anyway (see sharedLimits) and later released with
	// ReleaseConn like any other: the implementation counts it as open.
	AcquireConn(ctx context.Context, userID string, max int) (bool, error)
	// ReleaseConn forgets one connection counted by AcquireConn on this instance.
	ReleaseConn(ctx context.Context, userID string) error
	// TakeSend spends one of the user's sends: perMinute per minute across
	// the cluster, with a burst of perMinute/4 (as the per-process bucket).
	TakeSend(ctx context.Context, userID string, perMinute int) (bool, error)
	// GiveSend gives back one send that TakeSend spent (it answered true
	// without an error) for a request that then did not happen (another
	// budget refused it, or the hub refused or failed it): the bucket
	// holds what it would without that take, never more than its burst.
	// It is called at most once per such take; after an error the send
	// may stay spent.
	GiveSend(ctx context.Context, userID string, perMinute int) error
	// GiveBudget gives back one event of the named budget that TakeBudget
	// spent, as GiveSend does for sends.
	GiveBudget(ctx context.Context, budget, userID string, perMinute int) error
	Budgets
}

// Budgets holds per-user budgets of other requests (BudgetConversations,
// and transport/api's searches) for every instance of a cluster together.
type Budgets interface {
	// TakeBudget spends one of the user's events of the named budget:
	// perMinute per minute across the cluster, with a burst of perMinute
	// (as the per-process buckets); when none is left it says how long
	// until there is one.
	TakeBudget(ctx context.Context, budget, userID string, perMinute int) (wait time.Duration, ok bool, err error)
}

// DefaultSharedTimeout bounds one call to a cluster's shared limits
// (Shared, Budgets, and transport/auth's SharedWindows) unless configured.
const DefaultSharedTimeout = 2 * time.Second

// BudgetConversations names the budget of new conversations.
const BudgetConversations = "conversations"

// BudgetRefusedSends names the budget of refused sends that give their
// send back (Options.RefusedSendsPerMinute).
const BudgetRefusedSends = "refused-sends"

// TakeBudget calls b with a timeout; when b cannot be reached it lets the
// request through (the per-process budget still holds) and logs to log
// (give one from lograte.Logger: through an outage every request fails
// alike). A nil b lets every request through.
func TakeBudget(b Budgets, timeout time.Duration, log *slog.Logger, budget, userID string, perMinute int) (time.Duration, bool) {
	wait, ok, _ := takeBudget(b, timeout, log, budget, userID, perMinute)
	return wait, ok
}

// BudgetGiver is Budgets that gives back what it took (Shared is one).
type BudgetGiver interface {
	Budgets
	// GiveBudget gives back one event of the named budget that
	// TakeBudget spent, as Shared.GiveSend does for sends.
	GiveBudget(ctx context.Context, budget, userID string, perMinute int) error
}

// SpendBudget is TakeBudget for a request that may yet be refused: give
// gives back the event b spent for it (GiveBudget within timeout; a
// failure is logged and leaves it spent). give does nothing when b is
// nil, could not be reached, or refused the request. Call it at most once.
func SpendBudget(b BudgetGiver, timeout time.Duration, log *slog.Logger, budget, userID string, perMinute int) (wait time.Duration, ok bool, give func()) {
	if b == nil {
		return 0, true, func() {}
	}
	wait, ok, taken := takeBudget(b, timeout, log, budget, userID, perMinute)
	if !taken {
		return wait, ok, func() {}
	}
	return wait, ok, func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := b.GiveBudget(ctx, budget, userID, perMinute); err != nil {
			log.Warn("give back a cluster-wide budget", slog.String("budget", budget), slog.Any("err", err))
		}
	}
}

// takeBudget is TakeBudget also saying whether b spent an event (not when
// it could not be reached).
func takeBudget(b Budgets, timeout time.Duration, log *slog.Logger, budget, userID string, perMinute int) (wait time.Duration, ok, taken bool) {
	if b == nil {
		return 0, true, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	wait, ok, err := b.TakeBudget(ctx, budget, userID, perMinute)
	if err != nil {
		log.Warn("cluster-wide budget unavailable; per-process limit only", slog.String("budget", budget), slog.Any("err", err))
		return 0, true, false
	}
	return wait, ok, ok
}

// sharedLimits calls a Shared backend with a timeout. When the backend
// cannot be reached it lets the request through (the per-process limits
// still hold) and logs: an outage of the bus must not lock users out.
// Its log says each failure once per lograte.DefaultEvery (the first,
// then one with the count left out): through an outage every request
// fails alike, two per connection opened and closed.
type sharedLimits struct {
	s                      Shared
	timeout                time.Duration
	sendsPerMinute         int
	conversationsPerMinute int
	refusedPerMinute       int
	log                    *slog.Logger
}

func newSharedLimits(opts Options, sendsPerMinute, conversationsPerMinute, refusedPerMinute int) *sharedLimits {
	if opts.Shared == nil {
		return nil
	}
	sl := &sharedLimits{s: opts.Shared, timeout: opts.SharedTimeout, sendsPerMinute: sendsPerMinute,
		conversationsPerMinute: conversationsPerMinute, refusedPerMinute: refusedPerMinute, log: opts.Logger}
	if sl.timeout <= 0 {
		sl.timeout = DefaultSharedTimeout
	}
	if sl.log == nil {
		sl.log = slog.Default()
	}
	sl.log = lograte.Logger(sl.log)
	return sl
}

// call runs fn within the backend's timeout and logs a failure as what
// (a warning, with attrs and the error), which it returns.
func (sl *sharedLimits) call(what string, fn func(context.Context) error, attrs ...slog.Attr) error {
	ctx, cancel := context.WithTimeout(context.Background(), sl.timeout)
	defer cancel()
	err := fn(ctx)
	if err != nil {
		sl.log.LogAttrs(ctx, slog.LevelWarn, what, append(attrs, slog.Any("err", err))...)
	}
	return err
}

func (sl *sharedLimits) acquireConn(userID string, max int) bool {
	if sl == nil {
		return true
	}
	ok := true
	err := sl.call("cluster-wide connection limit unavailable; per-process limit only", func(ctx context.Context) (err error) {
		ok, err = sl.s.AcquireConn(ctx, userID, max)
		return err
	})
	return ok || err != nil
}

func (sl *sharedLimits) releaseConn(userID string) {
	if sl == nil {
		return
	}
	_ = sl.call("release a cluster-wide connection count", func(ctx context.Context) error {
		return sl.s.ReleaseConn(ctx, userID)
	})
}

// takeSend spends one of the user's sends on the cluster: ok says whether
// the send may go on, taken whether the cluster spent a token for it (not
// when it could not be reached), which giveSend may then give back.
func (sl *sharedLimits) takeSend(userID string) (ok, taken bool) {
	if sl == nil {
		return true, false
	}
	err := sl.call("cluster-wide send limit unavailable; per-process limit only", func(ctx context.Context) (err error) {
		ok, err = sl.s.TakeSend(ctx, userID, sl.sendsPerMinute)
		return err
	})
	if err != nil {
		return true, false
	}
	return ok, ok
}

// giveSend gives back a send takeSend took; a failure leaves it spent.
func (sl *sharedLimits) giveSend(userID string) {
	_ = sl.call("give back a cluster-wide send", func(ctx context.Context) error {
		return sl.s.GiveSend(ctx, userID, sl.sendsPerMinute)
	})
}

// takeConversation spends one of the user's new conversations on the
// cluster, as takeSend does for sends, or says how long to wait.
func (sl *sharedLimits) takeConversation(userID string) (wait time.Duration, ok, taken bool) {
	if sl == nil {
		return 0, true, false
	}
	return takeBudget(sl.s, sl.timeout, sl.log, BudgetConversations, userID, sl.conversationsPerMinute)
}

// giveConversation gives back a new conversation takeConversation took; a
// failure leaves it spent.
func (sl *sharedLimits) giveConversation(userID string) {
	_ = sl.call("give back a cluster-wide budget", func(ctx context.Context) error {
		return sl.s.GiveBudget(ctx, BudgetConversations, userID, sl.conversationsPerMinute)
	}, slog.String("budget", BudgetConversations))
}

// takeRefused spends one of the user's refused sends on the cluster; an
// unreachable cluster lets it through (this process's budget still holds).
func (sl *sharedLimits) takeRefused(userID string) bool {
	if sl == nil {
		return true
	}
	_, ok := TakeBudget(sl.s, sl.timeout, sl.log, BudgetRefusedSends, userID, sl.refusedPerMinute)
	return ok
}
