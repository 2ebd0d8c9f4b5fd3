// Package fakeai is a real OpenAI-compatible HTTP server for tests and
// benchmarks: it streams genuine server-sent events over TCP, the way the
// OpenAI API does, and injects faults on demand.
//
// # Use
//
//	srv := fakeai.Start(t, fakeai.Options{})            // in tests; srv.URL ends in /v1
//	ts := httptest.NewServer(fakeai.New(fakeai.Options{})) // or serve it yourself
//	go run ./cmd/fakeai -addr :8081 -delay 20ms           // as a process
//
// Endpoints: POST /v1/chat/completions (streaming and not), GET /v1/models,
// GET /healthz. The same paths without the /v1 prefix work too, and so
// does Azure OpenAI's POST /openai/deployments/{deployment}/chat/completions
// (Recorded.Path and Recorded.Deployment say what the request named).
// Options.ContextLength is listed as each model's context_length, and
// Options.ModelsDelay (or SetModelsDelay) makes the model list slow, and
// SetModelsStatus makes it fail with an HTTP status (an upstream starting).
//
// # Stream format
//
// A streaming response (request "stream": true) is:
//
//	data: {"id":"chatcmpl-fake1","object":"chat.completion.chunk","created":1700000000,"model":"m","system_fingerprint":"fp_fakeai","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"x_fake_ts":123}
//
//	data: {..."choices":[{"index":0,"delta":{"content":"Hello "},"logprobs":null,"finish_reason":null}],"x_fake_ts":124}
//
//	... one chunk per token ...
//
//	data: {..."choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"x_fake_ts":125}
//
//	data: {..."choices":[],"usage":{"prompt_tokens":3,"completion_tokens":20,"total_tokens":23},"x_fake_ts":126}
//
//	data: [DONE]
//
// The usage chunk is sent only when the request has
// "stream_options": {"include_usage": true}; the other chunks then carry
// "usage": null, as OpenAI's do. finish_reason is "length" when the
// request's max_tokens (or max_completion_tokens) cut the answer short.
// As with a reasoning model, reasoning chunks spend that budget first and
// the answer gets what is left: a budget no larger than the reasoning
// leaves no answer at all (and inline thinking without its </think>).
// The request's reasoning_effort is recorded (Recorded.ReasoningEffort),
// not acted on.
// prompt_tokens is the number of whitespace-separated words in all
// messages (markers left out); completion_tokens the number of content
// and reasoning chunks.
//
// Every chunk has an extra field "x_fake_ts": the CLOCK_MONOTONIC time in
// nanoseconds at which it was encoded (see MonotonicNanos), comparable with
// a reading of the same clock in another process on the host.
//
// # Configuration
//
// Each request behaves as Options.Defaults says, overridden by X-Fake-*
// request headers, overridden in turn by a marker anywhere in the last user
// message:
//
//	[[fake tokens=500 delay=5ms fault=hang_mid after=10]]
//
// Keys (header X-Fake-<Key> with "_" written "-", e.g. X-Fake-Retry-After):
//
//	tokens=N        content tokens (Config.Tokens); 0: the mode's natural length
//	delay=D         pause between tokens, a Go duration ("20ms")
//	first_delay=D   pause before the first token
//	mode=M          text | markdown | xss
//	fault=F         429 | 500 | any status 400-599 | hang_first | hang_mid |
//	                cut_mid | reset_mid | malformed | error_mid | end_mid |
//	                error_chunk | error_body | cut_end | quota | empty_mid |
//	                error_event | event_error | hang_end | reset_end |
//	                malformed_end | tool_call | none
//	after=K         content tokens sent before a mid-stream fault (negative: half)
//	times=N         the fault hits only the first N requests carrying the same
//	                overrides (the same marker text and X-Fake-* headers);
//	                later ones succeed, e.g. "fault=429 times=1" for a retry test
//	retry_after=S   Retry-After for 429 and 503: seconds ("2") or a duration
//	                ("1500ms"); also sent as retry-after-ms
//	retry_after_form=F  both | seconds | date | ms: send the wait as both
//	                headers (default), as Retry-After in seconds only, as
//	                Retry-After as an HTTP date only, or as retry-after-ms only
//	split=BOOL      send every token holding a multi-byte UTF-8 character in two
//	                network writes (two flushes) that cut the character in two
//	tag=WORD        put "WORD " in front of the first token's content
//	stamp=S         first | all: put "[ts:<MonotonicNanos>] " in front of the
//	                content of the first or every token
//	reasoning=N     send N reasoning chunks (see ReasoningTokens) before the
//	                content, Delay apart, as a reasoning model does
//	reasoning_key=K reasoning_content (default) | reasoning | mixed | both |
//	                think | think_open | parts: the delta field of
//	                reasoning chunks (mixed alternates the two; both sends
//	                both, the text in one and "" in the other, alternating
//	                which; think sends them inline in the content, between
//	                "<think>\n" and "</think>\n\n", see ThinkText;
//	                think_open the same without "<think>\n", only the
//	                "</think>\n\n" after the thinking, as models whose
//	                prompt template opens the block (DeepSeek-R1, QwQ) send
//	                it, see KeyThinkOpen; parts sends the content as
//	                Mistral's list of parts: thinking parts, then text
//	                parts, see KeyParts)
//	pieces=N        send each content delta (a token; with reasoning_key=think
//	                or think_open a chunk of the inline thinking, tags
//	                included) as deltas of at most N bytes, cut between
//	                characters, written at
//	                once: "[[fake reasoning=9 reasoning_key=think pieces=3]]"
//	                streams "<th", "ink", ">\nL", "et ", ..., the close
//	                tag cut likewise, as servers that stream by bytes or
//	                small tokens cut the tags (see Pieces); the content as
//	                a whole is unchanged
//	events=BOOL     put an "event: message" line before every data line
//	framing=F       lf (default) | cr | crlf | multiline | bom: end every
//	                line with a bare CR or with CR LF, spread each JSON
//	                data line over several data lines of its event (one
//	                per member), or start the body with a UTF-8 byte order
//	                mark: shapes the SSE specification allows (Framing)
//	surrogates=BOOL send each token holding a character outside the BMP as
//	                two chunks cut inside its UTF-16 surrogate pair: one
//	                ends with the escape \ud83d, the next starts with \ude42
//	context=N       refuse a prompt of more than N prompt tokens with
//	                HTTP 400 and code context_length_exceeded, as OpenAI does
//	context_words=W openai (default) | vllm | bare | xai | together |
//	                lmstudio: the refusal's message, OpenAI's ("maximum
//	                context length is N tokens. However, your messages
//	                resulted in P tokens"), vLLM's and OpenAI's older ("...
//	                you requested T tokens (P in the messages, C in the
//	                completion)"; P+C above N is refused, as vLLM counts
//	                max_tokens into the window), one naming no number, or
//	                xAI's, Together AI's (and SGLang's) or LM Studio's,
//	                each in its server's body and without the code
//	                (ContextWords)
//	end_delay=D     pause after [DONE] before ending the body (sending the
//	                last chunk of its chunked encoding), as a proxy may
//	refuse=F        max_tokens | max_completion_tokens | reasoning_effort |
//	                temperature | top_p | stop | stream_options:
//	                refuse a request carrying that field with HTTP 400,
//	                param F and code unsupported_parameter, in OpenAI's
//	                wording (Refusals), as a reasoning model refuses
//	                max_tokens or any sampling parameter; several,
//	                comma-separated (temperature,top_p): the first the
//	                request carries, one at a time as OpenAI refuses them
//	max_output=N    refuse a request whose max_tokens (or
//	                max_completion_tokens) is above N with HTTP 400, in
//	                OpenAI's wording ("max_tokens is too large: T. This model
//	                supports at most N completion tokens, whereas you
//	                provided T."), as a model with that output bound does
//	finish=R        the finish_reason of an answer max_tokens did not cut,
//	                in place of "stop" (a provider's own: model_length,
//	                insufficient_system_resource, content_filter)
//	pings=N         send N SSE comment lines ": OPENROUTER PROCESSING", each
//	                followed by a blank line, at once right after the headers,
//	                as OpenRouter keeps a stream alive before the first token
//
// An unknown key or a bad value is answered with HTTP 400, so typos show.
//
// Faults: hang_first sends the headers and the role chunk, then nothing;
// hang_mid sends K tokens, then nothing (both last until the client leaves,
// Server.Close is called or Options.MaxHang passes); cut_mid sends K tokens
// and closes the TCP connection without ending the chunked body; reset_mid
// does the same with a TCP RST; malformed sends K tokens, then a chunk of
// truncated JSON, then [DONE]; error_mid sends K tokens, then an
// OpenAI-style `data: {"error":{...}}` event; end_mid sends K tokens and
// ends the body cleanly without a finish reason or [DONE]; error_chunk
// sends K tokens, then, as OpenRouter does when a provider fails after the
// stream started, an ordinary chunk with a top-level
// `"error":{"code":502,"message":"Provider disconnected unexpectedly"}`
// and finish_reason "error", then [DONE]; error_body answers HTTP 200 with
// an OpenAI-style rate-limit error as a JSON body without a final newline,
// instead of a stream; empty_mid sends K
// tokens, then a chunk with empty content every delay (10ms when 0) until
// the client leaves; cut_end sends every token and the finish reason,
// then closes the TCP connection without the usage chunk, [DONE] or the
// end of the chunked body; reset_end does the same with a TCP RST;
// malformed_end sends every token and the finish reason, then a usage
// chunk cut off inside its JSON, then [DONE]; hang_end sends every token
// and the finish reason, then neither the usage chunk nor [DONE], keeping the connection
// open with an SSE comment (": ping") every delay (10ms when 0) until the
// client leaves; error_event sends K tokens, then, as llama.cpp
// does, an SSE "error" field (`error: {"code":500,...}`, not a data line),
// then [DONE]; event_error sends K tokens, then an SSE error event whose
// data is the error object itself (`event: error`, then
// `data: {"message":...,"type":"server_error","code":500}`, no "error"
// member), then [DONE]; tool_call sends K tokens (none by default), then,
// as a model asking to call a tool, a chunk whose delta carries
// tool_calls (one function call, get_weather) and the finish reason
// "tool_calls", then the usage and [DONE] (not streaming: a message with
// tool_calls and that finish reason). A status fault answers with
// that status and an OpenAI-style error body (402: out of credit, as
// OpenRouter and DeepSeek answer it; 403: a region OpenAI does not serve); 429 and 503 carry Retry-After when
// retry_after is set. Non-streaming requests get the same faults where they
// make sense. quota answers HTTP 429 as OpenAI does for an account out of
// credit (type and code insufficient_quota), with Retry-After when
// retry_after is set.
//
// Modes: text cycles through a vocabulary that mixes ASCII with two-,
// three- and four-byte characters ("héllo", "中文", "🙂"); markdown is a
// document with headings, a list, a table and fenced code blocks; xss is
// markdown with <script>alert(1)</script>, <img src=x onerror=alert(1)>,
// [x](javascript:alert(1)) and similar payloads. ExpectedText(cfg) (and
// Tokens, ExpectedPrefix) give the exact text of a response, without stamps;
// StripStamps and ParseStamps handle the stamps.
//
// # Observing clients
//
// Requests counts chat requests, Recorded and LastRequest return what was
// received (model, messages, max tokens and the field that carried them,
// temperature, top_p, stop, whether stream_options came, the raw body, headers,
// effective config), Aborts
// counts responses the client abandoned before they were complete (its
// request context ended or a write failed), and WaitAbort/WaitAborts block
// until aborts are seen. ActiveStreams is the number of responses in
// progress.
//
// # Cost
//
// A stream is served by its handler goroutine with one time.Ticker and one
// reused encoding buffer, so hundreds of concurrent streams are cheap.
package fakeai
