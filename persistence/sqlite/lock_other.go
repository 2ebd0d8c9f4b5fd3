//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package sqlite

import (
	"errors"
	"os"
)

var errWouldBlock = errors.New("locked")

// tryLock does nothing where flock is missing: two servers on one data
// directory are not detected there.
func tryLock(*os.File) error { return nil }

// unlockFile does nothing where flock is missing.
func unlockFile(*os.File) error { return nil }
