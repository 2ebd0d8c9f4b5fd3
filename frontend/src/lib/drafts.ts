// The texts the user typed and did not send yet, each in its own slot:
// - the composer's text per conversation: in the store at once, in
//   localStorage shortly after (and at once before the page goes away). The
//   other tabs of the browser signed in as the same user take what a tab
//   saves (storage events), so a conversation open in two tabs shows one
//   text, emptied in both once sent;
// - each message on its way (a composer's send or an edit), kept under this
//   page's id until the server has it;
// - each open edit box's text (see openEdits.ts), kept under this page's id.
// Nothing overwrites another: typing while a message is on its way leaves
// that message's slot alone, an edit's slot is not the composer's, and no
// page writes another page's slots. A page takes up the slots of a page
// that is gone (closed, reloaded or crashed before the server had the
// message: pages.ts tells) into the composer of their conversation
// (recover), or the new chat's when it was deleted. They stay in storage
// through an expired session for the same user's return, never through a
// sign-out or a deleted account (discard).

import type { Pages } from './pages';
import { Persist } from './persist';
import type { AppState } from './state';
import type { Store } from './store';

/** NEW_CHAT is the draft key of a chat that is not created yet. */
export const NEW_CHAT = 'new';

/** draftKey is the composer's key for a conversation id (or a new chat). */
export function draftKey(conversationId: string | null): string {
  return conversationId ?? NEW_CHAT;
}

/** Drafts keeps the unsent texts: composer texts, messages on their way, open edits (see the file's comment). */
export class Drafts {
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
  /** The saves of open edit boxes' texts pending, by conversation id and parent id. */
  private readonly editTimers = new Map<string, { conversationId: string; parentId: string; text: string; timer: ReturnType<typeof setTimeout> }>();
  /** The clientMessageIds of the messages this page holds on their way (hold until release or abandon). */
  private readonly holding = new Set<string>();
  /** Those of them whose slot storage took (see stillHeld). */
  private readonly stored = new Set<string>();

  constructor(
    private readonly store: Store<AppState>,
    private readonly persist: Persist,
    private readonly pages: Pages,
    private readonly saveDelayMs = 200,
  ) {}

  /**
   * load puts a key's stored text into the store once; an empty one is not
   * kept (the composer reads storage when the store has no text: get), so
   * opening conversations without typing adds nothing.
   */
  load(key: string): void {
    if (this.store.state.drafts[key] !== undefined) return;
    const text = this.persist.draft(key);
    if (!text) return;
    this.store.set((s) => ({ ...s, drafts: { ...s.drafts, [key]: text } }));
  }

  /**
   * get returns the composer text of a key, from storage when the store
   * has none (not loaded yet, or empty: load), unless the saved texts are
   * another user's than the one signed in here: a page never shows those
   * (its session expired, it shows no composer and keeps them for the
   * next sign-in; a sign-out forgets them).
   */
  get(key: string): string {
    const text = this.store.state.drafts[key];
    if (text !== undefined) return text;
    const owner = this.persist.draftsOwner();
    const user = this.user();
    return user !== undefined && owner !== null && owner !== user ? '' : this.persist.draft(key);
  }

  /** set keeps the text in memory now and in storage shortly. */
  set(key: string, text: string): void {
    this.store.set((s) => ({ ...s, drafts: { ...s.drafts, [key]: text } }));
    clearTimeout(this.timers.get(key));
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        if (this.mayWrite()) this.persist.saveDraft(key, text);
      }, this.saveDelayMs),
    );
  }

  /**
   * setNow is set written to storage at once, not after the save delay:
   * for a text that must not come back if the page is killed in between
   * (a new chat's, once its conversation is made and its message sent).
   */
  setNow(key: string, text: string): void {
    this.set(key, text);
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
    if (this.mayWrite()) this.persist.saveDraft(key, text);
  }

  /**
   * hold keeps the text of a message on its way (clientMessageId) in its
   * own slot until the server has it (release): a reload or a closed tab
   * before then finds it again (recover). fromComposer: the composer of
   * key sent it, and is emptied now (in storage too, so the other tabs'
   * composers empty and a reload does not show it twice); typing there
   * meanwhile does not touch the held text.
   */
  hold(key: string, clientMessageId: string, text: string, fromComposer: boolean): void {
    const slot = { text, at: Date.now(), user: this.user() };
    if (this.mayWrite() && this.persist.saveKept('sending', this.pages.id, key, clientMessageId, slot)) this.stored.add(clientMessageId);
    this.holding.add(clientMessageId);
    if (!fromComposer) return;
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
    if (this.mayWrite()) this.persist.saveDraft(key, '');
    this.store.set((s) => ({ ...s, drafts: { ...s.drafts, [key]: '' } }));
  }

  /** release forgets a held message: the server has it, or its text went back to a composer. */
  release(key: string, clientMessageId: string): void {
    this.persist.saveKept('sending', this.pages.id, key, clientMessageId, null);
    this.holding.delete(clientMessageId);
    this.stored.delete(clientMessageId);
  }

  /**
   * stillHeld says whether a held message's slot is still this page's: a
   * page that took this one for gone (its beat late: pages.ts) may have
   * taken the text into its composer and removed the slot; the message
   * must then not be sent (again) from here too. A text storage refused
   * was never visible to another page: held.
   */
  stillHeld(key: string, clientMessageId: string): boolean {
    if (!this.stored.has(clientMessageId)) return true;
    return this.persist.hasKept('sending', this.pages.id, key, clientMessageId);
  }

  /**
   * reread takes a composer's saved text from storage into the store, for
   * the storage events this page may have missed (it was frozen, or in the
   * back-forward cache): only while the saved texts are this page's user's,
   * and no typing of this page waiting to be saved.
   * It returns whether the composer changed.
   */
  reread(key: string): boolean {
    const shown = this.store.state.drafts[key] ?? ''; // an empty text is not kept (load)
    if (this.timers.has(key)) return false;
    const user = this.store.state.session.user?.id;
    if (!user || this.persist.draftsOwner() !== user) return false;
    const saved = this.persist.draft(key);
    if (saved === shown) return false;
    this.store.set((s) => ({ ...s, drafts: { ...s.drafts, [key]: saved } }));
    return true;
  }

  /**
   * rereadAll rereads every composer text in the store and those of also
   * (the open composer's, which the store may not hold when it was empty):
   * the page is back from the back-forward cache.
   */
  rereadAll(...also: string[]): void {
    for (const key of new Set([...Object.keys(this.store.state.drafts), ...also])) this.reread(key);
  }

  /**
   * forget drops the composer texts of keys from memory: their
   * conversations are no longer kept in this page (ChatApp.trimThreads),
   * and storage holds their texts, read again when they are opened (load).
   * A save pending is written first; a text storage does not hold (it
   * refused it, or this page may not write it: mayWrite) stays, so
   * nothing typed is lost.
   */
  forget(keys: Iterable<string>): void {
    const gone = new Set<string>();
    for (const key of keys) {
      const text = this.store.state.drafts[key];
      if (text === undefined) continue;
      if (this.timers.has(key) && this.mayWrite()) this.saveNow(key);
      if (!this.timers.has(key) && this.persist.draft(key) === text) gone.add(key);
    }
    if (gone.size === 0) return;
    this.store.set((s) => ({ ...s, drafts: Object.fromEntries(Object.entries(s.drafts).filter(([key]) => !gone.has(key))) }));
  }

  /**
   * abandon says this page no longer sends the messages it holds (the
   * session ended with them waiting): their texts are left in storage for
   * recover, in this page too, as those of a page gone.
   */
  abandon(): void {
    this.holding.clear();
    this.stored.clear();
  }

  /**
   * keepEdit keeps an open edit box's text in its own slot shortly (at once
   * before the page goes away); null or a text not worth keeping (see
   * OpenEdits) forgets it at once.
   */
  keepEdit(conversationId: string, parentId: string, text: string | null): void {
    const slot = `${conversationId}.${parentId}`;
    clearTimeout(this.editTimers.get(slot)?.timer);
    this.editTimers.delete(slot);
    if (text === null) {
      this.persist.saveKept('edit', this.pages.id, conversationId, parentId, null);
      return;
    }
    const timer = setTimeout(() => {
      this.editTimers.delete(slot);
      if (this.mayWrite()) this.persist.saveKept('edit', this.pages.id, conversationId, parentId, { text, user: this.user() });
    }, this.saveDelayMs);
    this.editTimers.set(slot, { conversationId, parentId, text, timer });
  }

  /**
   * recover takes up what pages gone left for a conversation (closed,
   * reloaded or crashed before the server had their message, or with an
   * edit box open): a message the server does not have (stored says which
   * it has) and an edit's text go to the conversation's composer, after
   * what it holds, unless it holds them already; their slots are removed.
   * The slots of pages still open are theirs, left alone, and so are this
   * page's, but for messages it no longer sends (abandon). target is the
   * composer they go to: the conversation's, or the new chat's when it was
   * deleted. stored answers
   * undefined when it cannot tell yet (the message, sent at `at`, would be
   * among messages not loaded): that slot is left for a later recover. A
   * slot another user's page wrote (a page not yet told of a sign-in in
   * another tab) is removed, its text not taken. It returns how many texts
   * it gave to the composer.
   */
  async recover(conversationId: string, stored: (clientMessageId: string, at: number) => boolean | undefined, target = conversationId): Promise<number> {
    const here = this.pages.id;
    const sending = this.persist.kept('sending', conversationId).filter((k) => k.page !== here || !this.holding.has(k.id));
    const edits = this.persist.kept('edit', conversationId).filter((k) => k.page !== here);
    if (sending.length === 0 && edits.length === 0) return 0;
    const token = this.store.state.session.token;
    const gone = new Set(await this.pages.gone([...new Set([...sending, ...edits].map((k) => k.page))]));
    gone.add(here); // the slots of this page left above are abandoned
    if (!token || this.store.state.session.token !== token) return 0; // the session ended meanwhile: the next one's storage
    this.load(target);
    let given = 0;
    const user = this.user();
    for (const k of [...sending, ...edits]) {
      if (!gone.has(k.page)) continue;
      const isSend = sending.includes(k);
      const mine = k.user === undefined || k.user === user;
      const has = !mine || (isSend ? stored(k.id, k.at ?? 0) : false);
      if (has === undefined) continue;
      if (!has) {
        if (this.giveBack(target, k.text)) given++;
        this.saveNow(target); // in storage before the slot goes: a hidden tab's timer may never fire
      }
      this.persist.saveKept(isSend ? 'sending' : 'edit', k.page, conversationId, k.id, null);
    }
    return given;
  }

  /**
   * giveBack puts a text that could not be sent back into the composer:
   * alone when it is empty, else after what it holds (unless that holds
   * it already, as whole paragraphs: a "yes" is not in "yes, and…"), so
   * that neither is lost: the text saved for it is read first when this
   * page has not shown that composer yet (a new chat never opened here),
   * else the save would replace it. It returns whether the composer changed.
   */
  giveBack(key: string, text: string): boolean {
    this.load(key);
    const now = this.store.state.drafts[key] ?? '';
    if (!text || `\n\n${now}\n\n`.includes(`\n\n${text}\n\n`)) return false;
    this.set(key, now ? `${now}\n\n${text}` : text);
    return true;
  }

  /** user is the id of this page's user, if signed in. */
  private user(): string | undefined {
    return this.store.state.session.user?.id;
  }

  /**
   * mayWrite says whether this page may write the texts it keeps: not when
   * they are another user's (Persist's owner), signed in from another tab
   * in a way this page has not followed yet.
   */
  private mayWrite(): boolean {
    const owner = this.persist.draftsOwner();
    return owner === null || owner === this.user();
  }

  /** saveNow writes a composer's text to storage at once, its pending save done. */
  private saveNow(key: string): void {
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
    this.persist.saveDraft(key, this.store.state.drafts[key] ?? '');
  }

  /**
   * fromOtherTab takes a composer text another tab saved (a storage event:
   * the key changed and its new value, null when removed). The rule:
   * - only while the saved texts are this tab's user's (Persist's owner):
   *   a tab never shows another user's text, nor one saved before a
   *   sign-in it has not followed yet;
   * - never over typing of this tab not saved yet (a save pending, in the
   *   last saveDelayMs): that save follows and the other tab takes it in
   *   turn, so both end with the last text typed;
   * - only for a composer this tab keeps (kept: its conversation's thread
   *   is kept here, or the new chat's): another's text, in memory, is
   *   forgotten instead (storage has the new one, read when it is opened),
   *   so a tab open for days does not copy every text its other tabs
   *   save. An empty text is not kept (load).
   * A text sent in one tab leaves its composer's slot at once (hold),
   * which empties the composer of every tab.
   */
  fromOtherTab(storageKey: string | null, text: string | null, kept: (key: string) => boolean): void {
    const key = Persist.draftOf(storageKey);
    if (key === null || this.timers.has(key)) return;
    const user = this.store.state.session.user?.id;
    if (!user || this.persist.draftsOwner() !== user) return;
    const now = this.store.state.drafts[key];
    if ((now ?? '') === (text ?? '') || (now === undefined && !kept(key))) return;
    this.store.set((s) => {
      const drafts = { ...s.drafts };
      if (text && kept(key)) drafts[key] = text;
      else delete drafts[key];
      return { ...s, drafts };
    });
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

  /** discard forgets every unsent text, saved or pending: composer texts, messages waiting, open edits (a sign-out, a deleted account). */
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
    for (const e of this.editTimers.values()) clearTimeout(e.timer);
    this.editTimers.clear();
    this.store.set((s) => ({ ...s, drafts: {} }));
  }

  /** flush saves every pending change now (the page hidden or going away, the session expired). */
  flush(): void {
    const write = this.mayWrite(); // not another user's storage: their texts are not this page's to write
    for (const [key, timer] of this.timers) {
      clearTimeout(timer);
      if (write) this.persist.saveDraft(key, this.store.state.drafts[key] ?? '');
    }
    this.timers.clear();
    for (const e of this.editTimers.values()) {
      clearTimeout(e.timer);
      if (write) this.persist.saveKept('edit', this.pages.id, e.conversationId, e.parentId, { text: e.text, user: this.user() });
    }
    this.editTimers.clear();
  }
}
