//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package sqlite

import (
	"syscall"
	"testing"
)

// TestUnlockWithCopiedDescriptor: a copy of the lock file's descriptor
// (what a child process forked at that moment holds until it execs) does
// not keep the directory locked once the store unlocked it.
func TestUnlockWithCopiedDescriptor(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	dup, err := syscall.Dup(int(l.f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(dup)
	if err := l.unlock(); err != nil {
		t.Fatal(err)
	}
	again, err := lockDir(dir)
	if err != nil {
		t.Fatalf("lock after unlock, with a copy of the old descriptor open: %v", err)
	}
	if err := again.unlock(); err != nil {
		t.Fatal(err)
	}
}
