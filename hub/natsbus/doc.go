// Package natsbus implements the hub's Bus (hub.Bus) over NATS with
// JetStream, so that several chatd instances act as one. The hub knows
// nothing of NATS: cmd/chatd builds a Bus from Options and hands it to the
// app as a hub.Bus.
//
// # What NATS carries
//
// Names start with Options.Prefix ("chatd"); <id> is a chatd id (or an
// encoded form of any other string).
//
//   - KV bucket chatd_locks: one key per conversation with a running
//     answer, whose value names the answer and the instance running it.
//     Acquire creates the key only if absent; Release and Claim compare
//     the revision they read (compare-and-delete, compare-and-swap), so
//     exactly one instance wins a takeover. Claim reads the owner's
//     lease just before its swap and gives up if it was renewed (see
//     Bus.Claim for the round trip left between them). No TTL: a lock lives as long
//     as its instance's lease. History 1. A released lock leaves a purge
//     marker that expires after 5 minutes (message TTLs, NATS 2.11+), so
//     the bucket holds the running answers, not a marker for every
//     conversation that ever had one; the same holds for chatd_conns.
//     Reads go to the bucket's stream leader (direct reads from any
//     replica are turned off), so a read right after a write sees it.
//   - KV bucket chatd_leases: one key per instance, renewed every
//     RenewEvery (LeaseTTL/3, 10s/3 by default). An instance whose newest
//     lease is older than LeaseTTL (by the stream's own clock, that of
//     its leader: a step of it, the leader moved to a server whose clock
//     differs, pauses judging for a TTL, see leaseclock.go) is dead;
//     every live instance watches both buckets and reports the locks of
//     dead instances to its hub (BusHandler.Orphaned). A watcher whose
//     JetStream consumer vanished with its NATS node is replaced within
//     two renewals (each compares what the watcher delivered with the
//     bucket's last revision), not after the client's 10-20 s heartbeat
//     check. Entries vanish after 6 x LeaseTTL (at least a minute); a
//     clean shutdown deletes its own.
//   - Stream CHATD_ANSWERS, subjects chatd.answer.<messageId>: the frames
//     of each answer (its message frames, coalesced deltas, done), one
//     message per coalesced frame (one per token when tokens come
//     further apart than the coalescing gap), each numbered
//     1, 2, 3, ... per answer (header Chatd-N, advanced only once
//     JetStream acknowledged the frame; a claimed answer's first frame
//     skips claimSkip numbers past its last stored frame's, see
//     pipeline.go) and naming the stream sequence
//     of the frame before it (Chatd-Prev). One frame per answer is in
//     flight: a delta after the first is sent without waiting, and its
//     acknowledgement (on the answer's own reply subject) is read before
//     the next frame goes out, so each frame is stored before the next is
//     sent; the first frame and the done are waited for (pipeline.go).
//     Following an answer needs no
//     JetStream consumer: each follow subscribes (core NATS) to its
//     answer's subject only, so an instance receives the frames of the
//     answers its tabs follow and no others; the follow then reads what is
//     stored with batched direct gets (any replica answers; the stream
//     allows direct gets), confirms the end with the stream leader (a
//     message get), and delivers stored then live frames by number, each
//     once. A live frame whose number skips ahead has the missing ones
//     read from JetStream first, up to its Chatd-Prev (numbers no stored
//     frame has, as a claimant skips, are then passed over); after a reconnect or a slow-consumer
//     drop every follow reads what it missed, and a follow that hears
//     nothing for a second asks the leader for the answer's last frame,
//     so a lost done is never waited for forever (a frame published
//     before the follow's interest reached the publisher's NATS server is
//     one of these). An instance thus receives each frame of an answer
//     its tabs follow once, and nothing of the others. Bounded
//     (StreamLimits; these are its defaults, which cmd/chatd sets from the
//     longest answer it allows): frames older than 15 minutes (MaxAge), at
//     most 1 GiB per replica (MaxBytes), at most 100,000 frames per answer,
//     at most 1 MiB per frame; the oldest frames are discarded first. File storage,
//     duplicate window 1 minute.
//     Sizing: an answer of N bytes of text costs about N plus 150 bytes per
//     frame; with the default 25ms coalescing a 2,000-token answer over 40
//     seconds is at most 1,600 frames (in practice a few hundred), about
//     200 KB. At 1 GiB the stream holds some 5,000 such answers per 15
//     minutes, far beyond what the hub runs; MaxAge is the bound that
//     usually applies.
//   - KV buckets chatd_conns and chatd_sends (Limits): per-user open
//     connections per instance (each instance writes the number it holds;
//     dropped for instances whose lease expired, or that show none a lease
//     TTL after their count was first seen, at the user's next change or
//     by every instance's sweep of the bucket, 500 keys every 10 s: see
//     connsSweep) and the cluster-wide
//     token buckets of each user: sends, new conversations, searches
//     (kept for one minute after the last change). chatd_sends also
//     holds the claims of jobs one instance at a time does (TakeJob: a
//     conversation's title), under keys job.<name>.
//   - KV bucket chatd_windows (Windows, optional): the windows of failed
//     logins per account and per address and of registrations per
//     address, under keys that are HMACs of what they count keyed by a
//     secret NATS never sees (Options.WindowsSecret).
//   - Core NATS (not stored): chatd.answer.<messageId> as above (the
//     live copy of each stored frame, to the follows of the answer) and
//     chatd.ctl.<instance> (cancel and supersede, request/reply to the
//     instance running the answer).
//   - Stream CHATD_EVENTS, subjects chatd.events.<userId>: user-wide
//     frames, closing a user's connections, "answer started" notices.
//     Core NATS delivers each at once to every connected instance; the
//     stream keeps it two minutes (at most 64 MiB), and every instance
//     also reads the stream with one ordered consumer made when the bus
//     is set up (and made again from the start of a stream made again
//     after NATS lost its data), so an instance cut off for a moment gets
//     what it missed when it is back. Each event carries an id: it is
//     handed to the hub once. (An event missed on core NATS and read
//     later from the stream may reach the hub after a newer one.) An
//     event whose store the stream does not acknowledge is given up after
//     5 s; while too many wait, events go on core NATS alone. The events
//     this instance broadcasts while it is cut off past OutageGrace wait
//     in its outbox (bounded, see outbox.go) and go out in order, with
//     their ids, when the connection is back.
//
// A connection never receives what it published itself (no echo): the
// frames of this instance's answers reach its own follows from Publish.
//
// Every bucket and stream has Options.Replicas replicas (3 on a NATS
// cluster of three or more nodes), so one NATS node lost changes nothing.
// The cluster's size is judged once JetStream answers (with one URL
// configured, the others are learnt from the server), and each start
// raises a bucket or stream with fewer replicas (never lowers one).
//
// # Faults
//
// The client reconnects forever with a capped backoff, also while the
// servers refuse its credentials (a wrong password put right, a renewed
// credentials file are taken at the next attempt). The bus counts as
// down once the connection has been lost for OutageGrace: Health fails
// with the reason, followed answers end with hub.ErrBusUnavailable, and
// new locks cannot be taken (the hub refuses sends as unavailable rather
// than risk running one twice). Answers this instance runs go on for its
// own tabs; nothing here blocks a generation on bus I/O longer than the
// caller's context. When NATS is back, the lease is renewed first and the
// locks of other instances are judged only after a full LeaseTTL of
// renewals, so instances cut off together never declare each other dead.
package natsbus
