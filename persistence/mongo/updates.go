package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"chatd/persistence"
)

// ApplyMessageUpdates writes a batch of updates as one unordered bulk write
// (one update command on the wire, one statement per message; on FerretDB,
// after a find by _id per message, one statement per message found
// streaming, and no command when there is none).
//
// Text is never rewritten: MongoDB has no string append outside pipeline
// updates (which FerretDB lacks), so a message's content is an array of
// chunks and Append pushes one more ($push with $each); reads join them.
// Bytes written per checkpoint are the new text plus a small fixed overhead,
// however long the message already is. When a chunk boundary cuts a word in
// two, the word (up to maxSplitRunes characters each side) is also pushed to
// split_words so that search finds it; the batching writer cuts at
// whitespace, so in the server's normal flow that happens only inside text
// without spaces (CJK, long URLs).
//
// Unordered statements may run in any order, so updates are first merged per
// message id: the appends concatenated in batch order, and for the other
// fields the last non-zero value, up to the message's first final update
// (the ones after it are dropped: the fence holds within a batch too, as
// on SQLite, which writes them one by one). Updates apply only while their message is
// streaming (the fence, see persistence.Messages): they come from the
// server's batching writer for messages it created, not from a user's
// request, and they stop applying once the message is final. The fence
// takes one of two paths, chosen at Open by the server's buildInfo reply
// (FerretDB adds ferretdbVersion to it):
//
//   - MongoDB: each statement is filtered by _id and status streaming; the
//     filter and the update of one document are one atomic step, so an
//     update never lands on a message InterruptMessage ended. A bulk write
//     reports only a total: when it matched every statement (the normal
//     case) nothing was skipped; otherwise the messages are read back (see
//     unapplied).
//   - FerretDB: v1 (SQLite) pushes only a filter of _id alone down to its
//     database; with the status condition every statement read the whole
//     collection. So each message is first read by _id (checkFence, which
//     also reads the text's tail when the cache lacks it), and only the
//     updates of messages found streaming are written, each filtered by _id
//     alone; an unknown or final message is skipped without a write (one
//     deleted between the check and the write is found by unapplied). The
//     check and the write happen under the messages' document locks
//     (docLocks), which InterruptMessage takes too, so within one process
//     nothing ends a message between them. Across processes (a cluster on
//     one FerretDB) an InterruptMessage can land between the check and the
//     write; the write then appends to (or, if final, sets the status of)
//     the interrupted message. The filtered path was not safe there either:
//     FerretDB (v1) runs an update as a read of the matching documents
//     followed by a write of the whole document, without a transaction, so
//     an update that read the message while it streamed overwrote a
//     concurrent interrupt with status streaming. On FerretDB the fence
//     makes a late owner's writes lose against a claim that came first, not
//     against one that came at the same moment.
//
// Each statement that appends is also conditioned on the number of chunks
// the message's content and reasoning arrays hold (see filter): the text
// follows those, as far as the store knows (the tail cache, else the
// stored message). A statement reported failed may still apply later (the
// server was still running it when a timeout ended the write), and the
// batching writer's retry repeats its text followed by newer text. Of the
// two, the first to arrive applies; the other matches nothing, the store
// reads the message back (unapplied) and, finding the start of its own
// text there, writes only the rest (rebase). Chunks it does not recognise
// (another writer appended) make the update count as skipped. On FerretDB
// the condition is checked by checkFence instead (statements are filtered
// by _id alone, see above), after a statement was reported failed: a late
// statement that lands before the retry is recognised there, one that
// lands after it appends its text again. After a restart, or when the
// cache forgot the message (it holds maxTails), the store takes the
// stored text as the state the retry follows, and cannot recognise a late
// statement that landed before.
//
// When the bulk write fails, some or all of its statements may have
// applied: some statements failed (a write error: a document over the
// size limit, a field of the wrong type), or the reply was lost (a network
// error or a timeout after the request was sent, a primary stepping down,
// ctx ending mid-write, a write concern error). The store learns which
// applied from the message documents (see writeUpdates) and returns a
// *persistence.PartialUpdateError naming only the messages whose updates
// did not apply, or nil when all did, so that the batching writer retries
// those alone instead of appending the others' text again. Only when that
// read fails too (see appliedAfter for its bounds) does it return the
// write's error alone; the retry repeats the text of the statements that
// applied, which the condition above recognises (the store marked their
// state unsure, see doubt). The read has a context of its own: after ctx
// ends mid-write, the call may return up to Options.ReadBackTimeout (5s)
// later. A
// statement the server runs after the read
// (one still running when a timeout ended the write, which the server
// does not stop at once) is reported failed though it applies; the
// condition above keeps its retry from appending its text again.
//
// On both paths malformed ids count as skipped, and a final update whose
// message already carries its status and time is a retry of one that
// applied: it counts as applied and changes nothing (see landed).
//
// Cost on FerretDB (BenchmarkFerretDB, CHATD_BENCH_USERS=10
// CHATD_BENCH_CONVERSATIONS=200 CHATD_BENCH_MESSAGES=5000, on a shared
// 2-core machine): AppendStreaming took 598 ms per update with the
// {_id, status} filter and 159 ms with the check by _id (-benchtime 100x;
// 1,437 and 121 ms in a back-to-back run at 5x); AppendBatch50 took 53.7 s
// per batch of 50 (1,073 ms per update) and 5.9 s (118 ms per update) at
// 5x. The check is one find per message: FerretDB does not push $in down
// either. MongoDB finds each message by its _id index on either path.
func (s *Store) ApplyMessageUpdates(ctx context.Context, updates []persistence.MessageUpdate) ([]string, error) {
	merged, skipped := mergeUpdates(updates)
	if len(merged) == 0 {
		return skipped, nil
	}
	ids := make([]bson.ObjectID, len(merged))
	for i, m := range merged {
		ids[i] = m.id
	}
	unlock, err := s.locks.writeLock(ctx, ids...)
	if err != nil {
		return nil, fmt.Errorf("apply %d message updates: %w", len(updates), err)
	}
	defer unlock()
	write, missed, read := merged, make(map[bson.ObjectID]bool), make(map[bson.ObjectID]arrays)
	if s.ferretDB {
		if write, missed, read, err = s.checkFence(ctx, merged); err != nil {
			return nil, fmt.Errorf("apply %d message updates: %w", len(updates), err)
		}
	}
	write, err = s.resolveBases(ctx, write, read, missed)
	if err != nil {
		return nil, fmt.Errorf("apply %d message updates: %w", len(updates), err)
	}
	var out wrote
	if len(write) > 0 {
		if out, err = s.writeUpdates(ctx, write); err != nil {
			s.doubt(merged) // which statements applied is unknown
			return nil, fmt.Errorf("apply %d message updates: %w", len(updates), err)
		}
	}
	return s.settle(merged, skipped, missed, out)
}

// doubt records, for every update of merged, that it may have applied or
// may still apply: the cache keeps the state its text was to follow,
// marked unsure, so that the retry, which repeats the text, does not
// append it twice (see rebase); a message whose state is unknown is
// forgotten.
func (s *Store) doubt(merged []*mergedUpdate) {
	for _, m := range merged {
		if !m.known {
			s.tails.forget(m.id)
			continue
		}
		st := m.origBase
		st.unsure = true
		s.tails.set(m.id, st)
	}
}

// settle updates the tail cache after a bulk write and returns its
// outcome: the ids of the messages the fence skipped (missed by
// checkFence, or out.missed) and, when some statements failed, a
// *persistence.PartialUpdateError naming them.
func (s *Store) settle(merged []*mergedUpdate, skipped []string, missed map[bson.ObjectID]bool, out wrote) ([]string, error) {
	var failed, refused []string
	for _, m := range merged {
		switch {
		case out.failed[m.id]:
			s.doubt([]*mergedUpdate{m})
			failed = append(failed, m.id.Hex())
			if out.refused[m.id] {
				refused = append(refused, m.id.Hex())
			}
		case missed[m.id] || out.missed[m.id]:
			s.tails.forget(m.id)
			skipped = append(skipped, m.id.Hex())
		case m.set.Status.Final():
			s.tails.forget(m.id)
		case m.known: // it appended, though a rebase may have left nothing to write
			s.tails.set(m.id, m.base.after(m.text.String(), m.reasoning.String()))
		}
	}
	if len(failed) > 0 {
		return skipped, &persistence.PartialUpdateError{IDs: failed, Refused: refused,
			Err: fmt.Errorf("apply updates of %d messages: %w", len(merged), out.failure)}
	}
	return skipped, nil
}

// wrote is what writeUpdates did not apply: missed marks statements the
// fence skipped (or that met text another writer appended), failed those
// that failed (or whose write failed and left them unapplied), with
// failure the first error, and refused those of failed the server
// rejected (a write error); every other statement applied.
type wrote struct {
	missed, failed, refused map[bson.ObjectID]bool
	failure                 error
}

// writeUpdates runs one statement per message of write as one unordered
// bulk write. When the write fails, the statements that applied must
// neither be retried nor reported failed (a checkpoint applied twice
// appends its text twice), so every statement also sets write_id to an id
// of its write, and the messages carrying it afterwards are the statements
// that applied (see appliedAfter). That holds whether the server answered
// with write errors or the answer was lost, so both are read back.
//
// After write errors alone (the server ran the write and answered), their
// indexes are not trusted: FerretDB v1 stops at the first failing
// statement, so the later ones never run, and reports it at index 0. Nor
// is the first statement that did not apply the failing one: it may have
// matched nothing (see filter). So the first statement that did not apply
// is written alone, then the others: one that fails alone is failed (and
// refused, for a rejection), one that matched nothing is sorted out as
// below; one or two more bulk writes per failed statement, on this rare
// path only. After
// any other failure (the reply lost, a write concern error) every
// statement that did not apply is taken as failed and left to the caller
// to retry: the server may be unreachable for a while. A statement the
// fence skipped may be taken as failed: retried, it meets the fence again.
// When the write succeeded but matched fewer statements than it had, the
// ones that did not match are read back (see unapplied), and those that
// met text of their own already stored are written again without it. It
// returns an error when which statements applied is unknown (a read back
// failed too).
func (s *Store) writeUpdates(ctx context.Context, write []*mergedUpdate) (wrote, error) {
	out := wrote{missed: make(map[bson.ObjectID]bool), refused: make(map[bson.ObjectID]bool)}
	var later []*mergedUpdate // not yet written, after write (see below)
	for len(write) > 0 || len(later) > 0 {
		if len(write) == 0 {
			write, later = later, nil
		}
		token := bson.NewObjectID()
		res, err := s.messages.BulkWrite(ctx, s.statements(write, token), options.BulkWrite().SetOrdered(false))
		if err == nil {
			if res.MatchedCount == int64(len(write)) {
				write = nil
				continue
			}
			if write, err = s.unapplied(ctx, write, token, out.missed); err != nil {
				return out, err
			}
			continue
		}
		rest, rerr := s.appliedAfter(ctx, write, token)
		switch {
		case rerr != nil:
			return out, fmt.Errorf("%w (and reading which statements applied failed: %w)", err, rerr)
		case len(rest) == 0: // the read back is what counts
			s.log.Warn("bulk write failed, yet every statement applied", "err", err)
			write = nil
			continue
		case !writeErrorsOnly(err):
			out.fail(append(rest, later...), err)
			return out, nil
		case len(rest) > 1:
			// Which statement failed is not known: the first that did
			// not apply may be one that matched nothing (its message
			// ended, or holds text its filter did not expect) while a
			// later one failed. Written alone, it shows which.
			write, later = rest[:1], append(rest[1:], later...)
			continue
		}
		out.fail(rest, err)
		out.refused[rest[0].id] = rejected(err)
		write = nil
	}
	return out, nil
}

// fail marks the statements of ms failed; err is the first failure.
func (o *wrote) fail(ms []*mergedUpdate, err error) {
	if o.failed == nil {
		o.failed, o.failure = make(map[bson.ObjectID]bool), err
	}
	for _, m := range ms {
		o.failed[m.id] = true
	}
}

// writeErrorsOnly reports whether err, of a bulk write, is write errors
// alone: the server ran the write and answered. Any other error (a
// network error, a timeout, a write concern error) leaves open which
// statements applied, and whether the server can be reached now.
func writeErrorsOnly(err error) bool {
	var bwe mongo.BulkWriteException
	return errors.As(err, &bwe) && bwe.WriteConcernError == nil && len(bwe.WriteErrors) > 0
}

// rejected reports whether err, of a bulk write, is write errors alone,
// each of a code that writing the statement again unchanged would meet
// again (see persistence.PartialUpdateError.Refused and rejectionCodes):
// not one of a primary stepping down, say, which the next attempt does
// not meet.
func rejected(err error) bool {
	var bwe mongo.BulkWriteException
	if !writeErrorsOnly(err) || !errors.As(err, &bwe) {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if !rejectionCodes[we.Code] {
			return false
		}
	}
	return true
}

// rejectionCodes are the server's error codes for an update statement
// that is wrong in itself or for its document, as stored: it fails again
// when written again unchanged.
var rejectionCodes = map[int]bool{
	2:     true, // BadValue: $push to a field that is not an array
	9:     true, // FailedToParse
	14:    true, // TypeMismatch
	28:    true, // PathNotViable
	40:    true, // ConflictingUpdateOperators
	66:    true, // ImmutableField
	121:   true, // DocumentValidationFailure
	10334: true, // BSONObjectTooLarge
	17419: true, // the document after the update is over 16 MiB
}

// statements is one update statement per message of write, each setting
// write_id to token.
func (s *Store) statements(write []*mergedUpdate, token bson.ObjectID) []mongo.WriteModel {
	models := make([]mongo.WriteModel, 0, len(write))
	for _, m := range write {
		models = append(models, mongo.NewUpdateOneModel().SetFilter(m.filter(!s.ferretDB)).SetUpdate(m.update(token)))
	}
	return models
}

// filter is the filter of m's statement: its message by _id and, with
// fence, only while it is streaming and, when m appends to it, only while
// its content and reasoning arrays hold the chunks m's text follows
// (m.base). So a statement applies at most once in a lineage: of a
// statement reported failed that the server still ran (late) and its
// retry, which repeats the text, only the first to arrive matches; the
// other matches nothing, and unapplied finds out why.
func (m *mergedUpdate) filter(fence bool) bson.D {
	filter := bson.D{{Key: "_id", Value: m.id}}
	if !fence {
		return filter
	}
	filter = append(filter, bson.E{Key: "status", Value: string(persistence.StatusStreaming)})
	if m.known && m.appends() {
		filter = append(filter, countIs("content", m.base.chunks), countIs("reasoning", m.base.thoughts))
	}
	return filter
}

// countIs is the condition that array field holds n elements; a missing
// field (reasoning, in documents older than it) holds none.
func countIs(field string, n int) bson.E {
	if n == 0 {
		return bson.E{Key: field + ".0", Value: bson.D{{Key: "$exists", Value: false}}}
	}
	return bson.E{Key: field, Value: bson.D{{Key: "$size", Value: n}}}
}

// Bounds on the read back of a failed bulk write (appliedAfter), with
// Options.ReadBackTimeout for every attempt together.
const (
	readBackAttempts = 4                      // reads tried at most
	readBackPause    = 100 * time.Millisecond // before the second read; doubles
)

// appliedAfter reads back, after a bulk write of write failed, which
// statements did not apply: those whose message does not carry the
// write's token, in order. The read goes to the primary (a secondary may
// lack the write), with a context of its own (the write's may have ended:
// that may be why it failed), bounded by Options.ReadBackTimeout, and is tried up
// to readBackAttempts times (the network may be briefly down). It returns
// an error when no read succeeded: then which statements applied is
// unknown.
func (s *Store) appliedAfter(ctx context.Context, write []*mergedUpdate, token bson.ObjectID) ([]*mergedUpdate, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.readBackTimeout)
	defer cancel()
	applied, err := s.carrying(ctx, write, token)
	pause := readBackPause
	for try := 1; err != nil && try < readBackAttempts && wait(ctx, pause); try++ {
		pause *= 2
		applied, err = s.carrying(ctx, write, token)
	}
	if err != nil {
		return nil, err
	}
	var rest []*mergedUpdate
	for _, m := range write {
		if !applied[m.id] {
			rest = append(rest, m)
		}
	}
	return rest, nil
}

// carrying returns which messages of write carry token as their write_id,
// read from the primary.
func (s *Store) carrying(ctx context.Context, write []*mergedUpdate, token bson.ObjectID) (map[bson.ObjectID]bool, error) {
	ids := make([]bson.ObjectID, len(write))
	for i, m := range write {
		ids[i] = m.id
	}
	filter := bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}, {Key: "write_id", Value: token}}
	found, err := findIDs(ctx, s.messagesPrimary, filter)
	if err != nil {
		return nil, err
	}
	applied := make(map[bson.ObjectID]bool, len(found))
	for _, id := range found {
		applied[id] = true
	}
	return applied, nil
}

// wait waits for d, or until ctx ends; it reports whether d passed.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// checkFence reads each message of merged by _id (the one filter FerretDB
// v1 finds without reading the whole collection) and sorts the updates
// out: write holds those whose message is streaming; missed marks those
// that do not apply (unknown message, message final), except a final
// update its message already carries (see landed), which counts as
// applied and is not written again. read holds the content and reasoning
// of the messages in write that append while the cache does not know
// their state for sure (read with the status, so resolveBases needs no
// read of its own). The caller holds the messages' document locks.
func (s *Store) checkFence(ctx context.Context, merged []*mergedUpdate) (write []*mergedUpdate, missed map[bson.ObjectID]bool, read map[bson.ObjectID]arrays, err error) {
	missed = make(map[bson.ObjectID]bool, len(merged))
	read = make(map[bson.ObjectID]arrays)
	for _, m := range merged {
		proj := bson.D{{Key: "status", Value: 1}, {Key: "updated_at", Value: 1}}
		st, cached := s.tails.get(m.id)
		needTail := m.appends() && (!cached || st.unsure)
		if needTail {
			proj = append(proj, bson.E{Key: "content", Value: 1}, bson.E{Key: "reasoning", Value: 1})
		}
		var d storedState
		err := s.messagesPrimary.FindOne(ctx, bson.D{{Key: "_id", Value: m.id}}, options.FindOne().SetProjection(proj)).Decode(&d) // as readArrays
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			missed[m.id] = true
		case err != nil:
			return nil, nil, nil, fmt.Errorf("check message %s is streaming: %w", m.id.Hex(), err)
		case d.Status == string(persistence.StatusStreaming):
			write = append(write, m)
			if a, ok := arraysOf(d.Content, d.Reasoning); needTail && ok {
				read[m.id] = a // else its write fails alone, like its read
			}
		default:
			missed[m.id] = !m.landed(d)
		}
	}
	return write, missed, read, nil
}

// arrays is the content and reasoning chunks of a message, as read.
type arrays struct {
	content, reasoning []string
}

// arraysOf decodes a message's content and reasoning, read raw: a
// document holding something else there must not fail the read of the
// whole batch (its own update fails, alone, when written). It reports
// false when either is neither an array of strings nor missing.
func arraysOf(rawContent, rawReasoning bson.RawValue) (arrays, bool) {
	content, ok1 := stringsOf(rawContent)
	reasoning, ok2 := stringsOf(rawReasoning)
	return arrays{content: content, reasoning: reasoning}, ok1 && ok2
}

// stringsOf decodes v as an array of strings; a missing field is none.
func stringsOf(v bson.RawValue) ([]string, bool) {
	if v.Type == 0 {
		return nil, true
	}
	var out []string
	return out, v.Type == bson.TypeArray && v.Unmarshal(&out) == nil
}

// storedState is what the fence checks of a stored message.
type storedState struct {
	ID        bson.ObjectID `bson:"_id"`
	Status    string        `bson:"status"`
	UpdatedAt time.Time     `bson:"updated_at"`
	WriteID   bson.ObjectID `bson:"write_id"`  // only when asked for
	Content   bson.RawValue `bson:"content"`   // only when asked for
	Reasoning bson.RawValue `bson:"reasoning"` // only when asked for
}

// landed reports whether the stored state d is what m leaves when it
// applies: a checkpoint leaves the message streaming; a final update leaves
// its status and, when it has one, its time (a final update found so is a
// retry of one that applied).
func (m *mergedUpdate) landed(d storedState) bool {
	if !m.set.Status.Final() {
		return d.Status == string(persistence.StatusStreaming)
	}
	return d.Status == string(m.set.Status) && (m.set.At.IsZero() || d.UpdatedAt.Equal(normTime(m.set.At)))
}

// unapplied sorts out, after a bulk write that matched fewer statements
// than write had, the statements that did not apply, by reading their
// messages back. It marks in missed: an unknown message; a checkpoint
// whose message is not streaming; a final update whose message does not
// carry its status and time (one that does is a retry of an update that
// applied, and counts as applied); an update whose message holds chunks
// after those its text follows that are not the start of its text
// (another writer appended). It returns the updates whose message holds
// the start of their text already (a statement reported failed earlier
// that the server ran late, see filter), with that start removed, to be
// written again. A checkpoint that applied just before another instance
// ended the message counts as skipped: its message is final either way.
// If the read fails, which statements applied is unknown: it returns an
// error, and the caller's retry meets the filter.
func (s *Store) unapplied(ctx context.Context, write []*mergedUpdate, token bson.ObjectID, missed map[bson.ObjectID]bool) ([]*mergedUpdate, error) {
	ids := make([]bson.ObjectID, len(write))
	byID := make(map[bson.ObjectID]*mergedUpdate, len(write))
	for i, m := range write {
		ids[i], byID[m.id] = m.id, m
	}
	var docs []storedState
	cur, err := s.messagesPrimary.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "status", Value: 1}, {Key: "updated_at", Value: 1},
			{Key: "write_id", Value: 1}, {Key: "content", Value: 1}, {Key: "reasoning", Value: 1}}))
	if err == nil {
		err = cur.All(ctx, &docs)
	}
	if err != nil {
		return nil, fmt.Errorf("read back message updates that matched nothing: %w", err)
	}
	found := make(map[bson.ObjectID]bool, len(docs))
	var again []*mergedUpdate
	for _, d := range docs {
		m := byID[d.ID]
		if m == nil {
			continue
		}
		found[d.ID] = true
		a, readable := arraysOf(d.Content, d.Reasoning)
		switch {
		case d.WriteID == token: // it matched
		case d.Status != string(persistence.StatusStreaming) || !m.known || !m.appends() || !readable:
			missed[d.ID] = !m.landed(d)
		case m.rebase(a.content, a.reasoning):
			again = append(again, m)
		default:
			s.log.Warn("message update not applied: the message holds text this writer did not append", "message", d.ID.Hex())
			missed[d.ID] = true
		}
	}
	for _, m := range write {
		if !found[m.id] {
			missed[m.id] = true
		}
	}
	return again, nil
}

// rebase moves m past the chunks of content and reasoning (its message's
// arrays, as stored) beyond m.base, when those are the start of m's text
// and reasoning: a statement reported failed that the server applied
// after all, whose text the caller's retry repeats. It drops that start
// from m and reports true when m is left to write (the arrays hold more
// than m.base); it reports false when they hold nothing more, or
// something else.
func (m *mergedUpdate) rebase(content, reasoning []string) bool {
	if len(content) < m.base.chunks || len(reasoning) < m.base.thoughts ||
		(len(content) == m.base.chunks && len(reasoning) == m.base.thoughts) {
		return false
	}
	text := strings.Join(content[m.base.chunks:], "")
	thought := strings.Join(reasoning[m.base.thoughts:], "")
	if !strings.HasPrefix(m.text.String(), text) || !strings.HasPrefix(m.reasoning.String(), thought) {
		return false
	}
	trimFront(&m.text, len(text))
	trimFront(&m.reasoning, len(thought))
	m.base = storedOf(content, reasoning)
	m.plan()
	return true
}

// trimFront removes the first n bytes of b.
func trimFront(b *strings.Builder, n int) {
	if n == 0 {
		return
	}
	rest := b.String()[n:]
	b.Reset()
	b.WriteString(rest)
}

// mergedUpdate is every change of one batch to one message.
type mergedUpdate struct {
	id        bson.ObjectID
	text      strings.Builder           // the batch's appends, in order
	reasoning strings.Builder           // the batch's reasoning appends, in order
	set       persistence.MessageUpdate // the other fields; Append unused

	known    bool   // base is known: the message exists, as far as the store knows
	base     stored // the stored state text and reasoning follow
	origBase stored // base before rebase: the state the caller's text follows
	split    string // a word the new chunk completes, "" if none
}

// appends reports whether m appends text or reasoning.
func (m *mergedUpdate) appends() bool {
	return m.text.Len() > 0 || m.reasoning.Len() > 0
}

// plan works out the split word m's text completes after m.base.
func (m *mergedUpdate) plan() {
	m.split = ""
	if m.text.Len() > 0 {
		m.split, _ = appendText(m.base.tail, m.text.String())
	}
}

// mergeUpdates merges updates per message, in the order each message first
// appears, and drops updates that change nothing and malformed ids, which
// it returns (they name no message: skipped). A message's merge ends at its
// first final update: the updates after it in the batch are dropped, as
// the fence would skip them written one by one (the SQLite store), so that
// none of their text or fields lands on the ended message. The message's
// id is skipped or not as its merged update is: it is returned only when
// none of its updates applied.
func mergeUpdates(updates []persistence.MessageUpdate) ([]*mergedUpdate, []string) {
	var order []*mergedUpdate
	var malformed []string
	byID := make(map[string]*mergedUpdate, len(updates))
	for _, u := range updates {
		m := byID[u.ID]
		if m == nil {
			oid, ok := objectID(u.ID)
			if !ok {
				if !slices.Contains(malformed, u.ID) {
					malformed = append(malformed, u.ID)
				}
				continue
			}
			m = &mergedUpdate{id: oid}
			byID[u.ID] = m
			order = append(order, m)
		}
		if m.set.Status.Final() {
			continue // ended earlier in the batch: the fence skips the rest
		}
		m.merge(u)
	}
	kept := order[:0]
	for _, m := range order {
		if m.changes() {
			kept = append(kept, m)
		}
	}
	return kept, malformed
}

// merge folds u into m.
func (m *mergedUpdate) merge(u persistence.MessageUpdate) {
	m.text.WriteString(u.Append)
	m.reasoning.WriteString(u.AppendReasoning)
	if u.Status != "" {
		m.set.Status = u.Status
	}
	if u.FinishReason != "" {
		m.set.FinishReason = u.FinishReason
	}
	if u.Usage != nil {
		m.set.Usage = u.Usage
	}
	if u.Error != "" {
		m.set.Error = u.Error
	}
	if u.ErrorCode != "" {
		m.set.ErrorCode = u.ErrorCode
	}
	if !u.At.IsZero() {
		m.set.At = u.At
	}
}

// changes reports whether m changes its message.
func (m *mergedUpdate) changes() bool {
	return m.text.Len() > 0 || m.reasoning.Len() > 0 || len(m.setFields()) > 0
}

// update is the update document of m, which also sets write_id to token,
// the id of the bulk write carrying it (see writeUpdates).
func (m *mergedUpdate) update(token bson.ObjectID) bson.D {
	var doc bson.D
	var push bson.D
	if m.text.Len() > 0 {
		push = append(push, bson.E{Key: "content", Value: bson.D{{Key: "$each", Value: bson.A{m.text.String()}}}})
		if m.split != "" {
			push = append(push, bson.E{Key: "split_words", Value: bson.D{{Key: "$each", Value: bson.A{m.split}}}})
		}
	}
	if m.reasoning.Len() > 0 {
		push = append(push, bson.E{Key: "reasoning", Value: bson.D{{Key: "$each", Value: bson.A{m.reasoning.String()}}}})
	}
	if len(push) > 0 {
		doc = append(doc, bson.E{Key: "$push", Value: push})
	}
	set := append(m.setFields(), bson.E{Key: "write_id", Value: token})
	return append(doc, bson.E{Key: "$set", Value: set})
}

// setFields is the $set document of m.
func (m *mergedUpdate) setFields() bson.D {
	var set bson.D
	if m.set.Status != "" {
		set = append(set, bson.E{Key: "status", Value: string(m.set.Status)})
	}
	if m.set.FinishReason != "" {
		set = append(set, bson.E{Key: "finish_reason", Value: m.set.FinishReason})
	}
	if m.set.Usage != nil {
		set = append(set, bson.E{Key: "usage", Value: usageDocOf(m.set.Usage)})
	}
	if m.set.Error != "" {
		set = append(set, bson.E{Key: "error", Value: m.set.Error})
	}
	if m.set.ErrorCode != "" {
		set = append(set, bson.E{Key: "error_code", Value: m.set.ErrorCode})
	}
	if !m.set.At.IsZero() {
		set = append(set, bson.E{Key: "updated_at", Value: normTime(m.set.At)})
	}
	return set
}

// resolveBases fills base (and so split) of every update of write that
// appends text or reasoning: from the cache; from read (the arrays the
// caller has read already; FerretDB's fence check reads them when the
// cache does not know the state for sure), rebasing past the start of its
// own text a statement reported failed left after all; else by reading the
// message (after a restart, or when another process inserted it). It
// returns write without the updates whose message holds text this writer
// did not append, which it marks in missed. The caller holds the
// messages' document locks.
func (s *Store) resolveBases(ctx context.Context, write []*mergedUpdate, read map[bson.ObjectID]arrays, missed map[bson.ObjectID]bool) ([]*mergedUpdate, error) {
	var missing []bson.ObjectID
	for _, m := range write {
		if !m.appends() {
			continue
		}
		if st, ok := s.tails.get(m.id); ok {
			m.base, m.known = st, true
		} else if _, ok := read[m.id]; !ok {
			missing = append(missing, m.id)
		}
	}
	if len(missing) > 0 {
		if err := s.readArrays(ctx, missing, read); err != nil {
			return nil, err
		}
	}
	kept := make([]*mergedUpdate, 0, len(write))
	for _, m := range write {
		if !m.appends() {
			kept = append(kept, m)
			continue
		}
		if !s.settleBase(m, read) {
			s.log.Warn("message update not applied: the message holds text this writer did not append", "message", m.id.Hex())
			missed[m.id] = true
			continue
		}
		kept = append(kept, m)
	}
	return kept, nil
}

// settleBase sets the base of m, which appends, from the cache entry
// resolveBases found (m.known) or the arrays read of its message, and
// plans its write. It reports false when the arrays hold chunks beyond an
// unsure base that are not the start of m's text.
func (s *Store) settleBase(m *mergedUpdate, read map[bson.ObjectID]arrays) bool {
	a, isRead := read[m.id]
	switch {
	case !m.known && isRead:
		m.base, m.known = storedOf(a.content, a.reasoning), true
	case !m.known: // no such message
		return true
	}
	m.base.unsure = false
	m.origBase = m.base
	if isRead && (len(a.content) != m.base.chunks || len(a.reasoning) != m.base.thoughts) && !m.rebase(a.content, a.reasoning) {
		return false
	}
	m.plan()
	return true
}

// readArrays adds the content and reasoning of the stored messages ids to read.
func (s *Store) readArrays(ctx context.Context, ids []bson.ObjectID, read map[bson.ObjectID]arrays) error {
	// From the primary: the counts read here condition the next write, and
	// a lagging secondary's would make it match nothing (see filter).
	cur, err := s.messagesPrimary.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "content", Value: 1}, {Key: "reasoning", Value: 1}}))
	if err != nil {
		return fmt.Errorf("read message tails: %w", err)
	}
	var docs []struct {
		ID        bson.ObjectID `bson:"_id"`
		Content   bson.RawValue `bson:"content"`
		Reasoning bson.RawValue `bson:"reasoning"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return fmt.Errorf("read message tails: %w", err)
	}
	for _, d := range docs {
		if a, ok := arraysOf(d.Content, d.Reasoning); ok {
			read[d.ID] = a // else its write fails alone, like its read
		}
	}
	return nil
}
