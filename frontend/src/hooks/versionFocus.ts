// Where the focus goes when the reader steps through a message's versions.

import { createContext } from 'react';

/**
 * VersionFocus carries the focus across a switch of versions. Each version
 * is its own message element (keyed by id), so the Previous or Next button
 * pressed goes with the version it belonged to, and the focus fell to the
 * page at every step. The button asks (ask) before switching; the version
 * shown in its place, whose parent is the same (one message per parent on
 * the shown path), takes the request (take) when it mounts.
 */
export class VersionFocus {
  private asked: { parentId: string; dir: -1 | 1 } | null = null;

  /** ask records that the version switch under parentId came from the button of dir. */
  ask(parentId: string, dir: -1 | 1): void {
    this.asked = { parentId, dir };
  }

  /** take returns, once, the direction of the button to focus for a version under parentId, or null. */
  take(parentId: string): -1 | 1 | null {
    const a = this.asked;
    if (!a || a.parentId !== parentId) return null;
    this.asked = null;
    return a.dir;
  }
}

/** VersionFocusContext is the open conversation's VersionFocus (ChatView provides it); null outside one. */
export const VersionFocusContext = createContext<VersionFocus | null>(null);
