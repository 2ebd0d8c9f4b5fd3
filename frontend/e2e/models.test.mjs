// Browser tests of models as people use them now (issue 13): a reasoning
// model's "Thinking" shown live with its time, collapsed once the answer
// starts, resumed after a cut and seen by a second tab; the model picker
// grouped by upstream; per-conversation parameters beside the system
// prompt; and the note under an answer whose prompt left out earlier
// messages. Same stack as chat.test.mjs (real chatd with an upstreams file
// of two upstreams, the real fake OpenAI server, Debian's Chromium);
// screenshots go to test-results/e2e/3x-*.png.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { useStack, waitFor } from './harness.mjs';
import { conversationId, fallbackConnected, lastAnswer, register, send, shot, shown, statusLine, uniqueEmail, waitDone, watch } from './helpers.mjs';

const stack = useStack();

async function newPage(base = stack.base) {
  const context = await stack.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  const seen = watch(page);
  return { context, page, seen, base };
}

/** ask sends a message and waits for its answer to end (not the previous one). */
async function ask(page, text) {
  const answers = async () => (await shown(page)).filter((m) => m.role === 'assistant');
  const before = (await answers()).length;
  await send(page, text);
  await waitFor(async () => (await answers()).length > before, { what: 'the new answer to start' });
  return waitDone(page);
}

/** thinking reads the last answer's Thinking section: state, label and the shown text (null when collapsed). */
function thinking(page) {
  return page.evaluate(() => {
    const el = [...document.querySelectorAll('.msg-assistant')].at(-1)?.querySelector('.thinking');
    if (!el) return null;
    const toggle = el.querySelector('.thinking-toggle');
    return {
      state: el.getAttribute('data-state'),
      label: el.querySelector('.thinking-label')?.textContent ?? '',
      expanded: toggle?.getAttribute('aria-expanded') === 'true',
      text: el.querySelector('.thinking-text')?.textContent ?? null,
    };
  });
}

/** secondsIn reads N from "Thinking… N s" or "Thought for N second(s)" (the tests think for well under 90 s). */
function secondsIn(label) {
  const m = /(\d+) (?:s|seconds?)$/.exec(label);
  return m ? Number(m[1]) : NaN;
}

/** subscribeFrames records the subscribe frames a page writes on its WebSockets. */
function subscribeFrames(page) {
  const frames = [];
  page.on('websocket', (ws) =>
    ws.on('framesent', (e) => {
      try {
        const f = JSON.parse(String(e.payload));
        if (f.type === 'subscribe') frames.push(f);
      } catch {
        // not JSON: not ours
      }
    }),
  );
  return frames;
}

/** conversationOf fetches a conversation over REST with the page's token. */
function conversationOf(page, id) {
  return page.evaluate(async (cid) => {
    const res = await fetch(`/api/conversations/${cid}`, { headers: { Authorization: `Bearer ${localStorage.getItem('chatd.token')}` } });
    return (await res.json()).conversation;
  }, id);
}

describe('a reasoning model', () => {
  test('Thinking shows live with its seconds, collapses when the answer starts, expands afterwards', async () => {
    const { context, page, seen } = await newPage();
    await register(page, stack.base, uniqueEmail('think'));
    await page.getByLabel('Model').selectOption('fake-reasoner');
    await send(page, 'Why is the sky blue? [[fake reasoning=40 tokens=30 delay=100ms]]');

    // Live: open, counting seconds, the reasoning growing, no answer text yet.
    const first = await waitFor(async () => {
      const t = await thinking(page);
      return t?.state === 'thinking' && t.text ? t : null;
    }, { what: 'the Thinking section to show live' });
    assert.equal(first.expanded, true);
    assert.match(first.label, /^Thinking… \d+ s$/);
    const later = await waitFor(async () => {
      const t = await thinking(page);
      return t?.state === 'thinking' && secondsIn(t.label) >= 2 && t.text.length > first.text.length ? t : null;
    }, { what: 'the seconds to count up while the reasoning grows' });
    assert.equal((await lastAnswer(page)).content, '', 'no answer text while thinking');
    await shot(page, '30-thinking-live');

    // The answer starts: collapsed by itself, the time it took.
    const ended = await waitFor(async () => {
      const t = await thinking(page);
      return t?.state === 'done' ? t : null;
    }, { what: 'the thinking to end' });
    assert.equal(ended.expanded, false);
    assert.equal(ended.text, null, 'the reasoning is hidden once the answer starts');
    assert.match(ended.label, /^Thought for \d+ seconds?$/);
    const took = secondsIn(ended.label);
    assert.ok(took >= 3 && took <= 15, `thought for ${took} s (40 chunks 100 ms apart)`);
    assert.ok(secondsIn(later.label) <= took);

    const a = await waitDone(page);
    assert.equal(a.status, 'complete');
    const [reasoning, text] = await Promise.all([stack.expectedReasoning(40), stack.expectedText({ tokens: 30 })]);
    assert.equal(a.reasoning, reasoning);
    assert.equal(a.content, text);
    await shot(page, '31-thinking-collapsed');

    // Expandable afterwards, with the whole reasoning; and again after a reload, from the store.
    await page.getByRole('button', { name: /^Thought for/ }).click();
    const open = await thinking(page);
    assert.equal(open.expanded, true);
    assert.equal(open.text, reasoning);
    await shot(page, '32-thinking-expanded');
    await page.reload();
    await page.locator('.msg-assistant .thinking').waitFor();
    const stored = await thinking(page);
    assert.deepEqual([stored.state, stored.expanded, stored.label], ['done', false, 'Thoughts']);
    await page.getByRole('button', { name: 'Thoughts' }).click();
    assert.equal((await thinking(page)).text, reasoning);
    assert.deepEqual(seen.errors, []);
    await context.close();
  });

  test('a second tab sees the thinking live; a cut socket resumes it from lastReasoningSeq, no gap, no duplicate', async () => {
    const { context, page, seen } = await newPage();
    const subs = subscribeFrames(page);
    await register(page, stack.base, uniqueEmail('think-tabs'));
    await page.getByLabel('Model').selectOption('fake-reasoner');
    await ask(page, 'hello [[fake tokens=3 delay=10ms]]');
    const id = conversationId(page);

    const page2 = await context.newPage();
    const seen2 = watch(page2);
    await page2.goto(`${stack.base}/c/${id}`);
    await waitFor(async () => (await shown(page2)).length === 2, { what: 'tab 2 to load the conversation' });

    await send(page, 'think long [[fake reasoning=80 tokens=20 delay=50ms]]');
    const live2 = await waitFor(async () => {
      const t = await thinking(page2);
      return t?.state === 'thinking' && t.text?.length > 20 ? t : null;
    }, { what: 'tab 2 to show the thinking live' });
    assert.match(live2.label, /^Thinking… \d+ s$/);
    await shot(page2, '33-thinking-second-tab');

    // Cut tab 1 while the model is still thinking.
    const before = await waitFor(async () => {
      const a = await lastAnswer(page);
      return a?.status === 'streaming' && a.reasoning.length > 60 && a.content === '' ? a : null;
    }, { what: 'tab 1 to be mid-thinking' });
    const subsBefore = subs.length;
    await page.evaluate(() => window.__chatd.dropConnection());
    const resumed = await waitFor(() => subs.slice(subsBefore).find((f) => f.messageId === before.id), { what: 'tab 1 to resubscribe' });
    const bytes = Buffer.byteLength(before.reasoning, 'utf8');
    assert.ok(resumed.lastReasoningSeq >= bytes, `resumed from rseq ${resumed.lastReasoningSeq}, ${bytes} bytes held before the cut`);
    await waitFor(async () => (await statusLine(page))?.state === 'connected', { what: 'tab 1 to reconnect' });

    const [a1, a2] = [await waitDone(page), await waitDone(page2)];
    const [reasoning, text] = await Promise.all([stack.expectedReasoning(80), stack.expectedText({ tokens: 20 })]);
    for (const a of [a1, a2]) {
      assert.equal(a.status, 'complete');
      assert.equal(a.reasoning, reasoning);
      assert.equal(a.content, text);
    }
    const t2 = await thinking(page2);
    assert.match(t2.label, /^Thought for \d+ seconds?$/, 'tab 2 watched the thinking and knows how long it took');
    assert.deepEqual([...seen.errors, ...seen2.errors], []);
    await context.close();
  });
});

describe('a reasoning model, stopped', () => {
  test('Stop while the model thinks keeps the thinking so far, collapsed, and says it was stopped', async () => {
    const { context, page, seen } = await newPage();
    await register(page, stack.base, uniqueEmail('think-stop'));
    await page.getByLabel('Model').selectOption('fake-reasoner');
    await send(page, 'stop me [[fake reasoning=200 tokens=20 delay=50ms]]');
    await waitFor(async () => {
      const a = await lastAnswer(page);
      return a?.status === 'streaming' && a.reasoning.length > 30 ? a : null;
    }, { what: 'the model to be thinking' });
    await page.getByRole('button', { name: 'Stop generating' }).click();
    const a = await waitDone(page);
    assert.equal(a.status, 'cancelled');
    assert.equal(a.content, '');
    const full = await stack.expectedReasoning(200);
    assert.ok(a.reasoning.length > 30 && a.reasoning.length < full.length && full.startsWith(a.reasoning), 'the thinking so far is kept');
    const t = await thinking(page);
    assert.equal(t.state, 'done');
    assert.equal(t.expanded, false);
    assert.match(t.label, /^Thought for \d+ seconds?$/);
    await page.locator('.msg-status').filter({ hasText: 'Stopped' }).waitFor();
    await page.reload();
    await page.locator('.msg-assistant .thinking').waitFor();
    assert.equal((await shown(page)).at(-1).reasoning, a.reasoning, 'stored as it was shown');
    await shot(page, '33b-thinking-stopped');
    assert.deepEqual(seen.errors, []);
    await context.close();
  });
});

describe('a reasoning model over the SSE fallback', () => {
  test('with WebSocket upgrades refused, the thinking streams and resumes after a cut from lastReasoningSeq', async () => {
    const { context, page, seen } = await newPage(stack.proxyBase);
    const streams = [];
    page.on('request', (r) => {
      if (r.url().includes('/api/events?')) streams.push(new URL(r.url()).searchParams);
    });
    await register(page, stack.proxyBase, uniqueEmail('think-sse'));
    await fallbackConnected(page);
    await page.getByLabel('Model').selectOption('fake-reasoner');
    await send(page, 'over http [[fake reasoning=60 tokens=20 delay=50ms]]');
    const before = await waitFor(async () => {
      const a = await lastAnswer(page);
      return a?.status === 'streaming' && a.reasoning.length > 40 && a.content === '' ? a : null;
    }, { what: 'the page to be mid-thinking over SSE' });
    assert.equal((await thinking(page)).state, 'thinking');
    const opened = streams.length;
    await page.evaluate(() => window.__chatd.dropConnection());
    const resumed = await waitFor(() => streams.slice(opened).find((q) => q.get('messageId') === before.id), { what: 'the event stream to reopen' });
    assert.ok(Number(resumed.get('lastReasoningSeq')) >= Buffer.byteLength(before.reasoning, 'utf8'), `resumed from ${resumed}`);

    const a = await waitDone(page);
    assert.equal(a.status, 'complete');
    assert.equal(a.reasoning, await stack.expectedReasoning(60));
    assert.equal(a.content, await stack.expectedText({ tokens: 20 }));
    assert.equal(await page.evaluate(() => window.__chatd.transport()), 'sse');
    assert.deepEqual(seen.errors, []);
    await context.close();
  });
});

describe('the model picker', () => {
  test('groups models under their upstream\'s label', async () => {
    const { context, page, seen } = await newPage();
    await register(page, stack.base, uniqueEmail('picker'));
    const picker = page.getByLabel('Model');
    await picker.locator('optgroup').first().waitFor({ state: 'attached' });
    const groups = await picker.evaluate((el) =>
      [...el.querySelectorAll('optgroup')].map((g) => ({ label: g.label, models: [...g.querySelectorAll('option')].map((o) => o.value) })),
    );
    assert.deepEqual(groups, [
      { label: 'Fake AI', models: ['fake-mini', 'fake-large'] },
      { label: 'Local (fake reasoner)', models: ['fake-reasoner', 'fake-tiny'] },
    ]);
    assert.equal(await picker.inputValue(), 'fake-mini');
    await picker.selectOption('fake-reasoner');
    assert.match(await picker.getAttribute('title'), /served by Local \(fake reasoner\)/);
    await shot(page, '34-picker-grouped');
    assert.deepEqual(seen.errors, []);
    await context.close();
  });
});

describe('a model picked right before a regenerate', () => {
  test('answers the regenerate while the PATCH saving the pick is still on its way', async () => {
    const { context, page, seen } = await newPage();
    await register(page, stack.base, uniqueEmail('pick'));
    await ask(page, 'hello [[fake tokens=3 delay=10ms]]');
    const id = conversationId(page);
    const first = await lastAnswer(page);

    // The PATCH is held: the server still has the old model when the regenerate comes.
    const held = [];
    await page.route(/\/api\/conversations\/[0-9a-f]+$/, (route) => (route.request().method() === 'PATCH' ? held.push(route) : route.continue()));
    await page.getByLabel('Model').selectOption('fake-large');
    await waitFor(async () => held.length === 1, { what: 'the PATCH of the pick' });
    assert.equal(await page.getByLabel('Model').inputValue(), 'fake-large', 'the picker shows the pick at once');
    await page.getByRole('button', { name: 'Regenerate answer' }).click();
    await waitFor(async () => (await lastAnswer(page))?.id !== first.id, { what: 'the regenerated answer' });
    await waitDone(page);
    const messages = await page.evaluate(async (cid) => {
      const res = await fetch(`/api/conversations/${cid}`, { headers: { Authorization: `Bearer ${localStorage.getItem('chatd.token')}` } });
      return (await res.json()).messages;
    }, id);
    assert.deepEqual(
      messages.filter((m) => m.role === 'assistant').map((m) => m.model),
      ['fake-mini', 'fake-large'],
    );
    assert.equal((await conversationOf(page, id)).model, 'fake-mini', 'the PATCH has not been taken yet');

    await held[0].continue();
    await waitFor(async () => (await conversationOf(page, id)).model === 'fake-large', { what: 'the pick to be saved' });
    assert.deepEqual(seen.errors, []);
    await context.close();
  });
});

describe('conversation parameters', () => {
  test('edited beside the system prompt: out-of-range values shown inline, saved with PATCH, sent to the model', async () => {
    const { context, page, seen } = await newPage();
    await register(page, stack.base, uniqueEmail('params'));
    await page.getByLabel('Model').selectOption('fake-large');
    await ask(page, 'hello [[fake tokens=3 delay=10ms]]');
    const id = conversationId(page);

    await page.getByRole('button', { name: 'System prompt and parameters' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Temperature').fill('2.5');
    await dialog.getByLabel('Top-p').fill('0');
    await dialog.getByLabel('Max answer tokens').fill('5000');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.getByText('Temperature must be a number from 0 to 2.').waitFor();
    await dialog.getByText('Top-p must be a number above 0 and at most 1.').waitFor();
    await dialog.getByText('Max answer tokens must be a whole number from 1 to 4,096 for this model.').waitFor();
    assert.equal(await dialog.getByLabel('Temperature').getAttribute('aria-invalid'), 'true');
    await shot(page, '35-params-invalid');
    assert.equal((await conversationOf(page, id)).params, undefined, 'nothing was saved');

    await dialog.getByLabel('Temperature').fill('0.3');
    await dialog.getByLabel('Top-p').fill('0.9');
    await dialog.getByLabel('Max answer tokens').fill('7');
    await dialog.getByRole('textbox', { name: 'Stop sequence 1' }).fill('\\n\\nUser:');
    await dialog.getByLabel('System prompt', { exact: true }).fill('Answer briefly.');
    await shot(page, '36-params-valid');
    await page.setViewportSize({ width: 390, height: 844 });
    await shot(page, '36b-params-phone');
    await page.setViewportSize({ width: 1280, height: 800 });
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'detached' });
    const conv = await conversationOf(page, id);
    assert.deepEqual(conv.params, { temperature: 0.3, topP: 0.9, maxTokens: 7, stop: ['\n\nUser:'] });
    assert.equal(conv.systemPrompt, 'Answer briefly.');

    // maxTokens reaches the model: 30 tokens asked of the fake, 7 sent.
    const a = await ask(page, 'cut short [[fake tokens=30 delay=10ms]]');
    assert.equal(a.content, await stack.expectedText({ tokens: 7 }));
    // The answer cut at the limit says so (finishReason "length"), the complete one before it does not.
    const cutNote = page.locator('.msg-assistant').last().locator('[data-finish="length"]');
    assert.equal(await cutNote.innerText(), 'Cut off: the model reached its output limit or its context window. If the conversation is long, a new chat may help.');
    assert.equal(await cutNote.getAttribute('role'), 'note');
    assert.equal(await page.locator('[data-finish]').count(), 1);
    await shot(page, '36c-answer-cut-off');

    // The dialog shows what is stored.
    await page.reload();
    await cutNote.waitFor();
    assert.equal(await page.locator('[data-finish]').count(), 1, 'the note comes back with the stored answer');
    await page.getByRole('button', { name: 'System prompt and parameters' }).click();
    assert.equal(await dialog.getByLabel('Temperature').inputValue(), '0.3');
    assert.equal(await dialog.getByRole('textbox', { name: 'Stop sequence 1' }).inputValue(), '\\n\\nUser:');
    await page.keyboard.press('Escape');
    assert.deepEqual(seen.errors, []);
    await context.close();
  });

  test('a value the server refuses is shown on its field in plain words', async () => {
    const { context, page, seen } = await newPage();
    await register(page, stack.base, uniqueEmail('params-refused'));
    await page.getByLabel('Model').selectOption('fake-large');
    await ask(page, 'hello [[fake tokens=3 delay=10ms]]');
    const id = conversationId(page);
    // The model list cannot be loaded in this tab (the network drops that
    // request), so the page does not know fake-large's bound; the server does.
    await page.route('**/api/models', (route) => route.abort('connectionreset'));
    await page.reload();
    await page.getByLabel('Message', { exact: true }).waitFor();
    assert.equal(await page.getByLabel('Model').count(), 0, 'no picker without a model list');

    await page.getByRole('button', { name: 'System prompt and parameters' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Max answer tokens').fill('999999');
    await dialog.getByRole('button', { name: 'Save' }).click();
    const error = dialog.getByText('Max answer tokens must be at most 4096 for this model (got 999999).');
    await error.waitFor();
    assert.equal(await dialog.getByLabel('Max answer tokens').getAttribute('aria-invalid'), 'true');
    await shot(page, '37-params-refused');
    assert.equal((await conversationOf(page, id)).params, undefined, 'nothing was saved');
    await dialog.getByLabel('Max answer tokens').fill('4096');
    await error.waitFor({ state: 'detached' });
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'detached' });
    assert.deepEqual((await conversationOf(page, id)).params, { maxTokens: 4096 });
    assert.deepEqual(seen.errors, []);
    await context.close();
  });
});

describe('conversations longer than the context window', () => {
  test('an answer whose prompt left out earlier messages says so quietly, with the count on hover', async () => {
    const { context, page, seen } = await newPage();
    await register(page, stack.base, uniqueEmail('omitted'));
    await page.getByLabel('Model').selectOption('fake-tiny');
    // About 100 estimated tokens each: three no longer fit a 400-token window.
    const long = (n) => `Question ${n}: ${'lorem ipsum dolor sit amet '.repeat(11)}[[fake tokens=5 delay=10ms]]`;
    for (const n of [1, 2, 3]) await ask(page, long(n));
    const answers = (await shown(page)).filter((m) => m.role === 'assistant');
    assert.deepEqual(answers.slice(0, 2).map((a) => a.omittedMessages), [0, 0]);
    const omitted = answers[2].omittedMessages;
    assert.ok(omitted >= 1, `the third answer left out ${omitted} messages`);

    const notes = page.locator('.msg-assistant .omitted-note');
    assert.equal(await notes.count(), 1);
    const note = notes.first();
    assert.equal(await note.locator('[aria-hidden="true"]').innerText(), 'Earlier messages were not sent to the model');
    const title = await note.locator('[aria-hidden="true"]').getAttribute('title');
    assert.match(title, new RegExp(`^${omitted} earlier messages? w(as|ere) left out of this answer's prompt`));
    assert.equal(await note.locator('.sr-only').textContent(), `Earlier messages were not sent to the model: ${title}`, 'the count read, not only in the tooltip');
    assert.equal(await page.locator('.msg-assistant').last().locator('.omitted-note').count(), 1);
    await note.hover();
    await shot(page, '38-omitted-note');

    // Stored with the answer: still there after a reload.
    await page.reload();
    await page.locator('.msg-assistant .omitted-note').waitFor();
    assert.equal(await page.locator('.msg-assistant .omitted-note').getAttribute('data-omitted'), String(omitted));
    assert.deepEqual(seen.errors, []);
    await context.close();
  });
});
