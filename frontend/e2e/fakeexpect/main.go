// Command fakeexpect prints, as a JSON string, the exact text (or, with
// -what reasoning, the reasoning) the fake OpenAI server (chatd/llm/fakeai)
// streams for a configuration, so the browser end-to-end tests can compare
// what the page assembled byte for byte.
//
//	go run ./frontend/e2e/fakeexpect -tokens 60 -mode text
//	go run ./frontend/e2e/fakeexpect -reasoning 40 -what reasoning
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
	flag.IntVar(&c.Reasoning, "reasoning", 0, "reasoning chunks before the content")
	what := flag.String("what", "text", "text | reasoning")
	flag.Parse()
	c.Mode = fakeai.Mode(*mode)
	var v string
	switch *what {
	case "text":
		v = fakeai.ExpectedText(c)
	case "reasoning":
		v = fakeai.ExpectedReasoning(c)
	default:
		fmt.Fprintln(os.Stderr, "fakeexpect: -what must be text or reasoning")
		os.Exit(2)
	}
	out, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeexpect:", err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}
