package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// output is one of the process's standard streams and whether a person
// reads it (a terminal).
type output struct {
	w        io.Writer
	terminal bool
}

// reportFailure says why run ended with err. A person at a terminal reads
// it on stderr as plain lines, one bad variable a line, where a JSON log
// line would show them joined by \n escapes; stdout, when programs read it
// (systemd, pm2, a file), gets the usual JSON log line. A terminal on both,
// as under make run, gets the plain text only.
func reportFailure(stdout, stderr output, err error) {
	if stderr.terminal {
		msg := strings.ReplaceAll(strings.TrimRight(err.Error(), "\n"), "\n", "\n  ")
		fmt.Fprintf(stderr.w, "\nchatd stopped: %s\n", msg)
	}
	if !stdout.terminal || !stderr.terminal {
		logger := slog.New(slog.NewJSONHandler(stdout.w, nil))
		logger.Error("chatd stopped", slog.String("err", err.Error()))
	}
}
