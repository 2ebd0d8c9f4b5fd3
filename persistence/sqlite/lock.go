package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockFileName is the lock file Open holds in the database's directory.
const LockFileName = "chatd.lock"

// ErrLocked means another process (or another Store of this one) has the
// database's directory open.
var ErrLocked = errors.New("data directory in use by another chatd process")

// dirLock is the held lock file of a data directory.
type dirLock struct {
	f *os.File
}

// lockDir takes the exclusive lock on dir's chatd.lock (created 0600) and
// writes this process's id into it; the lock is held until unlock, or until
// the process ends, however it ends. When another holder has it, the error
// names the directory and the other process's id.
func lockDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := tryLock(f); err != nil {
		b, _ := os.ReadFile(path)
		_ = f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, fmt.Errorf("%w: %s is locked by process %s (see %s); stop it, or give this server its own CHATD_DATA_DIR",
				ErrLocked, dir, holder(b), path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// The process id only names the holder in another process's error:
	// failing to write it changes nothing else.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f}, nil
}

// holder is the process id a lock file names, or "unknown".
func holder(b []byte) string {
	if pid := strings.TrimSpace(string(b)); pid != "" {
		return pid
	}
	return "(unknown id)"
}

// unlock releases the lock. The file stays: removing it would let a third
// process lock a new file while a second still waits on the old one.
func (l *dirLock) unlock() error {
	if l == nil {
		return nil
	}
	// The lock belongs to the open file description, which copies of the
	// descriptor share (see unlockFile): release it before closing.
	return errors.Join(unlockFile(l.f), l.f.Close())
}
