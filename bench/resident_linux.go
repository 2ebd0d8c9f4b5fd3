package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// residentShare says how much of the SQLite store's files in dir the
// operating system's page cache holds (mincore), as "chatd.db 97%, ...":
// an operation that touches a page outside it waits for the disk.
func residentShare(dir string) string {
	var parts []string
	for _, name := range []string{"chatd.db", "chatd-search.db"} {
		in, size, err := resident(filepath.Join(dir, name))
		if err != nil {
			parts = append(parts, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		if size > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f%% of %d MB", name, 100*float64(in)/float64(size), size>>20))
		}
	}
	return strings.Join(parts, ", ")
}

// resident returns how many bytes of the file at path are in the page
// cache, and its size.
func resident(path string) (in, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return 0, 0, err
	}
	size = st.Size()
	m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, size, fmt.Errorf("mmap: %w", err)
	}
	defer unix.Munmap(m)
	page := int64(os.Getpagesize())
	vec := make([]byte, (size+page-1)/page)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		return 0, size, fmt.Errorf("mincore: %w", e)
	}
	for _, v := range vec {
		if v&1 != 0 {
			in += page
		}
	}
	return min(in, size), size, nil
}

// diskReads returns how many bytes this process has had read from storage
// (read_bytes in /proc/self/io: reads the page cache did not answer), or
// -1 when unknown.
func diskReads() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("read_bytes: ")); ok {
			n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}
