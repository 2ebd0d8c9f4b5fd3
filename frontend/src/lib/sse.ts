// A Server-Sent Events parser for streams read with fetch + ReadableStream
// (EventSource cannot send an Authorization header).

/** One dispatched event. `event` defaults to "message". */
export interface SSEEvent {
  event: string;
  data: string;
  id: string | undefined;
}

/**
 * SSEParser turns text chunks, split anywhere, into events, following the
 * WHATWG event-stream rules: LF, CR or CRLF line ends, `:` comments,
 * multi-line `data`, one optional space after the colon, dispatch on a blank line.
 */
export class SSEParser {
  private buf = '';
  private pendingCR = false;
  private event = '';
  private data: string[] = [];
  private hasData = false;
  private id: string | undefined;
  /** lastEventId is the last `id:` seen, as EventSource keeps it. */
  lastEventId: string | undefined;

  constructor(private readonly onEvent: (e: SSEEvent) => void) {}

  /** feed consumes a chunk of decoded text. */
  feed(chunk: string): void {
    let text = chunk;
    if (this.pendingCR) {
      this.pendingCR = false;
      if (text.startsWith('\n')) text = text.slice(1);
    }
    this.buf += text;
    let start = 0;
    for (let i = 0; i < this.buf.length; i++) {
      const c = this.buf[i];
      if (c !== '\n' && c !== '\r') continue;
      this.line(this.buf.slice(start, i));
      if (c === '\r') {
        if (i + 1 === this.buf.length) this.pendingCR = true;
        else if (this.buf[i + 1] === '\n') i++;
      }
      start = i + 1;
    }
    this.buf = this.buf.slice(start);
  }

  /** end flushes nothing: per the spec an event without its blank line is dropped. */
  end(): void {
    this.buf = '';
    this.reset();
  }

  private line(line: string): void {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.event = value;
        break;
      case 'data':
        this.data.push(value);
        this.hasData = true;
        break;
      case 'id':
        if (!value.includes('\0')) this.id = value;
        break;
      default:
        break; // retry and unknown fields are ignored
    }
  }

  private dispatch(): void {
    if (this.id !== undefined) this.lastEventId = this.id;
    if (this.hasData) {
      this.onEvent({ event: this.event || 'message', data: this.data.join('\n'), id: this.id });
    }
    this.reset();
  }

  private reset(): void {
    this.event = '';
    this.data = [];
    this.hasData = false;
    this.id = undefined;
  }
}

/**
 * readSSE reads an event-stream body to its end, calling onEvent for each
 * event, and onBytes for every chunk read (comment lines included: the
 * server's keep-alives show the stream is alive). It resolves when the
 * stream ends and rejects when reading fails (network cut, abort).
 */
export async function readSSE(
  body: ReadableStream<Uint8Array>,
  onEvent: (e: SSEEvent) => void,
  onBytes?: () => void,
): Promise<void> {
  const parser = new SSEParser(onEvent);
  const decoder = new TextDecoder();
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      onBytes?.();
      parser.feed(decoder.decode(value, { stream: true }));
    }
    parser.feed(decoder.decode());
  } finally {
    parser.end();
    reader.releaseLock();
  }
}
