import { describe, expect, it } from 'vitest';
import type { Conversation, DeltaFrame, DoneFrame, Message } from './protocol';
import {
  PENDING_PREFIX,
  activePath,
  addPending,
  applyDelta,
  applyDone,
  applyReasoning,
  dropPending,
  gapProbe,
  leafOf,
  isQueued,
  mergeOlder,
  mergeSnapshot,
  newThread,
  oldestLoaded,
  queueSend,
  storedAnswers,
  storedByClientId,
  topParent,
  unqueue,
  resumePoint,
  siblings,
  selectVersion,
  stepVersion,
  upsertMessage,
  type Thread,
} from './thread';

const conv: Conversation = { id: 'c1', title: 't', model: 'm', systemPrompt: '', createdAt: 't0', updatedAt: 't0' };
let clock = 0;

function msg(id: string, parentId: string, role: 'user' | 'assistant', content = '', status: Message['status'] = 'complete', extra: Partial<Message> = {}): Message {
  const at = new Date(Date.UTC(2026, 0, 1, 0, 0, clock++)).toISOString();
  return { id, conversationId: 'c1', parentId, role, content, status, createdAt: at, updatedAt: at, ...extra };
}

function delta(messageId: string, seq: number, text: string): DeltaFrame {
  return { type: 'delta', conversationId: 'c1', messageId, seq, text };
}

function done(messageId: string, seq: number, status: DoneFrame['status'] = 'complete', extra: Partial<DoneFrame> = {}): DoneFrame {
  return { type: 'done', conversationId: 'c1', messageId, seq, status, ...extra };
}

function ids(t: Thread): string[] {
  return activePath(t).map((m) => m.id);
}

/** streaming builds a thread with one user message and a streaming answer. */
function streaming(content = ''): Thread {
  let t = newThread('c1');
  t = upsertMessage(t, msg('u1', '', 'user', 'hi'));
  t = upsertMessage(t, msg('a1', 'u1', 'assistant', content, 'streaming'));
  return t;
}

describe('applyDelta: seq logic', () => {
  it('appends deltas that continue exactly', () => {
    let t = streaming();
    for (const [seq, text] of [
      [5, 'Hello'],
      [6, ' '],
      [12, 'héllo'],
      [16, '🙂'],
    ] as const) {
      const r = applyDelta(t, delta('a1', seq, text));
      expect(r.result).toBe('applied');
      t = r.thread;
    }
    expect(t.messages.a1!.content).toBe('Hello héllo🙂');
    expect(t.seq.a1).toBe(16);
    expect(resumePoint(t)).toEqual({ messageId: 'a1', lastSeq: 16 });
  });

  it('ignores a duplicate (seq at or below what is applied)', () => {
    let t = applyDelta(streaming(), delta('a1', 5, 'Hello')).thread;
    const again = applyDelta(t, delta('a1', 5, 'Hello'));
    expect(again.result).toBe('duplicate');
    expect(again.thread).toBe(t);
    t = again.thread;
    expect(applyDelta(t, delta('a1', 3, 'llo')).result).toBe('duplicate');
    expect(t.messages.a1!.content).toBe('Hello');
  });

  it('reports a gap when text is missing, and changes nothing', () => {
    const t = applyDelta(streaming(), delta('a1', 5, 'Hello')).thread;
    const r = applyDelta(t, delta('a1', 12, 'world'));
    expect(r.result).toBe('gap');
    expect(r.thread.messages.a1!.content).toBe('Hello');
  });

  it('takes only the new tail of an overlapping catch-up delta', () => {
    const t = applyDelta(streaming(), delta('a1', 6, 'Héllo')).thread;
    const r = applyDelta(t, delta('a1', 12, 'Héllo world'));
    expect(r.result).toBe('applied');
    expect(r.thread.messages.a1!.content).toBe('Héllo world');
    expect(r.thread.seq.a1).toBe(12);
  });

  it('reports a gap for an unknown message', () => {
    expect(applyDelta(streaming(), delta('zz', 3, 'abc')).result).toBe('gap');
  });

  it('resumes from content loaded over REST', () => {
    const t = streaming('Hello');
    expect(resumePoint(t)).toEqual({ messageId: 'a1', lastSeq: 5 });
    const r = applyDelta(t, delta('a1', 11, ' world'));
    expect(r.result).toBe('applied');
    expect(r.thread.messages.a1!.content).toBe('Hello world');
  });

  it('a catch-up message frame with empty content does not erase known text', () => {
    let t = applyDelta(streaming(), delta('a1', 5, 'Hello')).thread;
    t = upsertMessage(t, msg('a1', 'u1', 'assistant', '', 'streaming'));
    expect(t.messages.a1!.content).toBe('Hello');
    const r = applyDelta(t, delta('a1', 11, 'Hello world'));
    expect(r.thread.messages.a1!.content).toBe('Hello world');
  });
});

describe('applyDone', () => {
  it('ends the answer with status, usage and error', () => {
    let t = applyDelta(streaming(), delta('a1', 5, 'Hello')).thread;
    const r = applyDone(t, done('a1', 5, 'error', { error: { code: 'upstream_error', message: 'upstream failed' }, usage: { promptTokens: 1, completionTokens: 2, totalTokens: 3 } }));
    t = r.thread;
    expect(r.result).toBe('applied');
    expect(t.messages.a1!.status).toBe('error');
    expect(t.messages.a1!.error).toBe('upstream failed');
    expect(t.messages.a1!.errorCode).toBe('upstream_error'); // the advice shown is picked by it (lib/failure.ts)
    expect(t.messages.a1!.usage?.totalTokens).toBe(3);
    expect(resumePoint(t)).toBeUndefined();
    expect(applyDelta(t, delta('a1', 5, 'Hello')).result).toBe('duplicate');
  });

  it('reports a gap when done says more text exists than was applied', () => {
    const t = applyDelta(streaming(), delta('a1', 5, 'Hello')).thread;
    const r = applyDone(t, done('a1', 11, 'complete'));
    expect(r.result).toBe('gap');
    expect(r.thread.messages.a1!.status).toBe('complete');
  });

  it('a second done is a duplicate and changes nothing', () => {
    const t = applyDone(streaming('x'), done('a1', 1, 'cancelled')).thread;
    expect(applyDone(t, done('a1', 1, 'cancelled')).result).toBe('duplicate');
    const shutdown = applyDone(t, done('a1', 1, 'interrupted', { error: { code: 'shutdown', message: 'x' } }));
    expect(shutdown).toEqual({ thread: t, result: 'duplicate' });
  });

  it('cuts the text to a seq below what was applied and reports a gap (reload what was stored)', () => {
    const t = applyDelta(streaming(), delta('a1', 10, 'héllo 中')).thread;
    const r = applyDone(t, done('a1', 3, 'interrupted', { error: { code: 'shutdown', message: 'lost' } }));
    expect(r.result).toBe('gap');
    expect(r.thread.messages.a1).toMatchObject({ content: 'hé', status: 'interrupted' });
    expect(r.thread.seq.a1).toBeUndefined();
  });

  it('cuts the reasoning to an rseq below what was applied and reports a gap', () => {
    let t = applyReasoning(streaming(), { type: 'reasoning', conversationId: 'c1', messageId: 'a1', rseq: 8, text: 'thinking' }).thread;
    t = applyDelta(t, delta('a1', 2, 'Hi')).thread;
    const r = applyDone(t, done('a1', 2, 'complete', { rseq: 5 }));
    expect(r.result).toBe('gap');
    expect(r.thread.messages.a1).toMatchObject({ content: 'Hi', reasoning: 'think' });
  });

  it('takes the count of messages left out from a done that carries it, 0 included', () => {
    // The message frame had the first prompt's count; a prompt fitted
    // again (docs/protocol.md) may leave fewer out, or none.
    const t = upsertMessage(streaming(), msg('a1', 'u1', 'assistant', '', 'streaming', { omittedMessages: 4 }));
    const kept = applyDone(t, done('a1', 0, 'complete')).thread; // absent: as the message frame said
    expect(kept.messages.a1!.omittedMessages).toBe(4);
    const fewer = applyDone(t, done('a1', 0, 'complete', { omittedMessages: 2 })).thread;
    expect(fewer.messages.a1!.omittedMessages).toBe(2);
    const none = applyDone(t, done('a1', 0, 'complete', { omittedMessages: 0 })).thread;
    expect(none.messages.a1!.omittedMessages ?? 0).toBe(0);
  });
});

describe('branches and versions', () => {
  /** u1 -> a1 | a2 (regenerated); u1' (edited root) -> a3 */
  function tree(): Thread {
    let t = newThread('c1');
    t = upsertMessage(t, msg('u1', '', 'user', 'q1'));
    t = upsertMessage(t, msg('a1', 'u1', 'assistant', 'first'));
    t = upsertMessage(t, msg('u2', 'a1', 'user', 'follow-up'));
    t = upsertMessage(t, msg('a2', 'u2', 'assistant', 'second'));
    return t;
  }

  it('shows the path to the latest leaf', () => {
    expect(ids(tree())).toEqual(['u1', 'a1', 'u2', 'a2']);
    expect(leafOf(tree())!.id).toBe('a2');
  });

  it('a regenerated answer becomes the shown version and counts as a sibling', () => {
    let t = tree();
    t = upsertMessage(t, msg('a2b', 'u2', 'assistant', '', 'streaming'));
    expect(ids(t)).toEqual(['u1', 'a1', 'u2', 'a2b']);
    expect(siblings(t, 'a2b')).toEqual(['a2', 'a2b']);
    t = stepVersion(t, 'a2b', -1);
    expect(ids(t)).toEqual(['u1', 'a1', 'u2', 'a2']);
    t = stepVersion(t, 'a2', -1);
    expect(ids(t)).toEqual(['u1', 'a1', 'u2', 'a2']);
    t = stepVersion(t, 'a2', 1);
    expect(ids(t)).toEqual(['u1', 'a1', 'u2', 'a2b']);
  });

  it('an edited earlier message makes a branch; switching shows each branch with its descendants', () => {
    let t = tree();
    // edit u2 (child of a1): a new user message under a1, and its answer
    t = upsertMessage(t, msg('u2e', 'a1', 'user', 'edited follow-up'));
    t = upsertMessage(t, msg('a4', 'u2e', 'assistant', 'edited answer'));
    expect(ids(t)).toEqual(['u1', 'a1', 'u2e', 'a4']);
    expect(siblings(t, 'u2e')).toEqual(['u2', 'u2e']);
    t = stepVersion(t, 'u2e', -1);
    expect(ids(t)).toEqual(['u1', 'a1', 'u2', 'a2']);
    t = stepVersion(t, 'u2', 1);
    expect(ids(t)).toEqual(['u1', 'a1', 'u2e', 'a4']);
  });

  it('switching to an old branch picks its latest leaf by default', () => {
    let t = tree();
    t = upsertMessage(t, msg('a2b', 'u2', 'assistant', 'regen'));
    t = upsertMessage(t, msg('u3', 'a2', 'user', 'on the old answer')); // newest leaf under a2
    // the newest activity is under a2, so by default a2's branch is shown, here (a2b was followed when it arrived) as in a fresh load
    expect(ids(t)).toEqual(['u1', 'a1', 'u2', 'a2', 'u3']);
    const fresh = mergeSnapshot(newThread('c1'), conv, Object.values(t.messages));
    expect(ids(fresh)).toEqual(['u1', 'a1', 'u2', 'a2', 'u3']);
    // A version the reader chose here stays: the old branch's next message does not take the view back.
    t = stepVersion(t, 'a2', 1);
    t = upsertMessage(t, msg('a3', 'u3', 'assistant', 'on the old answer'));
    expect(ids(t)).toEqual(['u1', 'a1', 'u2', 'a2b']);
  });

  it('by default shows the version leading to the newest message by time, then id, as the server orders them', () => {
    const at = (t: string, m: Message): Message => ({ ...m, createdAt: t, updatedAt: t });
    const base = [
      at('2026-01-01T00:00:01Z', msg('u1', '', 'user')),
      at('2026-01-01T00:00:02Z', msg('a1', 'u1', 'assistant')),
      at('2026-01-01T00:00:03Z', msg('a2', 'u1', 'assistant')), // regenerated
    ];
    for (const [name, under1, under2] of [
      // the newest under a1 is half a second later than a whole second under a2 (the server drops a time's trailing zeros)
      ['a later fraction of the same second', at('2026-01-01T00:00:05.5Z', msg('u2', 'a1', 'user')), at('2026-01-01T00:00:05Z', msg('u3', 'a2', 'user'))],
      // the same time under both: the greater id is the newer, the one a send without a parent continues
      ['the same time, a greater id', at('2026-01-01T00:00:05Z', msg('z9', 'a1', 'user')), at('2026-01-01T00:00:05Z', msg('b1', 'a2', 'user'))],
    ] as const) {
      const t = mergeSnapshot(newThread('c1'), conv, [...base, under1, under2]);
      expect(ids(t), name).toEqual(['u1', 'a1', under1.id]);
    }
  });

  it('edits of the first message are roots', () => {
    let t = tree();
    t = upsertMessage(t, msg('u1e', '', 'user', 'q1 edited'));
    expect(ids(t)).toEqual(['u1e']);
    expect(siblings(t, 'u1e')).toEqual(['u1', 'u1e']);
    t = stepVersion(t, 'u1e', -1);
    expect(ids(t)).toEqual(['u1', 'a1', 'u2', 'a2']);
  });

  it('a message on a branch that is not shown does not change the view', () => {
    let t = tree();
    t = upsertMessage(t, msg('u2e', 'a1', 'user', 'edit'));
    t = stepVersion(t, 'u2e', -1); // back to u2's branch
    t = upsertMessage(t, msg('a5', 'u2e', 'assistant', 'answer on hidden branch'));
    expect(ids(t)).toEqual(['u1', 'a1', 'u2', 'a2']);
  });
});

describe('pending messages', () => {
  it('shows a pending user message and replaces it with the stored one', () => {
    let t = newThread('c1');
    t = upsertMessage(t, msg('u1', '', 'user', 'q'));
    t = upsertMessage(t, msg('a1', 'u1', 'assistant', 'x'));
    t = addPending(t, 'cm1', 'a1', 'next');
    expect(ids(t)).toEqual(['u1', 'a1', PENDING_PREFIX + 'cm1']);
    t = upsertMessage(t, msg('u2', 'a1', 'user', 'next', 'complete', { clientMessageId: 'cm1' }));
    expect(ids(t)).toEqual(['u1', 'a1', 'u2']);
    expect(t.messages[PENDING_PREFIX + 'cm1']).toBeUndefined();
    expect(siblings(t, 'u2')).toEqual(['u2']);
  });

  it('one sent with no parent before the thread loaded shows after the newest message of the snapshot; a new first message (an edit) stays a root', () => {
    const stored = [msg('u1', '', 'user', 'q'), msg('a1', 'u1', 'assistant', 'x'), msg('u2', 'a1', 'user', 'y'), msg('a2', 'u2', 'assistant', 'z')];
    let t = addPending(newThread('c1'), 'cm1', undefined, 'sent while loading');
    expect(ids(t)).toEqual([PENDING_PREFIX + 'cm1']);
    t = mergeSnapshot(t, conv, stored);
    expect(ids(t)).toEqual(['u1', 'a1', 'u2', 'a2', PENDING_PREFIX + 'cm1']);
    expect(siblings(t, 'u1')).toEqual(['u1']);
    t = upsertMessage(t, msg('u3', 'a2', 'user', 'sent while loading', 'complete', { clientMessageId: 'cm1' }));
    expect(ids(t)).toEqual(['u1', 'a1', 'u2', 'a2', 'u3']);
    expect(t.afterLatest).toEqual({});

    let e = addPending(mergeSnapshot(newThread('c1'), conv, stored), 'e1', '', 'an edit of the first');
    e = mergeSnapshot(e, conv, stored);
    expect(ids(e)).toEqual([PENDING_PREFIX + 'e1']);
    expect(siblings(e, 'u1')).toEqual(['u1', PENDING_PREFIX + 'e1']);
  });

  it('an edit sent with this device’s clock 10 minutes behind the server’s is the last version until stored', () => {
    const server = Date.now() + 10 * 60_000;
    const at = (ms: number) => ({ createdAt: new Date(ms).toISOString(), updatedAt: new Date(ms).toISOString() });
    const stored = [msg('a', '', 'user', 'first', 'complete', at(server - 3600_000)), msg('b', '', 'user', 'an edit 2 min ago', 'complete', at(server - 120_000))];
    let t = addPending(mergeSnapshot(newThread('c1'), conv, stored), 'x1', '', 'a new edit');
    expect(siblings(t, 'a')).toEqual(['a', 'b', PENDING_PREFIX + 'x1']); // "3 / 3"
    t = mergeSnapshot(t, conv, stored); // a reload before the server's copy
    expect(siblings(t, 'a')).toEqual(['a', 'b', PENDING_PREFIX + 'x1']);
    expect(ids(t)).toEqual([PENDING_PREFIX + 'x1']);
    t = upsertMessage(t, msg('c', '', 'user', 'a new edit', 'complete', { clientMessageId: 'x1', ...at(server) }));
    expect(siblings(t, 'a')).toEqual(['a', 'b', 'c']);
  });

  it('drops a pending message whose send failed', () => {
    let t = upsertMessage(newThread('c1'), msg('u1', '', 'user', 'q'));
    t = addPending(t, 'cm2', 'u1', 'x');
    t = dropPending(t, 'cm2');
    expect(ids(t)).toEqual(['u1']);
  });
});

describe('mergeSnapshot', () => {
  it('keeps the longer streaming text and does not undo an ended answer', () => {
    let t = applyDelta(streaming(), delta('a1', 11, 'Hello world')).thread;
    const stale = [msg('u1', '', 'user', 'hi'), { ...msg('a1', 'u1', 'assistant', 'Hello', 'streaming') }];
    t = mergeSnapshot(t, conv, stale);
    expect(t.messages.a1!.content).toBe('Hello world');
    expect(t.seq.a1).toBe(11);

    t = applyDone(t, done('a1', 11)).thread;
    t = mergeSnapshot(t, conv, stale);
    expect(t.messages.a1!.status).toBe('complete');
    expect(t.messages.a1!.content).toBe('Hello world');
  });

  it('takes the longer stored text and keeps messages it does not list', () => {
    let t = streaming('Hel');
    t = upsertMessage(t, msg('u9', 'a1', 'user', 'arrived by frame'));
    t = mergeSnapshot(t, conv, [msg('u1', '', 'user', 'hi'), msg('a1', 'u1', 'assistant', 'Hello', 'streaming')]);
    expect(t.messages.a1!.content).toBe('Hello');
    expect(t.seq.a1).toBe(5);
    expect(t.messages.u9).toBeDefined();
    expect(t.loaded).toBe(true);
  });

  it('after a refused resume point (storedAnswers), takes the stored text of a streaming answer, shorter or not, and resumes from it', () => {
    const t = applyDelta(streaming(), delta('a1', 11, 'Hello world')).thread;
    const stored = [msg('u1', '', 'user', 'hi'), msg('a1', 'u1', 'assistant', 'Hello', 'streaming')];
    const next = storedAnswers(mergeSnapshot(t, conv, stored), stored);
    expect(next.messages.a1!.content).toBe('Hello');
    expect(resumePoint(next)).toEqual({ messageId: 'a1', lastSeq: 5 });
    // An answer ended here stays as it ended.
    const ended = applyDone(t, done('a1', 11)).thread;
    expect(storedAnswers(mergeSnapshot(ended, conv, stored), stored).messages.a1).toMatchObject({ content: 'Hello world', status: 'complete' });
  });

  it('replaces a pending message the server stored and keeps it shown', () => {
    let t = upsertMessage(newThread('c1'), msg('u1', '', 'user', 'q'));
    t = upsertMessage(t, msg('a1', 'u1', 'assistant', 'a'));
    t = upsertMessage(t, msg('a1b', 'u1', 'assistant', 'b'));
    t = stepVersion(t, 'a1b', -1);
    t = addPending(t, 'cm3', 'a1', 'next');
    const stored = msg('u2', 'a1', 'user', 'next', 'complete', { clientMessageId: 'cm3' });
    t = mergeSnapshot(t, conv, [...Object.values(t.messages).filter((m) => !m.id.startsWith(PENDING_PREFIX)), stored]);
    expect(ids(t)).toEqual(['u1', 'a1', 'u2']);
  });
});

describe('paging: the shown path of a partly loaded conversation', () => {
  it('starts above the anchor at the oldest loaded ancestor and grows as older pages arrive', () => {
    const all = [msg('p0', '', 'user'), msg('p1', 'p0', 'assistant'), msg('p2', 'p1', 'user'), msg('p3', 'p2', 'assistant')];
    let t = mergeSnapshot(newThread('c1'), conv, all.slice(2), { hasMore: true, activeMessageId: 'p3' });
    expect(t.hasMore).toBe(true);
    expect(topParent(t)).toBe('p1');
    expect(ids(t)).toEqual(['p2', 'p3']);
    expect(oldestLoaded(t)).toBe('p2');
    t = mergeOlder(t, all.slice(0, 2), false);
    expect(topParent(t)).toBe('');
    expect(ids(t)).toEqual(['p0', 'p1', 'p2', 'p3']);
  });

  it('a newest page the server cut short by bytes to one message shows it, and older pages bring the path in whole', () => {
    // A page ends at 2 MiB of text (docs/api.md): the newest may be one
    // long answer alone, and the anchor (activeMessageId) on an older page.
    const all = [msg('p0', '', 'user'), msg('p1', 'p0', 'assistant'), msg('p2', 'p1', 'user', 'x'.repeat(1000)), msg('p3', 'p2', 'assistant')];
    let t = mergeSnapshot(newThread('c1'), conv, all.slice(3), { hasMore: true, activeMessageId: 'p1' });
    expect(ids(t)).toEqual(['p3']);
    expect(topParent(t)).toBe('p2');
    expect(oldestLoaded(t)).toBe('p3');
    t = mergeOlder(t, all.slice(2, 3), true);
    expect(ids(t)).toEqual(['p2', 'p3']);
    t = mergeOlder(t, all.slice(1, 2), true);
    expect(topParent(t)).toBe('p0');
    expect(ids(t)).toEqual(['p1', 'p2', 'p3']);
    t = mergeOlder(t, all.slice(0, 1), false);
    expect(ids(t)).toEqual(['p0', 'p1', 'p2', 'p3']);
  });

  it('a fresh snapshot of a complete thread keeps it complete; a first one without hasMore is complete', () => {
    const all = [msg('q0', '', 'user'), msg('q1', 'q0', 'assistant')];
    const first = mergeSnapshot(newThread('c1'), conv, all);
    expect(first.hasMore).toBe(false);
    expect(mergeSnapshot(first, conv, all.slice(1), { hasMore: true }).hasMore).toBe(false);
  });
});

describe('a reload after more than a page was written elsewhere', () => {
  /** complete is [u1, a1] loaded whole; gapPage is the newest page once u2..a3 and more were written elsewhere. */
  function complete(): Thread {
    return mergeSnapshot(newThread('c1'), conv, [msg('u1', '', 'user', 'hi'), msg('a1', 'u1', 'assistant', 'hello')], { hasMore: false });
  }
  const gapPage = () => [msg('u4', 'a3', 'user', 'fourth'), msg('a4', 'u4', 'assistant', 'fourth answer')];

  it.each([
    ['a complete thread', complete],
    ['a thread with older messages still on the server', () => mergeSnapshot(newThread('c1'), conv, [msg('u1', 'a0', 'user', 'hi')], { hasMore: true })],
  ])('%s is replaced by a page that does not reach it: the view and the next send follow the newest message', (_, loaded) => {
    const t = mergeSnapshot(loaded(), conv, gapPage(), { hasMore: true, activeMessageId: '' });
    expect(t.hasMore).toBe(true);
    expect(ids(t)).toEqual(['u4', 'a4']);
    expect(leafOf(t)?.id).toBe('a4');
    expect(oldestLoaded(t)).toBe('u4'); // the next older page is the one before the gap's end, not before u1
    expect(t.messages.u1).toBeUndefined();
  });

  it('keeps what the user sent from here, and a page sharing a message with the thread is merged as before', () => {
    let t = complete();
    t = addPending(t, 'c9', 'a1', 'sent offline');
    t = queueSend(t, { clientMessageId: 'c9', content: 'sent offline', parentMessageId: 'a1', draftKey: 'c1' });
    const replaced = mergeSnapshot(t, conv, gapPage(), { hasMore: true });
    expect(replaced.messages[PENDING_PREFIX + 'c9']).toBeDefined();
    expect(replaced.queued).toHaveLength(1);

    const joined = mergeSnapshot(complete(), conv, [msg('a1', 'u1', 'assistant', 'hello'), msg('u2', 'a1', 'user', 'more')], { hasMore: true });
    expect(joined.hasMore).toBe(false);
    expect(ids(joined)).toEqual(['u1', 'a1', 'u2']);
  });
});

describe('a reload after more than a page was written elsewhere, some heard live since reconnecting', () => {
  function complete(): Thread {
    return mergeSnapshot(newThread('c1'), conv, [msg('u1', '', 'user', 'hi'), msg('a1', 'u1', 'assistant', 'hello')], { hasMore: false });
  }

  it.each([
    ['a send stored under the old last message', 'a1', ['u9', 'a9']],
    ['a send stored after the latest message', 'a4', ['u4', 'a4', 'u9', 'a9']],
  ])('a page sharing only the messages heard live (%s) does not join the thread: it replaces it, and older pages are offered', (_, parent, path) => {
    const [u4, a4] = [msg('u4', 'a3', 'user', 'fourth'), msg('a4', 'u4', 'assistant', 'fourth answer')];
    const u9 = msg('u9', parent, 'user', 'sent offline');
    const a9 = msg('a9', 'u9', 'assistant', 'its answer');
    let t = upsertMessage(complete(), u9);
    t = upsertMessage(t, a9);
    t = mergeSnapshot(t, conv, [u4, a4, u9, a9], { hasMore: true, activeMessageId: '' });
    expect(t.hasMore).toBe(true);
    expect(oldestLoaded(t)).toBe('u4');
    expect(t.messages.u1).toBeUndefined();
    expect(ids(t)).toEqual(path);
  });

  it('a page whose oldest message is loaded, or follows a loaded one and is no newer than the newest loaded, joins the thread', () => {
    const u2 = msg('u2', 'a1', 'user', 'more'); // missed (a cut), made before the version this tab heard live
    const t = upsertMessage(complete(), msg('a1b', 'u1', 'assistant', 'hello again'));
    const follows = mergeSnapshot(t, conv, [u2, t.messages.a1b!, msg('a2', 'u2', 'assistant', 'more')], { hasMore: true });
    expect(follows.hasMore).toBe(false);
    expect(Object.keys(follows.messages).sort()).toEqual(['a1', 'a1b', 'a2', 'u1', 'u2']);
    expect(ids(follows)).toEqual(['u1', 'a1', 'u2', 'a2']); // the newest message shown, a1b heard live notwithstanding
    const [u5, a5] = [msg('u5', 'a4', 'user', 'fifth'), msg('a5', 'u5', 'assistant', 'fifth answer')];
    const first = selectVersion(upsertMessage(mergeSnapshot(newThread('c1'), conv, [u5, a5], { hasMore: true }), msg('a5b', 'u5', 'assistant', 'again')), 'a5');
    const again = mergeSnapshot(first, conv, [u5, a5, msg('a5b', 'u5', 'assistant', 'again')], { hasMore: true });
    expect(again.hasMore).toBe(true);
    expect(ids(again)).toEqual(['u5', 'a5']); // the version chosen stays: not replaced
  });

  it('a page that ends at an edit of an older message, newer than all loaded, does not join: what was missed before it is paged in', () => {
    // [u1, a1] loaded; elsewhere u2..a3 were written, then u2 edited (u2b, under a1) and answered: the page (200 messages or 2 MiB) ends at u2b.
    const t = complete();
    const missed = [msg('u2', 'a1', 'user'), msg('a2', 'u2', 'assistant'), msg('u3', 'a2', 'user'), msg('a3', 'u3', 'assistant')];
    const page = [msg('u2b', 'a1', 'user', 'edited'), msg('a2b', 'u2b', 'assistant')];
    let r = mergeSnapshot(t, conv, page, { hasMore: true, activeMessageId: '' });
    expect(r.hasMore).toBe(true);
    expect(oldestLoaded(r)).toBe('u2b'); // the next page is the one before u2b: the missed messages
    expect(ids(r)).toEqual(['u2b', 'a2b']);
    r = mergeOlder(r, [...Object.values(t.messages), ...missed], false);
    expect(siblings(r, 'u2b')).toEqual(['u2', 'u2b']);
    expect(ids(r)).toEqual(['u1', 'a1', 'u2b', 'a2b']);
  });

  it('a page whose oldest message\'s parent is the newest loaded message joins when the message before it is loaded, and keeps hasMore false', () => {
    // u1..a3 loaded, nothing older; elsewhere u4, a4 continued a3, and the page limit (2 MiB) falls between a3 and u4.
    const t = mergeSnapshot(complete(), conv, [msg('u2', 'a1', 'user'), msg('a2', 'u2', 'assistant'), msg('u3', 'a2', 'user'), msg('a3', 'u3', 'assistant')], { hasMore: false });
    const page = [msg('u4', 'a3', 'user', 'fourth'), msg('a4', 'u4', 'assistant', 'fourth answer')];
    expect(gapProbe(t, page, { hasMore: true })).toBe('u4');
    const r = mergeSnapshot(t, conv, page, { hasMore: true, activeMessageId: '', before: 'a3' }); // olderMessages(before u4, limit 1): a3
    expect(r.hasMore).toBe(false);
    expect(ids(r)).toEqual(['u1', 'a1', 'u2', 'a2', 'u3', 'a3', 'u4', 'a4']);
    // The message before the edit of the test above is one never loaded: replaced, as there.
    const short = complete();
    const edit = [msg('u2b', 'a1', 'user', 'edited'), msg('a2b', 'u2b', 'assistant')];
    expect(gapProbe(short, edit, { hasMore: true })).toBe('u2b');
    expect(ids(mergeSnapshot(short, conv, edit, { hasMore: true, activeMessageId: '', before: 'a3' }))).toEqual(['u2b', 'a2b']);
    // A page whose oldest message is loaded, or hangs under none loaded, needs no probe.
    expect(gapProbe(t, [t.messages.a3!, ...page], { hasMore: true })).toBeUndefined();
    expect(gapProbe(t, [msg('u9', 'a8', 'user'), msg('a9', 'u9', 'assistant')], { hasMore: true })).toBeUndefined();
  });

  it('a send queued after the old last message is shown, and sent, after the newest message of the page that replaced the thread', () => {
    let t = complete();
    t = addPending(t, 'c9', 'a1', 'sent offline');
    t = queueSend(t, { clientMessageId: 'c9', content: 'sent offline', parentMessageId: 'a1', draftKey: 'c1' });
    expect(t.queued[0]!.parentMessageId).toBe('a1'); // the message the user saw last, until a reload replaces the thread
    t = mergeSnapshot(t, conv, [msg('u4', 'a3', 'user', 'fourth'), msg('a4', 'u4', 'assistant', 'fourth answer')], { hasMore: true, activeMessageId: '' });
    expect(ids(t)).toEqual(['u4', 'a4', PENDING_PREFIX + 'c9']);
    expect(t.queued).toHaveLength(1);
    expect(t.queued[0]!.parentMessageId).toBeUndefined();
  });

  it('a send queued after an older version the reader went back to keeps its parent, through a reload that replaces the thread too, shown after the page; an edit keeps it', () => {
    // Offline, the reader steps back to version 1 of 2 and writes after it; another device continues version 2 past a page.
    let t = complete();
    t = upsertMessage(t, msg('a1b', 'u1', 'assistant', 'hello again'));
    t = selectVersion(t, 'a1');
    t = addPending(t, 'c9', 'a1', 'after the first answer');
    t = queueSend(t, { clientMessageId: 'c9', content: 'after the first answer', parentMessageId: 'a1', draftKey: 'c1' });
    t = addPending(t, 'e1', 'u1', 'an edit');
    t = queueSend(t, { clientMessageId: 'e1', content: 'an edit', parentMessageId: 'u1', draftKey: null });
    expect(t.queued.map((q) => q.parentMessageId)).toEqual(['a1', 'u1']);
    t = mergeSnapshot(t, conv, [msg('u4', 'a3', 'user', 'fourth'), msg('a4', 'u4', 'assistant', 'fourth answer')], { hasMore: true, activeMessageId: '' });
    expect(t.messages.a1).toBeUndefined(); // replaced
    expect(t.queued.map((q) => q.parentMessageId)).toEqual(['a1', 'u1']); // answered after version 1, not after version 2's newest
    expect(ids(t)).toEqual(['u4', 'a4', PENDING_PREFIX + 'c9']); // shown, not lost, until the server's copy comes
    expect(t.messages[PENDING_PREFIX + 'e1']).toBeDefined();
    // Stored under a1, which no loaded page holds: the view starts at it, with its answer.
    t = upsertMessage(t, msg('s9', 'a1', 'user', 'after the first answer', 'complete', { clientMessageId: 'c9' }));
    t = upsertMessage(t, msg('a9', 's9', 'assistant', '', 'streaming'));
    expect(t.queued.map((q) => q.clientMessageId)).toEqual(['e1']);
    expect(ids(t)).toEqual(['s9', 'a9']);
  });
});

describe('the send queue', () => {
  it('a stored copy (message frame or snapshot) ends the wait', () => {
    let t = addPending(newThread('c1'), 'cm1', '', 'hello');
    t = queueSend(t, { clientMessageId: 'cm1', content: 'hello', draftKey: 'c1' });
    expect(isQueued(t, 'local:cm1')).toBe(true);
    expect(queueSend(t, { clientMessageId: 'cm1', content: 'hello', draftKey: 'c1' }).queued).toHaveLength(1);
    const stored = msg('s1', '', 'user', 'hello', 'complete', { clientMessageId: 'cm1' });
    expect(upsertMessage(t, stored).queued).toEqual([]);
    expect(mergeSnapshot(t, conv, [stored]).queued).toEqual([]);
    expect(storedByClientId(upsertMessage(t, stored), 'cm1')).toBe(true);
    expect(unqueue(t, 'cm1').queued).toEqual([]);
  });
});

describe('an answer ended by a shutdown', () => {
  it('is unconfirmed and reloaded until a snapshot or message frame says what was stored', () => {
    const t = streaming('Hi');
    const r = applyDone(t, done('a1', 2, 'interrupted', { error: { code: 'shutdown', message: 'The server restarted' } }));
    expect(r.thread.unconfirmed).toEqual({ a1: true });
    expect(r.result).toBe('gap');
    expect(applyDone(t, done('a1', 2, 'error', { error: { code: 'upstream', message: 'x' } })).thread.unconfirmed).toEqual({});
    const stored = msg('a1', 'u1', 'assistant', 'Hi', 'interrupted');
    expect(mergeSnapshot(r.thread, conv, [stored]).unconfirmed).toEqual({});
    expect(upsertMessage(r.thread, stored).unconfirmed).toEqual({});
  });
});

describe('an answer whose end the server could not confirm stored (unavailable)', () => {
  const unavailable = { error: { code: 'unavailable', message: 'The answer could not be saved.' } };

  it('keeps the text shown, below the done’s seq, and marks it unsaved until a final stored version replaces it', () => {
    const t = applyDelta(streaming('Hel'), delta('a1', 11, 'lo world')).thread;
    const r = applyDone(t, done('a1', 3, 'error', unavailable));
    expect(r.result).toBe('gap');
    expect(r.thread.messages.a1!.content).toBe('Hello world');
    expect(r.thread.unsaved).toEqual({ a1: true });
    // The reload finds it still streaming, with the checkpoint's text: the text shown stays.
    const still = mergeSnapshot(r.thread, conv, [msg('a1', 'u1', 'assistant', 'Hel', 'streaming')]);
    expect(still.messages.a1!.content).toBe('Hello world');
    expect(still.unsaved).toEqual({ a1: true });
    // Stored later with more text than shown (the one case a done claims more): it is taken.
    const more = mergeSnapshot(still, conv, [msg('a1', 'u1', 'assistant', 'Hello world!', 'streaming')]);
    expect(more.messages.a1!.content).toBe('Hello world!');
    // Its final version replaces it, shorter or not.
    const kept = msg('a1', 'u1', 'assistant', 'Hel', 'interrupted', { error: 'lost' });
    expect(mergeSnapshot(more, conv, [kept])).toMatchObject({ unsaved: {}, messages: { a1: { content: 'Hel', status: 'interrupted' } } });
    expect(upsertMessage(more, kept)).toMatchObject({ unsaved: {}, messages: { a1: { content: 'Hel', status: 'interrupted' } } });
    expect(mergeOlder(more, [kept], false)).toMatchObject({ unsaved: {}, messages: { a1: { content: 'Hel' } } });
  });

  it('another error code below the text shown still cuts it', () => {
    const t = applyDelta(streaming('Hel'), delta('a1', 11, 'lo world')).thread;
    const r = applyDone(t, done('a1', 3, 'error', { error: { code: 'internal', message: 'x' } }));
    expect(r.thread.messages.a1!.content).toBe('Hel');
    expect(r.thread.unsaved).toEqual({});
  });
});

describe('a reload after messages were made elsewhere', () => {
  it('follows a version and the messages after it made in another tab while this one was away, as live frames would have', () => {
    const u1 = msg('u1', '', 'user', 'hi');
    const a1 = msg('a1', 'u1', 'assistant', 'first answer', 'streaming');
    let t = mergeSnapshot(newThread('c1'), conv, [u1]);
    t = upsertMessage(t, a1); // streamed here: the shown version
    t = applyDone(t, done('a1', 0)).thread;
    t = upsertMessage(t, { ...a1, content: 'first answer', status: 'complete' });
    expect(activePath(t).map((m) => m.id)).toEqual(['u1', 'a1']);
    // Offline meanwhile: another tab regenerated (a2) and went on from it.
    const a2 = msg('a2', 'u1', 'assistant', 'second answer');
    const u2 = msg('u2', 'a2', 'user', 'and then?');
    const a3 = msg('a3', 'u2', 'assistant', 'then this');
    t = mergeSnapshot(t, conv, [u1, { ...a1, content: 'first answer', status: 'complete' }, a2, u2, a3]);
    expect(activePath(t).map((m) => m.id)).toEqual(['u1', 'a2', 'u2', 'a3']);
    // The reader's own choice of a version holds across later reloads.
    t = stepVersion(t, 'a2', -1);
    t = mergeSnapshot(t, conv, [u1, { ...a1, content: 'first answer', status: 'complete' }, a2, u2, a3]);
    expect(activePath(t).map((m) => m.id)).toEqual(['u1', 'a1']);
  });
});

describe('a reload after an older version was continued elsewhere', () => {
  it('shows the newest exchange, as a fresh load, the export and api.md’s default rule do, so the next send follows it', () => {
    // u1 -> a1 shown (heard live); elsewhere a1 is regenerated twice (a1b, a1c), then the user goes back to a1 and continues it.
    const [u1, a1] = [msg('u1', '', 'user'), msg('a1', 'u1', 'assistant')];
    const before = upsertMessage(mergeSnapshot(newThread('c1'), conv, [u1]), a1);
    const rest = [msg('a1b', 'u1', 'assistant'), msg('a1c', 'u1', 'assistant'), msg('u2', 'a1', 'user'), msg('a2', 'u2', 'assistant')];
    const t = mergeSnapshot(before, conv, [u1, a1, ...rest], { hasMore: false });
    expect(leafOf(t)?.id).toBe('a2');
    expect(ids(t)).toEqual(ids(mergeSnapshot(newThread('c1'), conv, [u1, a1, ...rest])));
    expect(siblings(t, 'a1')).toEqual(['a1', 'a1b', 'a1c']);
  });

  it('keeps the version the reader chose in this tab at a fork the newest message is not under', () => {
    const [u1, a1, a1x] = [msg('u1', '', 'user'), msg('a1', 'u1', 'assistant'), msg('a1x', 'u1', 'assistant')];
    let t = mergeSnapshot(newThread('c1'), conv, [u1, a1, a1x]);
    t = stepVersion(t, 'a1x', -1); // back to version 1
    t = mergeSnapshot(t, conv, [u1, a1, a1x, msg('ux', 'a1x', 'user'), msg('ax', 'ux', 'assistant')]);
    expect(ids(t)).toEqual(['u1', 'a1']);
  });
});

describe('a long conversation', () => {
  /** longChain is a conversation of n messages, each after the one before, loaded as a reader scrolling up would: the newest page, then older pages. */
  function longChain(n: number, page = 500): { t: Thread; all: Message[] } {
    const all = Array.from({ length: n }, (_, i) => msg(`L${i}`, i ? `L${i - 1}` : '', i % 2 ? 'assistant' : 'user', `m${i}`));
    let t = mergeSnapshot(newThread('c1'), conv, all.slice(n - page), { hasMore: true, activeMessageId: '' });
    for (let end = n - page; end > 0; end -= page) t = mergeOlder(t, all.slice(Math.max(0, end - page), end), end - page > 0);
    return { t, all };
  }

  it.each([6000, 12000])('of %i messages shows its whole path, the newest last, and follows a message added live', (n) => {
    const { t, all } = longChain(n);
    const path = activePath(t);
    expect(path).toHaveLength(n);
    expect(path[n - 1]).toBe(t.messages[all[n - 1]!.id]);
    const next = upsertMessage(t, msg('after', all[n - 1]!.id, 'user', 'more'));
    expect(leafOf(next)?.id).toBe('after');
  });

  it('walks a path of 10,000 messages in linear time: ten walks take seconds at most', () => {
    const { t } = longChain(10000);
    const start = performance.now();
    for (let i = 0; i < 10; i++) activePath(t);
    // About 0.1 s each on a loaded 2-core machine; a walk that compared
    // each level's subtree again (quadratic) would take minutes.
    expect(performance.now() - start).toBeLessThan(20000);
  });
});

describe('a tab opened on a paged conversation while an answer ran', () => {
  /** opened is the newest page of a conversation p0..p19, the answer p19 running, as a tab opening then loads it. */
  function opened(): { t: Thread; page: Message[] } {
    const all = Array.from({ length: 20 }, (_, i) => msg(`p${i}`, i ? `p${i - 1}` : '', i % 2 ? 'assistant' : 'user', `m${i}`, i === 19 ? 'streaming' : 'complete'));
    const page = all.slice(10);
    return { t: mergeSnapshot(newThread('c1'), conv, page, { hasMore: true, activeMessageId: 'p19' }), page };
  }

  it.each<[string, (t: Thread) => Thread]>([
    ['its done', (t) => applyDone(t, done('p19', 2)).thread],
    ['a message frame with its final status', (t) => upsertMessage(t, { ...t.messages.p19!, status: 'complete' })],
  ])('follows, once %s ended it, an edit made elsewhere of a message above the page, as a fresh load shows it', (_, end) => {
    const { t: start, page } = opened();
    expect(ids(start)).toEqual(page.map((m) => m.id));
    let t = end(start);
    expect(ids(t)).toEqual(page.map((m) => m.id));
    const edit = msg('e1', 'p3', 'user', 'edited');
    const answer = msg('e2', 'e1', 'assistant', '', 'streaming');
    t = upsertMessage(upsertMessage(t, edit), answer);
    const fresh = mergeSnapshot(newThread('c1'), conv, [...page.map((m) => t.messages[m.id]!), edit, answer], { hasMore: true, activeMessageId: 'e2' });
    expect(ids(fresh)).toEqual(['e1', 'e2']);
    expect(ids(t)).toEqual(ids(fresh));
  });
});
