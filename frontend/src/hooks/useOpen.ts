// Whether a component is still in the page, for a request it started that
// answers after it was closed.

import { useEffect, useRef, type RefObject } from 'react';

/**
 * useOpen returns a ref that is true while the component is mounted: a
 * dialog closed while its request was on its way reads false once the
 * answer comes, and says a refusal elsewhere instead of in itself.
 */
export function useOpen(): RefObject<boolean> {
  const open = useRef(false);
  useEffect(() => {
    open.current = true;
    return () => {
      open.current = false;
    };
  }, []);
  return open;
}
