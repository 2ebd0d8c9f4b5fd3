package main

import (
	"fmt"
	"io"
)

// usageText is what chatd -h prints: chatd takes no arguments, only
// environment variables.
const usageText = `Usage: chatd
       chatd -version    print the version and exit

chatd is the chat server: REST API, live channel (WebSocket and SSE) and the
web front end, over the embedded SQLite store or MongoDB. It takes no other
arguments: it is configured by environment variables (CHATD_*, JWT_*,
OPENAI_*, MONGODB_*), listed with their defaults in README.md's
Configuration section and, commented, in deploy/chatd.env.example.
Without any, it serves on :8080 with open registration and keeps its data
in ./data.
`

// checkArgs decides from the command-line arguments (os.Args[1:]) whether
// to start: -h, -help and --help print the usage to stdout, -version and
// --version the version (currentBuild), both with exit code 0; anything
// else is refused with the usage on stderr (exit code 2). ok is
// true, and nothing is printed, when there are no arguments.
func checkArgs(args []string, stdout, stderr io.Writer) (code int, ok bool) {
	if len(args) == 0 {
		return 0, true
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprint(stdout, usageText)
		return 0, false
	case "-version", "--version":
		fmt.Fprint(stdout, currentBuild())
		return 0, false
	}
	fmt.Fprintf(stderr, "chatd: unexpected argument %q: chatd takes no arguments but -h and -version\n\n%s", args[0], usageText)
	return 2, false
}
