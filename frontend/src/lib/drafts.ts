// The composer's text per conversation: in the store at once, in
// localStorage shortly after (and at once before the page goes away), and
// held in storage while a send is on its way. The other tabs of the browser
// signed in as the same user take what a tab saves (storage events), so a
// conversation open in two tabs shows one text, emptied in both once sent.

import { Persist } from './persist';
import type { AppState } from './state';
import type { Store } from './store';

/** NEW_CHAT is the draft key of a chat that is not created yet. */
export const NEW_CHAT = 'new';

/** draftKey is the composer's key for a conversation id (or a new chat). */
export function draftKey(conversationId: string | null): string {
  return conversationId ?? NEW_CHAT;
}

/** Drafts keeps composer texts. */
export class Drafts {
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(
    private readonly store: Store<AppState>,
    private readonly persist: Persist,
    private readonly saveDelayMs = 200,
  ) {}

  /** load puts a key's stored text into the store once. */
  load(key: string): void {
    if (this.store.state.drafts[key] !== undefined) return;
    const text = this.persist.draft(key);
    this.store.set((s) => ({ ...s, drafts: { ...s.drafts, [key]: text } }));
  }

  /** get returns the composer text of a key, from storage when not loaded yet. */
  get(key: string): string {
    return this.store.state.drafts[key] ?? this.persist.draft(key);
  }

  /** set keeps the text in memory now and in storage shortly. */
  set(key: string, text: string): void {
    this.store.set((s) => ({ ...s, drafts: { ...s.drafts, [key]: text } }));
    clearTimeout(this.timers.get(key));
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        this.persist.saveDraft(key, text);
      }, this.saveDelayMs),
    );
  }

  /**
   * hold empties the composer for a send while keeping text in storage until
   * the server has it: a reload or a closed tab before then finds it again.
   */
  hold(key: string, text: string): void {
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
    this.persist.saveDraft(key, text);
    this.store.set((s) => ({ ...s, drafts: { ...s.drafts, [key]: '' } }));
  }

  /**
   * holdEdit keeps a queued edit's text in storage, after what the composer's
   * storage holds, until the server has it (release): an edit has no
   * composer of its own to empty, and a reload or a closed tab before then
   * finds it again in its conversation's composer.
   */
  holdEdit(key: string, text: string): void {
    const stored = this.persist.draft(key);
    this.persist.saveDraft(key, stored && !stored.includes(text) ? `${stored}\n\n${text}` : stored || text);
  }

  /** release stores the composer's current text in place of a held one (the server has the send). */
  release(key: string): void {
    if (this.timers.has(key)) return; // a save of newer typing is on its way
    this.persist.saveDraft(key, this.store.state.drafts[key] ?? '');
  }

  /**
   * giveBack puts a text that could not be sent back into the composer:
   * alone when it is empty, else after what it holds (unless that holds
   * it already), so that neither is lost.
   */
  giveBack(key: string, text: string): void {
    const now = this.store.state.drafts[key] ?? '';
    if (!now) this.set(key, text);
    else if (!now.includes(text)) this.set(key, `${now}\n\n${text}`);
  }

  /**
   * fromOtherTab takes a composer text another tab saved (a storage event:
   * the key changed and its new value, null when removed). The rule:
   * - only while the saved texts are this tab's user's (Persist's owner):
   *   a tab never shows another user's text, nor one saved before a
   *   sign-in it has not followed yet;
   * - never over typing of this tab not saved yet (a save pending, in the
   *   last saveDelayMs): that save follows and the other tab takes it in
   *   turn, so both end with the last text typed.
   * A text sent in one tab is removed from storage once the server has it
   * (release), which empties the composer of every tab.
   */
  fromOtherTab(storageKey: string | null, text: string | null): void {
    const key = Persist.draftOf(storageKey);
    if (key === null || this.timers.has(key)) return;
    const user = this.store.state.session.user?.id;
    if (!user || this.persist.draftsOwner() !== user) return;
    if (this.store.state.drafts[key] === (text ?? '')) return;
    this.store.set((s) => ({ ...s, drafts: { ...s.drafts, [key]: text ?? '' } }));
  }

  /**
   * claim gives the composer texts to the user signing in: another user's
   * are forgotten, saved or pending (keepUnowned: see Persist.claimDrafts).
   */
  claim(userId: string, keepUnowned = false): void {
    if (this.persist.claimDrafts(userId, keepUnowned)) this.discard();
  }

  /**
   * move hands the text of a composer that goes away (its conversation was
   * deleted) to another one, and forgets it: alone in an empty composer,
   * else after what that one holds (giveBack), so that neither is lost.
   */
  move(from: string, to: string): void {
    const text = this.get(from);
    clearTimeout(this.timers.get(from));
    this.timers.delete(from);
    this.persist.saveDraft(from, '');
    this.store.set((s) => {
      const drafts = { ...s.drafts };
      delete drafts[from];
      return { ...s, drafts };
    });
    if (!text) return;
    this.load(to);
    this.giveBack(to, text);
  }

  /** discard forgets every composer text, saved or pending (a deleted account). */
  discard(): void {
    this.persist.clearDrafts();
    this.drop();
  }

  /**
   * drop forgets the texts in memory, and the saves still pending, leaving
   * storage alone: another user signed in from another tab, who owns it now.
   */
  drop(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.store.set((s) => ({ ...s, drafts: {} }));
  }

  /** flush saves every pending change now (page hiding, signing out). */
  flush(): void {
    for (const [key, timer] of this.timers) {
      clearTimeout(timer);
      this.persist.saveDraft(key, this.store.state.drafts[key] ?? '');
    }
    this.timers.clear();
  }
}
