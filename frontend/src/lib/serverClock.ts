// How far this device's clock is from the server's, read from the Date
// header of the API's answers. The server stamps messages with its own
// clock (createdAt); the waits and thinking counted from them ("Waiting
// for the model… 12 s") are counted on this device's: a clock two minutes
// ahead showed every new answer as waiting for two minutes already.

/** The largest gap taken as clocks in step: the Date header has whole seconds, and the request takes its time. */
const IN_STEP_MS = 2000;

/**
 * The longest round trip an answer is read from: one that took longer (a
 * slow server, a request spanning a sleep of the device) says too little
 * of when the server stamped it, and would take any skew for clocks in step.
 */
const MAX_ROUND_TRIP_MS = 10_000;

let skewMs = 0;

/**
 * noteServerDate reads the Date header of an answer sent at sentAt and
 * received at receivedAt (this device's clock). The clocks are taken as in
 * step unless they differ by more than the header's second, half the
 * round trip and IN_STEP_MS together; the last answer decides, but for one
 * whose round trip took over MAX_ROUND_TRIP_MS, which is passed over.
 */
export function noteServerDate(date: string | null, sentAt: number, receivedAt: number): void {
  const server = date ? Date.parse(date) : NaN;
  if (!Number.isFinite(server) || receivedAt < sentAt || receivedAt - sentAt > MAX_ROUND_TRIP_MS) return;
  const skew = (sentAt + receivedAt) / 2 - (server + 500); // the header's second, at its middle
  skewMs = Math.abs(skew) > IN_STEP_MS + (receivedAt - sentAt) / 2 ? skew : 0;
}

/** serverToClient turns a time of the server's clock (ms since the epoch) into this device's. */
export function serverToClient(serverMs: number): number {
  return serverMs + skewMs;
}

/** resetServerClock takes the clocks as in step again (tests). */
export function resetServerClock(): void {
  skewMs = 0;
}
