package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"chatd/persistence"
)

func userTests() []storeTest {
	return []storeTest{
		{"CreateFillsFields", testUserCreate},
		{"DuplicateEmail", testUserDuplicateEmail},
		{"ConcurrentDuplicateEmail", testUserConcurrentDuplicate},
		{"Unknown", testUserUnknown},
		{"BumpTokenVersion", testUserBumpTokenVersion},
		{"ChangePassword", testUserChangePassword},
		{"RehashPassword", testUserRehashPassword},
		{"TokenVersionAlone", testUserTokenVersion},
		{"Delete", testUserDelete},
		{"DeleteUnknown", testUserDeleteUnknown},
		{"DeleteRacingWrites", testUserDeleteRacingWrites},
		{"DeleteCutOff", testUserDeleteCutOff},
		{"DeleteFinishTwice", testUserDeleteFinishTwice},
		{"MarkDeleting", testUserMarkDeleting},
		{"Ping", testPing},
	}
}

func testUserCreate(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	before := time.Now()
	u := persistence.User{Email: "ada@example.test", Name: "Ada Lovelace", PasswordHash: "$2a$10$hash"}
	noErr(t, "CreateUser", s.CreateUser(ctx, &u))
	after := time.Now()
	if !persistence.ValidID(u.ID) {
		t.Fatalf("CreateUser filled ID %q, want a valid id", u.ID)
	}
	checkRecent(t, "CreatedAt", u.CreatedAt, before, after)
	checkRecent(t, "UpdatedAt", u.UpdatedAt, before, after)
	if u.TokenVersion != 0 {
		t.Fatalf("TokenVersion = %d, want 0", u.TokenVersion)
	}

	byID, err := s.UserByID(ctx, u.ID)
	noErr(t, "UserByID", err)
	sameUser(t, byID, u)
	byEmail, err := s.UserByEmail(ctx, "ada@example.test")
	noErr(t, "UserByEmail", err)
	sameUser(t, byEmail, u)

	other := mkUser(t, s, "grace")
	if other.ID == u.ID {
		t.Fatalf("two users got the same id %s", u.ID)
	}
}

func testUserDuplicateEmail(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	first := persistence.User{Email: "dup@example.test", Name: "First", PasswordHash: "h1"}
	noErr(t, "CreateUser", s.CreateUser(ctx, &first))
	second := persistence.User{Email: "dup@example.test", Name: "Second", PasswordHash: "h2"}
	wantErr(t, "CreateUser with a taken email", s.CreateUser(ctx, &second), persistence.ErrDuplicate)

	got, err := s.UserByEmail(ctx, "dup@example.test")
	noErr(t, "UserByEmail", err)
	sameUser(t, got, first)

	// A different email is fine afterwards.
	third := persistence.User{Email: "dup2@example.test", Name: "Third", PasswordHash: "h3"}
	noErr(t, "CreateUser with a free email", s.CreateUser(ctx, &third))
}

func testUserConcurrentDuplicate(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.CreateUser(ctx, &persistence.User{Email: "race@example.test", Name: "racer", PasswordHash: "h"})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, persistence.ErrDuplicate):
			t.Fatalf("concurrent CreateUser: unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent creations of one email succeeded, want exactly 1", ok)
	}
}

func testUserUnknown(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "someone")
	for _, id := range badIDs() {
		_, err := s.UserByID(ctx, id)
		wantErr(t, "UserByID("+id+")", err, persistence.ErrNotFound)
		_, err = s.BumpTokenVersion(ctx, id)
		wantErr(t, "BumpTokenVersion("+id+")", err, persistence.ErrNotFound)
		_, err = s.ChangePassword(ctx, id, "hash-of-a-stranger", 0)
		wantErr(t, "ChangePassword("+id+")", err, persistence.ErrNotFound)
	}
	_, err := s.UserByEmail(ctx, "nobody@example.test")
	wantErr(t, "UserByEmail(unknown)", err, persistence.ErrNotFound)
	got, err := s.UserByID(ctx, u.ID)
	noErr(t, "UserByID", err)
	sameUser(t, got, u)
}

func testUserBumpTokenVersion(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u := mkUser(t, s, "bumper")
	other := mkUser(t, s, "bystander")
	for want := int64(1); want <= 3; want++ {
		got, err := s.BumpTokenVersion(ctx, u.ID)
		noErr(t, "BumpTokenVersion", err)
		if got != want {
			t.Fatalf("BumpTokenVersion = %d, want %d", got, want)
		}
	}
	got, err := s.UserByID(ctx, u.ID)
	noErr(t, "UserByID", err)
	if got.TokenVersion != 3 {
		t.Fatalf("stored TokenVersion = %d, want 3", got.TokenVersion)
	}
	if got.Email != u.Email || got.Name != u.Name || got.PasswordHash != u.PasswordHash {
		t.Fatalf("BumpTokenVersion changed other fields: %+v, was %+v", got, u)
	}
	o, err := s.UserByID(ctx, other.ID)
	noErr(t, "UserByID(other)", err)
	if o.TokenVersion != 0 {
		t.Fatalf("another user's TokenVersion = %d, want 0", o.TokenVersion)
	}
}

// testUserChangePassword: each change stores the new hash, takes the next
// token version (the one returned) and moves UpdatedAt forward; bumps in
// between continue the same sequence; nothing else of the user, and
// nothing of another user, changes.
func testUserChangePassword(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u, other := mkUser(t, s, "changer"), mkUser(t, s, "bystander")
	steps := []struct {
		name string
		bump bool   // BumpTokenVersion instead of ChangePassword
		hash string // the new hash, for ChangePassword
		want int64
	}{
		{"change", false, "hash-2", 1},
		{"bump after a change", true, "", 2},
		{"change after a bump", false, "hash-3", 3},
		{"change to the same hash", false, "hash-3", 4},
	}
	prev := u
	for _, st := range steps {
		before := time.Now()
		var got int64
		var err error
		if st.bump {
			got, err = s.BumpTokenVersion(ctx, u.ID)
		} else {
			got, err = s.ChangePassword(ctx, u.ID, st.hash, prev.TokenVersion)
		}
		after := time.Now()
		noErr(t, st.name, err)
		if got != st.want {
			t.Fatalf("%s returned token version %d, want %d", st.name, got, st.want)
		}
		stored, err := s.UserByID(ctx, u.ID)
		noErr(t, "UserByID after "+st.name, err)
		want := prev
		want.TokenVersion = st.want
		want.UpdatedAt = stored.UpdatedAt // a bump may or may not move it
		if !st.bump {
			want.PasswordHash = st.hash
			if !stored.UpdatedAt.After(prev.UpdatedAt) {
				t.Fatalf("%s: UpdatedAt = %v, not after %v", st.name, stored.UpdatedAt, prev.UpdatedAt)
			}
			checkRecent(t, st.name+": UpdatedAt", stored.UpdatedAt, before, after)
		}
		sameUser(t, stored, want) // email, name and CreatedAt as created
		if v, err := tokenVersion(ctx, t, s, u.ID); err != nil || v != st.want {
			t.Fatalf("UserTokenVersion after %s = %d, %v; want %d", st.name, v, err, st.want)
		}
		prev = stored
	}
	_, err := s.ChangePassword(ctx, u.ID, "hash-from-a-stale-version", prev.TokenVersion-1)
	wantErr(t, "ChangePassword from a version changed meanwhile", err, persistence.ErrConflict)
	stored, err := s.UserByID(ctx, u.ID)
	noErr(t, "UserByID after a conflict", err)
	sameUser(t, stored, prev) // nothing written
	o, err := s.UserByID(ctx, other.ID)
	noErr(t, "UserByID(other)", err)
	sameUser(t, o, other)
}

// testUserRehashPassword: a rehash replaces the hash it was given, and
// nothing else (token version, UpdatedAt); one from a hash changed
// meanwhile is ErrConflict and writes nothing; an unknown or malformed id
// is ErrNotFound; another user is untouched.
func testUserRehashPassword(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	r, ok := s.(persistence.PasswordRehasher)
	if !ok {
		t.Fatalf("%T does not implement persistence.PasswordRehasher", s)
	}
	u, other := mkUser(t, s, "rehashed"), mkUser(t, s, "bystander")
	noErr(t, "RehashPassword", r.RehashPassword(ctx, u.ID, u.PasswordHash, "hash-at-a-higher-cost"))
	stored, err := s.UserByID(ctx, u.ID)
	noErr(t, "UserByID after a rehash", err)
	want := u
	want.PasswordHash = "hash-at-a-higher-cost"
	sameUser(t, stored, want)

	wantErr(t, "RehashPassword from a hash changed meanwhile",
		r.RehashPassword(ctx, u.ID, u.PasswordHash, "stale"), persistence.ErrConflict)
	stored, err = s.UserByID(ctx, u.ID)
	noErr(t, "UserByID after a conflict", err)
	sameUser(t, stored, want)
	for _, id := range badIDs() {
		wantErr(t, "RehashPassword("+id+")", r.RehashPassword(ctx, id, "", "x"), persistence.ErrNotFound)
	}
	o, err := s.UserByID(ctx, other.ID)
	noErr(t, "UserByID(other)", err)
	sameUser(t, o, other)
}

func testPing(t *testing.T, s persistence.Store) {
	noErr(t, "Ping", s.Ping(testCtx(t)))
}

// tokenVersion is persistence.UserTokenVersion, the door the session
// recheck uses, checked against the store's own TokenVersion when it has
// one (the SQLite store).
func tokenVersion(ctx context.Context, t *testing.T, s persistence.Store, id string) (int64, error) {
	t.Helper()
	v, err := persistence.UserTokenVersion(ctx, s, id)
	if tr, ok := s.(persistence.TokenVersionReader); ok {
		v2, err2 := tr.TokenVersion(ctx, id)
		if v != v2 || (err == nil) != (err2 == nil) {
			t.Fatalf("UserTokenVersion = %d, %v; the store's TokenVersion = %d, %v", v, err, v2, err2)
		}
	}
	return v, err
}

// testUserTokenVersion: the token version read alone follows every bump,
// is the user's own, and an unknown or malformed id is ErrNotFound.
func testUserTokenVersion(t *testing.T, s persistence.Store) {
	ctx := testCtx(t)
	u, other := mkUser(t, s, "versioned"), mkUser(t, s, "bystander")
	for want := int64(0); want <= 2; want++ {
		if want > 0 {
			_, err := s.BumpTokenVersion(ctx, u.ID)
			noErr(t, "BumpTokenVersion", err)
		}
		got, err := tokenVersion(ctx, t, s, u.ID)
		noErr(t, "UserTokenVersion", err)
		if got != want {
			t.Fatalf("UserTokenVersion after %d bumps = %d", want, got)
		}
	}
	if got, err := tokenVersion(ctx, t, s, other.ID); err != nil || got != 0 {
		t.Fatalf("another user's UserTokenVersion = %d, %v; want 0", got, err)
	}
	for _, id := range badIDs() {
		_, err := tokenVersion(ctx, t, s, id)
		wantErr(t, "UserTokenVersion("+id+")", err, persistence.ErrNotFound)
	}
}
