// Package hub owns live generations (model answers) and fans their frames
// out to every connection of a user that follows a conversation.
//
// A generation belongs to the hub, not to the connection that asked for it:
// closing the tab that sent a prompt does not stop its answer. Connections
// are Subscribers, a small interface the transports implement; the hub
// knows no sockets or HTTP. Each conversation has one state (its
// subscribers and at most one running generation) guarded by one mutex, so
// a subscriber that joins mid-answer gets exactly the text so far and then
// every later delta, with no gap and no duplicate. A reasoning model's
// "thinking" is a second stream of the same answer (reasoning.go), with its
// own cursor and the same guarantees.
//
// Before an answer starts, its request is built from the conversation's
// sampling parameters over the model's defaults (params.go), and its
// history is fitted into the model's context window (prompt.go, prune.go);
// a prompt the upstream still refuses as too long is fitted again, into
// the window the refusal names, and sent once more (refit.go).
//
// Frames are encoded once (package protocol) and the same bytes are handed
// to every subscriber; Deliver never blocks, so a slow subscriber slows
// nobody else down.
//
// Several instances act as one through a Bus (bus.go): an answer is still
// owned by the instance that holds its upstream stream, which takes a
// cluster-wide lock per conversation before storing anything and publishes
// the answer's frames (coalesced, from a per-answer outbox, never under a
// conversation's lock: publish.go). Other instances mirror a running answer
// for their own tabs from its stream, rebuilding its text so that catch-up
// and resume work as for a local answer (remote.go); cancel and regenerate
// reach the owner as control messages; user-wide frames and logouts go to
// every instance; and when an instance's lease expires, one live instance
// claims each of its answers and ends it as interrupted (cluster.go). If
// that instance was only cut off, the store refuses its late writes and it
// ends its own tabs with what is stored (generation.go, publish.go).
// NewLocalBus, the default, is one process: nothing is published.
package hub
