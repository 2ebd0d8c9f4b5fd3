// A refusal that asks to wait ("Too many attempts. Try again in 30
// seconds.") is out of date once the wait is over.

import { useEffect, type Dispatch, type SetStateAction } from 'react';
import type { Refusal } from '../lib/account';

/**
 * useWaitOver sets the refusal shown back to null when the wait it asks
 * for (retryAfter seconds) is over, unless another one replaced it before.
 */
export function useWaitOver<R extends Refusal>(refusal: R | null, set: Dispatch<SetStateAction<R | null>>): void {
  useEffect(() => {
    if (!refusal?.retryAfter) return;
    const timer = setTimeout(() => set((now) => (now === refusal ? null : now)), refusal.retryAfter * 1000);
    return () => clearTimeout(timer);
  }, [refusal, set]);
}
