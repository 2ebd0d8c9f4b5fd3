// Ordering of the server's timestamps. The server writes RFC 3339 times with
// up to nine fractional digits and drops trailing zeros ("…:05Z", "…:05.1Z",
// "…:05.123456789Z"), so comparing them as strings misorders times within
// one second ("05Z" sorts after "05.5Z", "05.1Z" after "05.15Z").

/** Time is a parsed timestamp: milliseconds since the epoch plus the nanoseconds below them. */
export interface Time {
  ms: number;
  /** Nanoseconds within the millisecond, 0..999999. */
  ns: number;
}

const RFC3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:[.,](\d+))?(Z|[+-]\d{2}:\d{2})$/i;

/**
 * parseTime reads an RFC 3339 time at nanosecond precision (any other form
 * Date.parse accepts, at millisecond precision); null when it is not a time.
 */
export function parseTime(s: string): Time | null {
  const m = RFC3339.exec(s.trim());
  if (m) {
    const frac = (m[2] ?? '').padEnd(9, '0');
    const ms = Date.parse(`${m[1]}.${frac.slice(0, 3)}${m[3]!.toUpperCase()}`);
    if (Number.isNaN(ms)) return null;
    return { ms, ns: Number(frac.slice(3, 9)) };
  }
  const ms = Date.parse(s);
  return Number.isNaN(ms) ? null : { ms, ns: 0 };
}

/**
 * compareTimes orders two timestamps: negative when a is earlier than b,
 * positive when later, 0 when equal. A value that is not a time (such as
 * "") is earlier than every time; two such values compare as strings.
 */
export function compareTimes(a: string, b: string): number {
  if (a === b) return 0;
  return compareParsed(parseTime(a), parseTime(b), a, b);
}

/**
 * compareParsed is compareTimes over times already parsed (ta of a, tb of
 * b: parseTime's answers), for a caller that keeps them (thread.ts orders
 * thousands of messages at a time, and parsing is most of the cost).
 */
export function compareParsed(ta: Time | null, tb: Time | null, a: string, b: string): number {
  if (a === b) return 0;
  if (!ta || !tb) {
    if (ta) return 1;
    if (tb) return -1;
    return a < b ? -1 : 1;
  }
  if (ta.ms !== tb.ms) return ta.ms < tb.ms ? -1 : 1;
  return ta.ns === tb.ns ? 0 : ta.ns < tb.ns ? -1 : 1;
}

/**
 * formatDuration says a duration in words, the app's one style for them:
 * whole seconds under 90 s ("1 second", "45 seconds"), else whole minutes
 * ("2 minutes"). round 'up' is for a wait (never shorter than the real one,
 * so the reader does not try too early); 'nearest' is for time spent.
 */
export function formatDuration(seconds: number, round: 'up' | 'nearest'): string {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = round === 'up' ? Math.ceil(seconds / 60) : Math.round(seconds / 60);
  return `${minutes} minutes`;
}
