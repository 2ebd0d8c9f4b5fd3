package auth

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// An account deletion's first write (deleteAccount) replaces the user's
// password hash by a pending one, "!deleting:<deadline>:<hash>", in the
// same atomic write that moves the token version (Users.ChangePassword):
// the store holds the mark, so every instance sharing it refuses to sign
// the user in from then on, and no token can be issued that the deletion's
// end of live work (OnDeleting), whose snapshot came before, would miss.
// It needs no new column nor sweep change: the store's own deletion mark
// (DeleteUser, after OnDeleting) clears the hash anyway, and the sweep
// that finishes cut-off deletions picks only users DeleteUser marked, so
// it never removes data while OnDeleting runs. A deletion that fails before
// DeleteUser's mark puts the hash back (restorePending); one cut off by
// the process's end leaves the pending hash, which stops holding past its
// deadline (DeleteTimeout and RequestTimeout after the write, by when the
// deletion's goroutine has ended on any instance whose clock is within
// RequestTimeout of the writer's): the account then signs in with its
// password again, as after any deletion that failed before the mark.
const pendingPrefix = "!deleting:"

// pendingHash returns the pending form of hash (its live form, if it is
// pending already) that holds until deadline.
func pendingHash(hash string, deadline time.Time) string {
	return fmt.Sprintf("%s%d:%s", pendingPrefix, deadline.Unix(), innerHash(hash))
}

// innerHash returns the password hash a pending hash wraps, or hash itself.
func innerHash(hash string) string {
	rest, ok := strings.CutPrefix(hash, pendingPrefix)
	if !ok {
		return hash
	}
	_, inner, _ := strings.Cut(rest, ":")
	return inner
}

// liveHash returns the hash a password is checked against at now: "" (no
// password matches: the dummy hash is compared) while a deletion is
// pending, the wrapped hash once its deadline passed, else hash itself. A
// malformed deadline counts as pending.
func liveHash(hash string, now time.Time) string {
	rest, ok := strings.CutPrefix(hash, pendingPrefix)
	if !ok {
		return hash
	}
	deadline, inner, _ := strings.Cut(rest, ":")
	sec, err := strconv.ParseInt(deadline, 10, 64)
	if err != nil || now.Before(time.Unix(sec, 0)) {
		return ""
	}
	return inner
}
