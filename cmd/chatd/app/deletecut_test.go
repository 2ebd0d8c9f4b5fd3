package app

import (
	"context"
	"net/http"
	"testing"

	"chatd/persistence"
)

// cutStore is a store whose account deletions are cut off (their minute,
// a shutdown, a crash) right after the user is marked as being deleted.
type cutStore struct{ persistence.Store }

func (s cutStore) DeleteUser(ctx context.Context, id string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	return s.Store.DeleteUser(persistence.WithDeleteHook(ctx, func(step string) {
		if step == persistence.DeleteStepMarked {
			cancel()
		}
	}), id)
}

// TestDeleteAccountCutOff: an account deletion cut off after its mark, on
// either store, answers 202 deleting; the account then neither signs in
// nor keeps a session, and its email stays taken, never a live account
// with part of its data; once the store finishes the deletion
// (FinishDeletions, which the store runs on its own) nothing of it is
// left and the email is free again.
func TestDeleteAccountCutOff(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"sqlite", "mongo"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{mongo: name == "mongo", tweak: func(c *Config) { c.Store = cutStore{c.Store} }})
			creds := map[string]string{"email": "cut-" + name + "@example.com", "password": "correct horse battery", "name": "Cut"}
			var reg struct {
				Token string `json:"token"`
				User  struct {
					ID string `json:"id"`
				} `json:"user"`
			}
			e.rest(t, "", http.MethodPost, "/api/auth/register", creds, http.StatusCreated, &reg)
			u := user{ID: reg.User.ID, Token: reg.Token}
			c := e.dial(t, u)
			first := c.start("a finished answer")
			c.until(isDone(first.MessageID))

			var status struct {
				Status string `json:"status"`
			}
			e.rest(t, u.Token, http.MethodDelete, "/api/auth/me", map[string]string{"password": creds["password"]}, http.StatusAccepted, &status)
			if status.Status != "deleting" {
				t.Fatalf("delete cut off: status %q, want deleting", status.Status)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if err := e.app.accounts.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			if got := c.closeStatus(); got != 4401 {
				t.Fatalf("the account's socket: close status %d, want 4401", got)
			}
			e.rest(t, "", http.MethodPost, "/api/auth/login", map[string]string{"email": creds["email"], "password": creds["password"]}, http.StatusUnauthorized, nil)
			e.rest(t, u.Token, http.MethodGet, "/api/auth/me", nil, http.StatusUnauthorized, nil)
			e.rest(t, "", http.MethodPost, "/api/auth/register", creds, http.StatusConflict, nil)

			if _, err := e.store.FinishDeletions(ctx); err != nil {
				t.Fatal(err)
			}
			checkGone(ctx, t, e.store, u.ID, []frame{first})
			e.rest(t, "", http.MethodPost, "/api/auth/register", creds, http.StatusCreated, nil)
		})
	}
}
