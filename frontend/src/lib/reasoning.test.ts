// The reasoning stream inside an answer: its own cursor (rseq) with the
// seq rules of deltas, its end in done, its resume point, snapshots, and
// the Thinking section's times and label.

import { describe, expect, it } from 'vitest';
import type { DeltaFrame, DoneFrame, Message, ReasoningFrame } from './protocol';
import { CATCH_UP_MS, WAIT_NOTICE_MS, endThinking, modelsThatReasoned, reasoningModelName, startThinking, thinkingLabel, reasons, waitLabel, waitStart } from './reasoning';
import { applyDelta, applyDone, applyReasoning, mergeSnapshot, newThread, resumePoint, upsertMessage, type Thread } from './thread';

const T0 = Date.UTC(2026, 0, 1, 0, 0, 0);
const conv = { id: 'c1', title: 't', model: 'm', systemPrompt: '', createdAt: 't0', updatedAt: 't0' };

function msg(id: string, parentId: string, role: Message['role'], content = '', status: Message['status'] = 'complete', extra: Partial<Message> = {}): Message {
  const at = new Date(T0 + (id === 'u1' ? 0 : 1000)).toISOString();
  return { id, conversationId: 'c1', parentId, role, content, status, createdAt: at, updatedAt: at, ...extra };
}

const reasoning = (rseq: number, text: string, messageId = 'a1'): ReasoningFrame => ({ type: 'reasoning', conversationId: 'c1', messageId, rseq, text });
const delta = (seq: number, text: string): DeltaFrame => ({ type: 'delta', conversationId: 'c1', messageId: 'a1', seq, text });
const done = (seq: number, extra: Partial<DoneFrame> = {}): DoneFrame => ({ type: 'done', conversationId: 'c1', messageId: 'a1', seq, status: 'complete', ...extra });

/** streaming is a thread with a question and an answer that has just started (createdAt T0+1s). */
function streaming(extra: Partial<Message> = {}): Thread {
  let t = upsertMessage(newThread('c1'), msg('u1', '', 'user', 'why?'));
  t = upsertMessage(t, msg('a1', 'u1', 'assistant', '', 'streaming', extra));
  return t;
}

/** apply runs frames through the thread, returning each result and the last thread. */
function apply(t: Thread, frames: Array<ReasoningFrame | DeltaFrame>, now = T0 + 2000) {
  const results: string[] = [];
  for (const f of frames) {
    const r = f.type === 'reasoning' ? applyReasoning(t, f, now) : applyDelta(t, f, now);
    results.push(r.result);
    t = r.thread;
  }
  return { t, results };
}

describe('applyReasoning: the rseq cursor', () => {
  const cases: Array<{ name: string; frames: ReasoningFrame[]; results: string[]; reasoning: string; rseq: number }> = [
    {
      name: 'frames that continue exactly are appended, multi-byte text counted in bytes',
      frames: [reasoning(4, 'Let '), reasoning(7, 'me '), reasoning(17, 'ünïcode ')],
      results: ['applied', 'applied', 'applied'],
      reasoning: 'Let me ünïcode ',
      rseq: 17,
    },
    {
      name: 'a frame at or below the cursor is a duplicate',
      frames: [reasoning(4, 'Let '), reasoning(4, 'Let '), reasoning(2, 'Le')],
      results: ['applied', 'duplicate', 'duplicate'],
      reasoning: 'Let ',
      rseq: 4,
    },
    {
      name: 'an overlapping catch-up adds only its new tail',
      frames: [reasoning(4, 'Let '), reasoning(12, 'Let me 🤔 ')],
      results: ['applied', 'applied'],
      reasoning: 'Let me 🤔 ',
      rseq: 12,
    },
    {
      name: 'a frame after a hole is a gap and changes nothing',
      frames: [reasoning(4, 'Let '), reasoning(20, 'think ')],
      results: ['applied', 'gap'],
      reasoning: 'Let ',
      rseq: 4,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { t, results } = apply(streaming(), c.frames);
      expect(results).toEqual(c.results);
      expect(t.messages.a1!.reasoning).toBe(c.reasoning);
      expect(t.messages.a1!.content).toBe('');
      expect(t.rseq.a1).toBe(c.rseq);
    });
  }

  it('keeps the text cursor apart: deltas and reasoning interleave without touching each other', () => {
    const { t, results } = apply(streaming(), [reasoning(4, 'Let '), delta(6, 'Hello '), reasoning(7, 'me '), delta(13, 'héllo ')]);
    expect(results).toEqual(['applied', 'applied', 'applied', 'applied']);
    expect(t.messages.a1).toMatchObject({ reasoning: 'Let me ', content: 'Hello héllo ' });
    expect([t.seq.a1, t.rseq.a1]).toEqual([13, 7]);
  });

  it('a frame for an unknown or ended answer is a gap', () => {
    expect(applyReasoning(streaming(), reasoning(4, 'Let ', 'nope')).result).toBe('gap');
    const ended = applyDone(apply(streaming(), [reasoning(4, 'Let ')]).t, done(0, { rseq: 4 })).thread;
    expect(applyReasoning(ended, reasoning(8, 'more')).result).toBe('gap');
  });
});

describe('resume and end of a reasoning answer', () => {
  it('resumePoint names both cursors once reasoning was applied, and only lastSeq before', () => {
    expect(resumePoint(streaming())).toEqual({ messageId: 'a1', lastSeq: 0 });
    const { t } = apply(streaming(), [reasoning(4, 'Let '), reasoning(7, 'me ')]);
    expect(resumePoint(t)).toEqual({ messageId: 'a1', lastSeq: 0, lastReasoningSeq: 7 });
    const { t: t2 } = apply(t, [delta(6, 'Hello ')]);
    expect(resumePoint(t2)).toEqual({ messageId: 'a1', lastSeq: 6, lastReasoningSeq: 7 });
  });

  it('done whose rseq is beyond the applied reasoning is a gap (reload), one that matches is applied', () => {
    const { t } = apply(streaming(), [reasoning(4, 'Let '), delta(6, 'Hello ')]);
    expect(applyDone(t, done(6, { rseq: 7 })).result).toBe('gap');
    expect(applyDone(t, done(6, { rseq: 4 })).result).toBe('applied');
    expect(applyDone(t, done(6)).result).toBe('applied'); // no rseq: no reasoning expected
  });

  it('done records the messages left out of the prompt; its cursors are forgotten', () => {
    const { t } = apply(streaming(), [reasoning(4, 'Let '), delta(6, 'Hello ')]);
    const r = applyDone(t, done(6, { rseq: 4, omittedMessages: 6 }));
    expect(r.thread.messages.a1).toMatchObject({ status: 'complete', omittedMessages: 6, reasoning: 'Let ' });
    expect(r.thread.rseq.a1).toBeUndefined();
    expect(r.thread.seq.a1).toBeUndefined();
  });

  it('a snapshot older than the live reasoning keeps the longer one; a newer one extends it', () => {
    const { t } = apply(streaming(), [reasoning(7, 'Let me ')]);
    const stale = mergeSnapshot(t, conv, [msg('u1', '', 'user', 'why?'), msg('a1', 'u1', 'assistant', '', 'streaming', { reasoning: 'Let ' })]);
    expect(stale.messages.a1!.reasoning).toBe('Let me ');
    expect(resumePoint(stale)).toEqual({ messageId: 'a1', lastSeq: 0, lastReasoningSeq: 7 });
    const fresh = mergeSnapshot(t, conv, [msg('u1', '', 'user', 'why?'), msg('a1', 'u1', 'assistant', 'Hi', 'streaming', { reasoning: 'Let me think ' })]);
    expect(fresh.messages.a1).toMatchObject({ reasoning: 'Let me think ', content: 'Hi' });
    expect(resumePoint(fresh)).toEqual({ messageId: 'a1', lastSeq: 2, lastReasoningSeq: 13 });
  });

  it('a stored answer keeps its reasoning and omitted count from a snapshot', () => {
    const t = mergeSnapshot(newThread('c1'), conv, [
      msg('u1', '', 'user', 'why?'),
      msg('a1', 'u1', 'assistant', 'Because.', 'complete', { reasoning: 'Let me think ', omittedMessages: 2 }),
    ]);
    expect(t.messages.a1).toMatchObject({ reasoning: 'Let me think ', omittedMessages: 2 });
    expect(t.thinking.a1).toBeUndefined(); // how long it thought is not known
  });
});

describe('thinking times as a tab sees them', () => {
  it('start at the answer\'s createdAt and end at its first text', () => {
    let { t } = apply(streaming(), [reasoning(4, 'Let ')], T0 + 1500);
    expect(t.thinking.a1).toEqual({ start: T0 + 1000, seen: T0 + 1500 });
    ({ t } = apply(t, [reasoning(7, 'me ')], T0 + 4000));
    expect(t.thinking.a1).toEqual({ start: T0 + 1000, seen: T0 + 1500 });
    ({ t } = apply(t, [delta(6, 'Hello ')], T0 + 8000));
    expect(t.thinking.a1).toEqual({ start: T0 + 1000, seen: T0 + 1500, end: T0 + 8000 });
    ({ t } = apply(t, [delta(13, 'héllo ')], T0 + 9000));
    expect(t.thinking.a1!.end).toBe(T0 + 8000);
  });

  it('a catch-up that brings reasoning and text together leaves the duration unknown', () => {
    const now = T0 + 60000;
    const { t } = apply(streaming(), [reasoning(40, 'a'.repeat(40)), delta(6, 'Hello ')], now);
    expect(t.thinking.a1).toBeUndefined();
    const { t: later } = apply(t, [reasoning(44, 'more')], now + 1000);
    expect(later.thinking.a1).toBeUndefined(); // thinking after text does not restart the clock
  });

  it('an answer cancelled while thinking ends its thinking at done', () => {
    const { t } = apply(streaming(), [reasoning(4, 'Let ')], T0 + 1500);
    const r = applyDone(t, { ...done(0, { rseq: 4 }), status: 'cancelled' }, T0 + 5000);
    expect(r.thread.thinking.a1).toEqual({ start: T0 + 1000, seen: T0 + 1500, end: T0 + 5000 });
  });

  it('a snapshot of an answer still thinking starts the clock; a clock ahead of the tab is not trusted', () => {
    const snap = [msg('u1', '', 'user', 'why?'), msg('a1', 'u1', 'assistant', '', 'streaming', { reasoning: 'Let ' })];
    const t = mergeSnapshot(newThread('c1'), conv, snap, {}, T0 + 3000);
    expect(t.thinking.a1).toEqual({ start: T0 + 1000, seen: T0 + 3000 });
    // Its first text, seen a while later, ends it.
    expect(applyDelta(t, delta(6, 'Hello '), T0 + 7000).thread.thinking.a1).toEqual({ start: T0 + 1000, seen: T0 + 3000, end: T0 + 7000 });
    expect(startThinking(undefined, new Date(T0 + 9000).toISOString(), T0 + 5000)).toEqual({ start: T0 + 5000, seen: T0 + 5000 });
    expect(startThinking(undefined, 'not a time', T0 + 5000)).toEqual({ start: T0 + 5000, seen: T0 + 5000 });
  });

  it('endThinking keeps a known end and refuses an end inside the catch-up window', () => {
    const known = { start: T0, seen: T0 + 100, end: T0 + 3000 };
    expect(endThinking(known, T0 + 9000)).toBe(known);
    expect(endThinking({ start: T0, seen: T0 + 100 }, T0 + 100 + CATCH_UP_MS - 1)).toBeUndefined();
    expect(endThinking({ start: T0, seen: T0 + 100 }, T0 + 100 + CATCH_UP_MS)).toEqual({ start: T0, seen: T0 + 100, end: T0 + 100 + CATCH_UP_MS });
    expect(endThinking(undefined, T0)).toBeUndefined();
  });
});

describe('thinkingLabel', () => {
  const cases: Array<{ name: string; times: Parameters<typeof thinkingLabel>[0]; live: boolean; now: number; text: string }> = [
    { name: 'live, counting whole seconds from the start', times: { start: T0, seen: T0 }, live: true, now: T0 + 4900, text: 'Thinking… 4 s' },
    { name: 'live before any time is known', times: undefined, live: true, now: T0, text: 'Thinking… 0 s' },
    { name: 'ended, rounded', times: { start: T0, seen: T0, end: T0 + 6600 }, live: false, now: T0 + 99000, text: 'Thought for 7 seconds' },
    { name: 'ended in under a second reads 1 second', times: { start: T0, seen: T0, end: T0 + 200 }, live: false, now: T0, text: 'Thought for 1 second' },
    { name: 'ended after 89 s, still seconds', times: { start: T0, seen: T0, end: T0 + 89_000 }, live: false, now: T0 + 89_000, text: 'Thought for 89 seconds' },
    { name: 'ended after 125 s reads in minutes, as a wait does', times: { start: T0, seen: T0, end: T0 + 125_000 }, live: false, now: T0 + 125_000, text: 'Thought for 2 minutes' },
    { name: 'ended after 155 s, to the nearest minute', times: { start: T0, seen: T0, end: T0 + 155_000 }, live: false, now: T0 + 155_000, text: 'Thought for 3 minutes' },
    { name: 'duration unknown', times: undefined, live: false, now: T0, text: 'Thoughts' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(thinkingLabel(c.times, c.live, c.now)).toEqual({ text: c.text, live: c.live });
    });
  }
});

describe('silent waits', () => {
  it.each([
    ['o1', true],
    ['o3-mini', true],
    ['o4-mini-high', true],
    ['gpt-5', true],
    ['gpt-6-pro', true],
    ['openai/o3-mini', true],
    ['gpt-5-mini', true],
    ['gpt-5-chat-latest', false],
    ['openai/gpt-5-chat-latest', false],
    ['gpt-4o-mini', false],
    ['llama3.1', false],
    ['demo', false],
    ['', false],
    [undefined, false],
  ])('reasoningModelName(%j) is %s', (id, want) => {
    expect(reasoningModelName(id)).toBe(want);
  });

  it.each([
    ['proxy-think', true, 'marked reasoning in the server list'],
    ['r1', true, 'its answers carried reasoning'],
    ['o3-mini', true, 'its name'],
    ['plain', false, 'listed without the mark'],
    ['unlisted', false, 'nothing known'],
    [undefined, false, 'no model'],
  ] as Array<[string | undefined, boolean, string]>)('reasons(%j) is %s: %s', (id, want) => {
    const models = [{ id: 'proxy-think', reasoning: true }, { id: 'plain' }];
    expect(reasons(id, new Set(['r1']), models)).toBe(want);
  });

  it('learns the models whose answers carried reasoning', () => {
    const got = modelsThatReasoned([
      { role: 'assistant', model: 'r1', reasoning: 'hmm' },
      { role: 'assistant', model: 'plain' },
      { role: 'assistant', model: 'plain2', reasoning: '' },
      { role: 'user', reasoning: 'never' },
    ]);
    expect([...got]).toEqual(['r1']);
  });

  it('says nothing before WAIT_NOTICE_MS, then the words and the seconds', () => {
    expect(waitLabel(false, 1000, 1000 + WAIT_NOTICE_MS - 1)).toEqual({ text: '', seconds: '' });
    expect(waitLabel(false, 1000, 1000 + 12_500)).toEqual({ text: 'Waiting for the model…', seconds: '12 s' });
    expect(waitLabel(true, 1000, 1000 + 65_000)).toEqual({ text: 'Thinking…', seconds: '65 s' });
  });

  it('starts the wait at createdAt, never later than the tab first saw it', () => {
    const at = Date.parse('2026-01-01T00:00:05Z');
    expect(waitStart('2026-01-01T00:00:05Z', at + 3000)).toBe(at);
    expect(waitStart('2026-01-01T00:00:05Z', at - 3000)).toBe(at - 3000); // the server's clock ahead
    expect(waitStart('', 42)).toBe(42);
  });
});
