// Command fakeexpect prints, as a JSON string, the exact text the fake
// OpenAI server (chatd/llm/fakeai) streams for a configuration, so the
// browser end-to-end tests can compare what the page assembled byte for byte.
//
//	go run ./frontend/e2e/fakeexpect -tokens 60 -mode text
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"chatd/llm/fakeai"
)

func main() {
	var c fakeai.Config
	flag.IntVar(&c.Tokens, "tokens", 0, "content tokens (0: the mode's natural length)")
	mode := flag.String("mode", "text", "text | markdown | xss")
	flag.StringVar(&c.Tag, "tag", "", "tag put in front of the first token")
	flag.Parse()
	c.Mode = fakeai.Mode(*mode)
	out, err := json.Marshal(fakeai.ExpectedText(c))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeexpect:", err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}
