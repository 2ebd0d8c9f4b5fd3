import { describe, expect, it } from 'vitest';
import type { Message } from '../lib/protocol';
import { CID, conv, message } from '../lib/testkit';
import { applyDelta, mergeSnapshot, newThread, selectVersion, upsertMessage, type Thread } from '../lib/thread';
import { threadView } from './useThreadView';

/** chain is a conversation of n finished messages, one after the other, and an answer streaming after them. */
function chain(n: number): Thread {
  const id = (i: number) => `m${String(i).padStart(4, '0')}`;
  const at = (i: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString();
  const msgs: Message[] = Array.from({ length: n }, (_, i) => message(id(i), i ? id(i - 1) : '', i % 2 ? 'assistant' : 'user', `Message ${i}`, 'complete', { createdAt: at(i) }));
  msgs.push(message('a1', id(n - 1), 'assistant', 'Hel', 'streaming', { createdAt: at(n) }));
  return mergeSnapshot(newThread(CID), conv(CID, 'T', '2026-01-01T00:00:00Z'), msgs);
}

/** ids are the ids of a view's messages, with their version positions. */
const ids = (v: { shown: { message: Message; version: number; versions: number }[] }) => v.shown.map((s) => `${s.message.id} ${s.version}/${s.versions}`);

describe('threadView', () => {
  it('after a delta keeps every finished entry as it was (the same object), replacing only the answer\'s', () => {
    const t = chain(2000);
    const before = threadView(undefined, t);
    const { thread } = applyDelta(t, { type: 'delta', conversationId: CID, messageId: 'a1', seq: 5, text: 'lo' });
    const after = threadView(before, thread);
    expect(after.shown).toHaveLength(2001);
    expect(after.shown.slice(0, 2000).every((s, i) => s === before.shown[i])).toBe(true);
    expect(after.shown[2000]!.message.content).toBe('Hello');
    expect(after.shown[2000]!.message).toBe(thread.messages.a1);
    // A thread whose messages did not change (a thinking time, a cursor) gives the same list.
    expect(threadView(after, { ...thread, seq: { a1: 5 } }).shown).toBe(after.shown);
  });

  /** older puts a second, older version of the answer m0003 under m0002, none chosen: the newest is shown. */
  const older = (t: Thread): Thread => ({ ...upsertMessage(t, message('b1', 'm0002', 'assistant', 'Other', 'complete', { createdAt: '2025-01-01T00:00:00Z' })), selected: {} });

  it.each<[string, (t: Thread) => Thread]>([
    ['another version chosen', (t) => selectVersion(t, 'b1')],
    ['a message added', (t) => upsertMessage(t, message('u9', 'a1', 'user', 'More', 'complete', { createdAt: '2027-01-01T00:00:00Z' }))],
    ['a version\'s time changed (the newest one is shown)', (t) => ({ ...t, messages: { ...t.messages, b1: { ...t.messages.b1!, createdAt: '2027-01-01T00:00:00Z' } } })],
    ['a message gone', (t) => {
      const { a1: _, ...messages } = t.messages;
      return { ...t, messages };
    }],
  ])('walks the tree again when the path may change: %s', (_name, change) => {
    const t = older(chain(6));
    const before = threadView(undefined, t);
    const next = change(t);
    const view = threadView(before, next);
    expect(ids(view)).not.toEqual(ids(before));
    expect(ids(view)).toEqual(ids(threadView(undefined, next))); // as walked from scratch
  });
});

describe('threadView of a long conversation', () => {
  it('shows a path of 6,000 messages (a walk that recursed once a message overflowed the stack)', () => {
    const view = threadView(undefined, chain(6000));
    expect(view.shown).toHaveLength(6001);
    expect(view.shown[6000]!.message.id).toBe('a1');
  });
});
