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
  /** The pieces of the line not yet ended, in the chunks they came in: joined once when it ends. */
  private pending: string[] = [];
  private pendingCR = false;
  private event = '';
  private data: string[] = [];
  private hasData = false;
  private id: string | undefined;
  private scannedChars = 0;
  /** lastEventId is the last `id:` seen, as EventSource keeps it. */
  lastEventId: string | undefined;

  constructor(private readonly onEvent: (e: SSEEvent) => void) {}

  /**
   * scanned is how many characters feed has looked at for line ends: each
   * once for a LF and once for a CR, however a line is split into chunks
   * (a long data line fed in pieces costs its length, not its length
   * times its pieces).
   */
  get scanned(): number {
    return this.scannedChars;
  }

  /** feed consumes a chunk of decoded text. */
  feed(chunk: string): void {
    let text = chunk;
    if (this.pendingCR) {
      this.pendingCR = false;
      if (text.startsWith('\n')) text = text.slice(1);
    }
    let start = 0;
    let lf = this.find(text, '\n', 0);
    let cr = this.find(text, '\r', 0);
    while (lf >= 0 || cr >= 0) {
      const i = cr < 0 || (lf >= 0 && lf < cr) ? lf : cr;
      this.line(this.ended(text.slice(start, i)));
      start = i + 1;
      if (i === cr) {
        if (start === text.length) this.pendingCR = true;
        else if (start === lf) start++;
      }
      if (lf >= 0 && lf < start) lf = this.find(text, '\n', start);
      if (cr >= 0 && cr < start) cr = this.find(text, '\r', start);
    }
    if (start < text.length) this.pending.push(text.slice(start));
  }

  /** find is text.indexOf(end, from), counting the characters it looks at in scanned. */
  private find(text: string, end: string, from: number): number {
    const at = text.indexOf(end, from);
    this.scannedChars += (at < 0 ? text.length : at + 1) - from;
    return at;
  }

  /** ended returns the line that tail ends: tail after the pieces pending. */
  private ended(tail: string): string {
    if (this.pending.length === 0) return tail;
    this.pending.push(tail);
    const line = this.pending.join('');
    this.pending = [];
    return line;
  }

  /** end flushes nothing: per the spec an event without its blank line is dropped. */
  end(): void {
    this.pending = [];
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
