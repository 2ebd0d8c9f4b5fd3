// An answer the server gave with the default model because the
// conversation's model is no longer offered: its ack says so
// (replacedModel, model; protocol.md), and the user is told.

import { describe, expect, it, vi } from 'vitest';
import type { ChatApp } from './chat';
import { CID, message, setup } from './testkit';

const NOTICE = "Model gone is no longer offered; this answer used M. Pick another model in the Model menu at the top of the chat to stop this notice.";

async function connected() {
  const s = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete'), message('a1', 'u1', 'assistant', 'Hello', 'complete', { model: 'gone' })]] });
  s.socket().open();
  await vi.waitFor(() => expect(s.thread()?.loaded && s.app.store.state.models.length).toBe(1));
  return s;
}

describe('an answer by another model than the conversation\'s, no longer offered', () => {
  it.each([
    ['send', (app: ChatApp): void => void app.send('again')],
    ['regenerate', (app: ChatApp): void => void app.regenerate('a1')],
  ] as const)('a %s whose ack names the model replaced tells the user which model answered', async (type, ask) => {
    const { app, socket } = await connected();
    ask(app);
    await vi.waitFor(() => expect(socket().framesOf(type)).toHaveLength(1));
    const frame = socket().framesOf(type)[0]!;
    socket().receive({ type: 'ack', id: frame.id, conversationId: CID, userMessageId: 'u1', messageId: 'a2', replacedModel: 'gone', model: 'm' });
    await vi.waitFor(() => expect(app.store.state.toasts.map((t) => t.text)).toContain(NOTICE));
    expect(app.store.state.toasts.find((t) => t.text === NOTICE)?.kind).toBe('info');
  });

  it('an ack naming no replaced model tells nothing', async () => {
    const { app, socket } = await connected();
    void app.send('again');
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    socket().receive({ type: 'ack', id: socket().framesOf('send')[0]!.id, conversationId: CID, userMessageId: 'u2', messageId: 'a2' });
    await vi.waitFor(() => expect(app.store.state.busy[CID]).toBeUndefined());
    expect(app.store.state.toasts).toEqual([]);
  });
});
