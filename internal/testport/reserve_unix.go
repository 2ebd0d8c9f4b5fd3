//go:build unix

package testport

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// reservations is the file whose byte p a process locks (a POSIX record
// lock) while it holds port p. The kernel drops a process's locks when it
// exits, however it ends, so a reservation never outlives its process.
// The file stays open for the process's lifetime: closing any descriptor
// of it would drop every lock the process holds on it.
var reservations = sync.OnceValue(func() *os.File {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("chatd-testport-%d", os.Getuid()))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil // no reservations across processes; ports are still checked free
	}
	return f
})

// reserve locks port p's byte for this process; false when another process
// holds it (any other failure reserves nothing and answers true: the port
// is still checked free). A process holding it already gets true again;
// given keeps it from handing the port out twice.
func reserve(p int) bool {
	f := reservations()
	if f == nil {
		return true
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: int64(p), Len: 1}
	err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk)
	return !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES)
}

// release drops this process's reservation of port p.
func release(p int) {
	if f := reservations(); f != nil {
		lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: 0, Start: int64(p), Len: 1}
		_ = unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk)
	}
}
