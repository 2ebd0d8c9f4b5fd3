package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal: the program's side (a terminal) and
// the side a terminal emulator reads.
func openPTY(t *testing.T) (term, reader *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	t.Cleanup(func() { slave.Close() })
	return slave, master
}

func TestIsTerminal(t *testing.T) {
	t.Parallel()
	term, _ := openPTY(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	file, err := os.Create(t.TempDir() + "/log")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	for _, tt := range []struct {
		name string
		w    io.Writer
		want bool
	}{
		{"pty", term, true}, {"pipe", pw, false}, {"file", file, false},
		{"null device", null, false}, {"buffer", &bytes.Buffer{}, false},
	} {
		if got := isTerminal(tt.w); got != tt.want {
			t.Errorf("isTerminal(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestRunBanner runs the server with stdout on a terminal and on a pipe:
// the banner comes before the first JSON line on the terminal only.
func TestRunBanner(t *testing.T) {
	t.Parallel()
	term, termReader := openPTY(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close(); pw.Close() })
	for _, tt := range []struct {
		name   string
		stdout *os.File
		read   *os.File
		banner bool
	}{{"terminal", term, termReader, true}, {"pipe", pw, pr, false}} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			done, ready := make(chan error, 1), make(chan struct{})
			env := testEnv(t.TempDir())
			go func() { done <- run(ctx, envOf(env), tt.stdout, func(net.Addr) { close(ready) }) }()
			defer func() {
				select {
				case <-ready:
				case err := <-done:
					t.Fatalf("run ended before listening: %v", err)
				}
				cancel()
				if err := <-done; err != nil {
					t.Errorf("run: %v", err)
				}
			}()
			var before strings.Builder
			sc := bufio.NewScanner(tt.read)
			for sc.Scan() {
				line := strings.TrimRight(sc.Text(), "\r")
				if strings.HasPrefix(line, "{") {
					break
				}
				before.WriteString(line + "\n")
			}
			if err := sc.Err(); err != nil {
				t.Fatalf("read stdout: %v", err)
			}
			// Keep reading so that the server's later lines never block;
			// this ends when the test closes the reader.
			go func() { _, _ = io.Copy(io.Discard, tt.read) }()
			got := before.String()
			// The URL names the port CHATD_ADDR=127.0.0.1:0 was given.
			if tt.banner && !regexp.MustCompile(`(?m)^  open   http://127\.0\.0\.1:[1-9][0-9]*$`).MatchString(got) {
				t.Errorf("no banner with the bound port before the first JSON line:\n%q", got)
			}
			if !tt.banner && got != "" {
				t.Errorf("text before the first JSON line on a pipe:\n%q", got)
			}
		})
	}
}
