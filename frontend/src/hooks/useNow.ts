// A clock for labels that count seconds ("Thinking… 4 s").

import { useEffect, useState } from 'react';

/**
 * useNow returns the time (ms since the epoch), rendering again every
 * intervalMs while intervalMs is positive; with 0 it does not tick.
 */
export function useNow(intervalMs: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (intervalMs <= 0) return;
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}
