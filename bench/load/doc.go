// Package load drives streaming chat load against three targets and
// measures it, for cmd/loadgen and the benchmark suite in bench/:
//
//   - TargetChatd: chatd's live channel. Users are registered through the
//     REST API beforehand (Register); each stream gets fresh, titled
//     conversations (so no title request runs), opens one WebSocket per tab
//     and sends prompts with "send" frames.
//   - TargetRelay: the minimal relay of package bench/relay (SSE in,
//     WebSocket frame out, no auth, no database): the floor of this design.
//   - TargetUpstream: the fake OpenAI server's SSE read directly, with no
//     server in between.
//
// Every prompt carries a llm/fakeai marker asking for stamp=all, so each
// token's text starts with "[ts:<CLOCK_MONOTONIC ns>] " taken by the fake
// upstream when it encoded the token. A delta may carry several tokens
// (chatd coalesces); every stamp in it counts. A token's lateness is its
// arrival time (fakeai.MonotonicNanos, the same clock, read right after the
// frame was read) minus its stamp; time to first token is the arrival of
// an answer's first token minus the moment its prompt was written.
//
// Run checks what it receives as well as timing it: every answer's text,
// stamps removed, must be exactly what the fake upstream was asked for,
// deltas must continue each other (seq), and every tab following a
// generation must receive the same delta sequence as the tab that sent it.
package load
