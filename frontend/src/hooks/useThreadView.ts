// Derived view of the open conversation: the shown path and version info.

import { useMemo } from 'react';
import type { Message } from '../lib/protocol';
import { activePath, siblings, type Thread } from '../lib/thread';

/** ShownMessage is one message of the shown path with its version position. */
export interface ShownMessage {
  message: Message;
  /** 1-based index among its versions, and how many there are. */
  version: number;
  versions: number;
}

/** useThreadView returns the shown path of a thread, memoised on the thread value. */
export function useThreadView(thread: Thread | undefined): ShownMessage[] {
  return useMemo(() => {
    if (!thread) return [];
    return activePath(thread).map((message) => {
      const list = siblings(thread, message.id);
      return { message, version: list.indexOf(message.id) + 1, versions: list.length };
    });
  }, [thread]);
}
