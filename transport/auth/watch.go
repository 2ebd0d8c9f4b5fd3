package auth

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"chatd/persistence"
)

// DefaultWatchInterval is how often Watch checks the connected accounts.
const DefaultWatchInterval = time.Minute

// WatchOptions configure Watch. Users, Connected and Close are required.
type WatchOptions struct {
	// Users finds accounts (the store).
	Users UserFinder
	// Connected lists the users with open live connections.
	Connected func() []string
	// Close ends every live connection of a user, as logout does (4401).
	Close func(userID string)
	// CloseRevoked, when set, ends the live connections of a user opened
	// with a token version below the user's current one (a logout this
	// process did not hear of), and returns how many it ended.
	CloseRevoked func(userID string, tokenVersion int64) int
	// Interval is how often every connected user is checked; it defaults
	// to DefaultWatchInterval.
	Interval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Watch closes the live connections of accounts that no longer exist
// (deleted or disabled in the database, possibly by another process or an
// operator), and with CloseRevoked those of sessions revoked since they
// opened (a logout on another instance whose event was lost), checking
// each connected user every Interval, until ctx ends.
// Requests are refused at once anyway (every request and every WebSocket
// send authenticates again); Watch ends the streams that only listen.
func Watch(ctx context.Context, opts WatchOptions) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultWatchInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	t := time.NewTicker(opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			checkAccounts(ctx, opts)
		}
	}
}

// checkAccounts closes the connections of each connected user whose
// account is gone, and those of revoked sessions. A store failure closes
// nothing.
func checkAccounts(ctx context.Context, opts WatchOptions) {
	for _, id := range opts.Connected() {
		u, err := opts.Users.UserByID(ctx, id)
		switch {
		case err == nil && opts.CloseRevoked != nil:
			if n := opts.CloseRevoked(id, u.TokenVersion); n > 0 {
				opts.Logger.Info("session revoked: closed its live connections", slog.String("user_id", id), slog.Int("connections", n))
			}
		case errors.Is(err, persistence.ErrNotFound):
			opts.Logger.Info("account gone: closing its live connections", slog.String("user_id", id))
			opts.Close(id)
		case err != nil && ctx.Err() == nil:
			opts.Logger.Warn("check account", slog.String("user_id", id), slog.String("err", err.Error()))
			return
		}
	}
}
