// Command fakeai serves the fake OpenAI-compatible API of package
// chatd/llm/fakeai for manual runs, end-to-end tests and benchmarks.
//
//	fakeai -addr 127.0.0.1:8081 -delay 20ms -tokens 50
//
// Flags set the defaults of every response; requests override them with
// X-Fake-* headers or a [[fake ...]] marker in the last user message (see
// the package documentation of chatd/llm/fakeai). SIGINT or SIGTERM end
// the streams in progress and shut the server down.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"chatd/llm/fakeai"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "fakeai:", err)
		}
		os.Exit(1)
	}
}

// config is what the flags say.
type config struct {
	addr     string
	logLevel slog.Level
	opts     fakeai.Options
}

// parseFlags reads the command line.
func parseFlags(args []string, out io.Writer) (config, error) {
	var c config
	d := &c.opts.Defaults
	fs := flag.NewFlagSet("fakeai", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8081", "address to listen on")
	fs.IntVar(&d.Tokens, "tokens", 0, "content tokens per answer (0: the mode's natural length, 20 for text)")
	fs.DurationVar(&d.Delay, "delay", 20*time.Millisecond, "pause between tokens")
	fs.DurationVar(&d.FirstDelay, "first-delay", 0, "pause before the first token")
	mode := fs.String("mode", "text", "text | markdown | xss")
	fault := fs.String("fault", "", "fault for every request: 429, 500, hang_first, hang_mid, cut_mid, reset_mid, malformed, error_mid, end_mid, error_chunk, error_body, cut_end, hang_end, error_event, event_error, tool_call")
	fs.IntVar(&d.FaultAfter, "after", -1, "tokens before a mid-stream fault (negative: half)")
	fs.IntVar(&d.FaultTimes, "times", 0, "apply the fault to the first N requests only (0: all)")
	fs.DurationVar(&d.RetryAfter, "retry-after", 0, "Retry-After sent with a 429 or a 503")
	fs.BoolVar(&d.Split, "split", false, "split multi-byte characters across two network writes")
	stamp := fs.String("stamp", "", "first | all: prefix token content with [ts:<CLOCK_MONOTONIC ns>]")
	fs.IntVar(&d.Reasoning, "reasoning", 0, "reasoning chunks before the content of every answer")
	rkey := fs.String("reasoning-key", "reasoning_content", "reasoning_content | reasoning | mixed | both | think | think_open | parts: the delta field of reasoning chunks (both: the two, one empty; think: inline in the content; think_open: inline, only the </think> sent, as a template that opens the block; parts: the content as Mistral's list of thinking and text parts)")
	fs.IntVar(&d.Pieces, "pieces", 0, "send each content delta (a token, inline thinking with its tags) as deltas of at most this many bytes, cut between characters (0: whole)")
	fs.BoolVar(&d.Surrogates, "surrogates", false, "split characters outside the BMP across two chunks inside their UTF-16 surrogate pair")
	fs.IntVar(&d.Pings, "pings", 0, "SSE keep-alive comment lines sent before the first chunk of every answer")
	fs.IntVar(&d.Context, "context", 0, "refuse prompts of more than this many words with context_length_exceeded (0: never)")
	framing := fs.String("framing", "lf", "lf | cr | crlf | multiline | bom: line ends of the event stream (bare CR, CR LF), each JSON data line spread over several data lines, or a leading UTF-8 byte order mark")
	words := fs.String("context-words", "openai", "openai | vllm | bare | xai | together | lmstudio: the wording of a -context refusal (bare names no number; xai, together and lmstudio as those servers send it, without OpenAI's code)")
	refuse := fs.String("refuse", "", "max_tokens | max_completion_tokens | reasoning_effort | temperature | top_p | stop | stream_options: refuse requests carrying that field with HTTP 400, as a reasoning model refuses max_tokens or temperature (stream_options: as older Azure API versions do)")
	fs.IntVar(&c.opts.ContextLength, "context-length", 0, "context_length listed by /v1/models (0: none)")
	models := fs.String("models", strings.Join(fakeai.DefaultModels, ","), "comma-separated ids listed by /v1/models")
	fs.StringVar(&c.opts.APIKey, "api-key", os.Getenv("FAKEAI_API_KEY"), "require this bearer key (default $FAKEAI_API_KEY; empty: none)")
	fs.DurationVar(&c.opts.MaxHang, "max-hang", 10*time.Minute, "longest a hang fault lasts")
	fs.TextVar(&c.logLevel, "log-level", slog.LevelInfo, "debug | info | warn | error (debug logs every request)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if d.Fault, err = fakeai.ParseFault(*fault); err != nil {
		return c, fmt.Errorf("-fault %q: %w", *fault, err)
	}
	d.Mode, d.Stamp, d.ReasoningKey = fakeai.Mode(*mode), fakeai.Stamp(*stamp), fakeai.ReasoningKey(*rkey)
	if !validMode(d.Mode) || !validStamp(d.Stamp) || !validKey(d.ReasoningKey) {
		return c, fmt.Errorf("bad -mode %q, -stamp %q or -reasoning-key %q", *mode, *stamp, *rkey)
	}
	if d.Pieces < 0 {
		return c, fmt.Errorf("bad -pieces %d", d.Pieces)
	}
	if _, ok := fakeai.Refusals[*refuse]; !ok && *refuse != "" {
		return c, fmt.Errorf("bad -refuse %q", *refuse)
	}
	d.Refuse = *refuse
	if d.ContextWords, err = fakeai.ParseContextWords(*words); err != nil {
		return c, fmt.Errorf("-context-words %q: %w", *words, err)
	}
	if d.Framing, err = fakeai.ParseFraming(*framing); err != nil {
		return c, fmt.Errorf("-framing %q: %w", *framing, err)
	}
	c.opts.Models = strings.Split(*models, ",")
	return c, nil
}

func validMode(m fakeai.Mode) bool {
	return m == fakeai.ModeText || m == fakeai.ModeMarkdown || m == fakeai.ModeXSS
}

func validKey(k fakeai.ReasoningKey) bool {
	return k == fakeai.KeyReasoningContent || k == fakeai.KeyReasoning || k == fakeai.KeyMixed || k == fakeai.KeyBoth || k == fakeai.KeyThink ||
		k == fakeai.KeyThinkOpen || k == fakeai.KeyParts
}

func validStamp(s fakeai.Stamp) bool {
	return s == fakeai.StampNone || s == fakeai.StampFirst || s == fakeai.StampAll
}

// run serves until ctx ends, then ends the streams and shuts down.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: c.logLevel}))
	c.opts.Logger = log
	fake := fakeai.New(c.opts)
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	d := c.opts.Defaults
	log.Info("fakeai listening", "addr", ln.Addr().String(), "tokens", d.Tokens, "delay", d.Delay.String(),
		"mode", d.Mode, "fault", d.Fault, "auth", c.opts.APIKey != "")
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("fakeai shutting down", "active_streams", fake.ActiveStreams(), "requests", fake.Requests())
	fake.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("fakeai stopped", "requests", fake.Requests(), "aborts", fake.Aborts())
	return nil
}
