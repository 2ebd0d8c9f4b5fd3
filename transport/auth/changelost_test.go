package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"chatd/persistence"
)

// lostChangeStore answers ChangePassword with an error wrapping
// persistence.ErrUnavailable (a MongoDB failover cutting the connection),
// having applied the change first when apply is set: its reply was lost.
// A UserByID after that fails with readErr when set.
type lostChangeStore struct {
	AccountStore
	apply   bool
	readErr error
	changed atomic.Bool
}

func (s *lostChangeStore) ChangePassword(ctx context.Context, id, hash string, from int64) (int64, error) {
	if s.apply {
		if _, err := s.AccountStore.ChangePassword(ctx, id, hash, from); err != nil {
			return 0, err
		}
	}
	s.changed.Store(true)
	return 0, fmt.Errorf("change password of user %s: %w: connection reset", id, persistence.ErrUnavailable)
}

func (s *lostChangeStore) UserByID(ctx context.Context, id string) (persistence.User, error) {
	if s.readErr != nil && s.changed.Load() {
		return persistence.User{}, s.readErr
	}
	return s.AccountStore.UserByID(ctx, id)
}

// TestChangePasswordReplyLost: a password change whose write failed as the
// database was out of reach reads the user again. Landed (the new hash
// stored, the token version one past the request's), it answers as
// changed: 200 with a new session, whose token works, and
// OnPasswordChanged. Not landed, 503 unavailable, the password not
// changed, as before. Unknown (the read failing too), 503 whose message
// says the password may have been changed, which the client does not word
// as not changed. Before, each answered the 503 the client words "Your
// password was not changed", though the first had changed it and signed
// the tab out.
func TestChangePasswordReplyLost(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		apply    bool  // the store applies the change
		readErr  error // the store's UserByID fails after the change
		status   int
		changed  bool // the new password is the account's after
		mayHave  bool // the message says it may have been changed
		notified bool // OnPasswordChanged called
	}{
		{"landed", true, nil, http.StatusOK, true, false, true},
		{"not landed", false, nil, http.StatusServiceUnavailable, false, false, false},
		{"unknown", true, errors.New("read: connection refused"), http.StatusServiceUnavailable, true, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var notified atomic.Bool
			e := newAccountsEnv(t, AccountOptions{OnPasswordChanged: func(string, int64) { notified.Store(true) }})
			token, _ := e.signUp("lost@example.com", "the old password")
			e.accounts.store = &lostChangeStore{AccountStore: e.store, apply: tc.apply, readErr: tc.readErr}
			data, _ := json.Marshal(map[string]string{"currentPassword": "the old password", "newPassword": "the new password"})
			status, msg, fresh := e.callFrom("192.0.2.1", http.MethodPatch, "/api/auth/me", token, string(data))
			if status != tc.status {
				t.Fatalf("the change: %d %s, want %d", status, msg, tc.status)
			}
			if got := strings.Contains(msg, "may have been changed"); got != tc.mayHave {
				t.Errorf("the change's message %q; saying it may have been changed: %v, want %v", msg, got, tc.mayHave)
			}
			if notified.Load() != tc.notified {
				t.Errorf("OnPasswordChanged called: %v, want %v", notified.Load(), tc.notified)
			}
			if tc.status == http.StatusOK {
				if status, _ := e.call(http.MethodGet, "/api/auth/me", fresh, ""); status != http.StatusOK {
					t.Errorf("the new session's token: %d, want 200", status)
				}
			}
			e.accounts.store = e.store
			password := "the old password"
			if tc.changed {
				password = "the new password"
			}
			e.login("lost@example.com", password)
		})
	}
}
