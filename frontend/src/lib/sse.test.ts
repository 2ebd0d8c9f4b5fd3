import { describe, expect, it } from 'vitest';
import { SSEParser, readSSE, type SSEEvent } from './sse';

function parseAll(chunks: string[]): { events: SSEEvent[]; parser: SSEParser } {
  const events: SSEEvent[] = [];
  const parser = new SSEParser((e) => events.push(e));
  for (const c of chunks) parser.feed(c);
  return { events, parser };
}

describe('SSEParser', () => {
  it('parses typed events with ids', () => {
    const { events, parser } = parseAll(['event: delta\nid: 12\ndata: {"seq":12}\n\n']);
    expect(events).toEqual([{ event: 'delta', data: '{"seq":12}', id: '12' }]);
    expect(parser.lastEventId).toBe('12');
  });

  it('joins multi-line data and defaults the event name', () => {
    const { events } = parseAll(['data: a\ndata: b\n\n']);
    expect(events).toEqual([{ event: 'message', data: 'a\nb', id: undefined }]);
  });

  it('ignores comments (keep-alives) and unknown fields', () => {
    const { events } = parseAll([': ping\n\nretry: 100\nfoo: bar\ndata: x\n\n']);
    expect(events.map((e) => e.data)).toEqual(['x']);
  });

  it('handles CRLF and CR line ends', () => {
    const { events } = parseAll(['event: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\r']);
    expect(events.map((e) => [e.event, e.data])).toEqual([
      ['a', '1'],
      ['b', '2'],
    ]);
  });

  it('handles chunks split anywhere, including inside CRLF', () => {
    const text = 'event: delta\r\nid: 5\r\ndata: {"text":"héllo"}\r\n\r\nevent: done\r\ndata: {}\r\n\r\n';
    for (let cut = 1; cut < text.length; cut++) {
      const { events } = parseAll([text.slice(0, cut), text.slice(cut)]);
      expect(events.map((e) => e.event), `cut at ${cut}`).toEqual(['delta', 'done']);
      expect(events[0]!.data).toBe('{"text":"héllo"}');
    }
  });

  it('looks at each character once however a line is split: a data line of 1 MiB in 64 KiB pieces, then lines split across pieces', () => {
    const long = 'x'.repeat(1 << 20);
    const text = `id: 1\ndata: ${long}\r\n\r\n` + 'event: delta\rdata: a\r\rdata: b\n\n'.repeat(1000);
    const chunks: string[] = [];
    for (let i = 0; i < text.length; i += 64 << 10) chunks.push(text.slice(i, i + (64 << 10)));
    const { events, parser } = parseAll(chunks);
    expect(events).toHaveLength(2001);
    expect(events[0]).toEqual({ event: 'message', data: long, id: '1' });
    expect(events.slice(-2)).toEqual([
      { event: 'delta', data: 'a', id: undefined },
      { event: 'message', data: 'b', id: undefined },
    ]);
    // Each character once for each line end (a \n after a \r ending a
    // chunk is dropped before the search): rescanning what waits from its
    // start at each piece looked at 9 times as many.
    expect(parser.scanned).toBeLessThanOrEqual(2 * text.length);
    expect(parser.scanned).toBeGreaterThan(2 * (text.length - chunks.length));
  });

  it('keeps only one leading space after the colon, and allows no space', () => {
    const { events } = parseAll(['data:x\n\ndata:  y\n\n']);
    expect(events.map((e) => e.data)).toEqual(['x', ' y']);
  });

  it('drops an event without its blank line at the end', () => {
    const { events, parser } = parseAll(['data: complete\n\ndata: partial\n']);
    parser.end();
    expect(events.map((e) => e.data)).toEqual(['complete']);
  });

  it('does not dispatch events without data', () => {
    const { events, parser } = parseAll(['id: 7\n\n']);
    expect(events).toEqual([]);
    expect(parser.lastEventId).toBe('7');
  });
});

describe('readSSE', () => {
  it('decodes UTF-8 split across network chunks', async () => {
    const bytes = new TextEncoder().encode('event: delta\ndata: {"text":"中文🙂"}\n\n');
    const body = new ReadableStream<Uint8Array>({
      start(ctrl) {
        for (let i = 0; i < bytes.length; i += 3) ctrl.enqueue(bytes.slice(i, i + 3));
        ctrl.close();
      },
    });
    const events: SSEEvent[] = [];
    await readSSE(body, (e) => events.push(e));
    expect(events).toEqual([{ event: 'delta', data: '{"text":"中文🙂"}', id: undefined }]);
  });

  it('keeps a U+FEFF of the answer at a chunk\'s start: only a byte order mark opening the stream is dropped (the spec\'s decode)', async () => {
    const enc = new TextEncoder();
    const chunks = [enc.encode('\uFEFFdata: a\n\n'), enc.encode('data: '), enc.encode('\uFEFFb\n\n')];
    const body = new ReadableStream<Uint8Array>({
      start(ctrl) {
        for (const c of chunks) ctrl.enqueue(c);
        ctrl.close();
      },
    });
    const events: SSEEvent[] = [];
    await readSSE(body, (e) => events.push(e));
    expect(events.map((e) => e.data)).toEqual(['a', '\uFEFFb']);
  });

  it('rejects when the stream errors (a cut connection)', async () => {
    const body = new ReadableStream<Uint8Array>({
      start(ctrl) {
        ctrl.enqueue(new TextEncoder().encode('data: one\n\n'));
        ctrl.error(new Error('network'));
      },
    });
    const events: SSEEvent[] = [];
    await expect(readSSE(body, (e) => events.push(e))).rejects.toThrow('network');
  });
});
