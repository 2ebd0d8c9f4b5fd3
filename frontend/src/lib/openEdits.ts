// The edit boxes open on earlier messages, held outside the elements that
// show them. An element goes with its message: another tab, or an answer
// that arrives, may show another version of that message (the edit box then
// opens again on it: a version shares its parent, and an edit is sent under
// that parent) or another branch where the message is not shown at all (the
// edit's text then goes to the composer: see ChatApp.keepEdits). Either way
// what the user typed is not lost with the element.

/** OpenEdit is an edit box's text and the text of the message it opened on. */
export interface OpenEdit {
  original: string;
  text: string;
}

/** OpenEdits holds the open edit boxes per conversation and parent message. */
export class OpenEdits {
  private readonly byConversation = new Map<string, Map<string, OpenEdit>>();

  /**
   * keep, when given, is told each edit's text worth keeping (changed, not
   * blank) as it is typed, and null once the edit is closed, taken, or no
   * longer worth it: Drafts.keepEdit keeps it in storage, its own slot.
   */
  constructor(private readonly keep?: (conversationId: string, parentId: string, text: string | null) => void) {}

  /** get returns the edit open under parentId in a conversation, if any. */
  get(conversationId: string, parentId: string): OpenEdit | undefined {
    return this.byConversation.get(conversationId)?.get(parentId);
  }

  /** open records an edit box opened on a message whose text is original. */
  open(conversationId: string, parentId: string, original: string): void {
    let edits = this.byConversation.get(conversationId);
    if (!edits) this.byConversation.set(conversationId, (edits = new Map()));
    edits.set(parentId, { original, text: original });
    this.keep?.(conversationId, parentId, null); // an earlier edit's text there, if any, is dropped with it
  }

  /** type records the edit box's text. */
  type(conversationId: string, parentId: string, text: string): void {
    const edit = this.get(conversationId, parentId);
    if (!edit) return;
    edit.text = text;
    this.keep?.(conversationId, parentId, worthKeeping(edit) ? text : null);
  }

  /** close forgets an edit box sent or cancelled. */
  close(conversationId: string, parentId: string): void {
    const edits = this.byConversation.get(conversationId);
    if (!edits?.delete(parentId)) return;
    this.keep?.(conversationId, parentId, null);
    if (edits.size === 0) this.byConversation.delete(conversationId);
  }

  /**
   * take closes the edits of a conversation whose parent is not in shown
   * (all of them without shown) and returns the texts worth keeping: those
   * the user changed, not blank.
   */
  take(conversationId: string, shown?: ReadonlySet<string>): string[] {
    const edits = this.byConversation.get(conversationId);
    if (!edits) return [];
    const kept: string[] = [];
    for (const [parentId, edit] of edits) {
      if (shown?.has(parentId)) continue;
      edits.delete(parentId);
      this.keep?.(conversationId, parentId, null);
      if (worthKeeping(edit)) kept.push(edit.text);
    }
    if (edits.size === 0) this.byConversation.delete(conversationId);
    return kept;
  }

  /** conversations lists the conversations with an edit open. */
  conversations(): string[] {
    return [...this.byConversation.keys()];
  }

  /** clear forgets every edit in memory (the session ended: what is in storage is Drafts' to keep or forget). */
  clear(): void {
    this.byConversation.clear();
  }
}

/** worthKeeping says whether an edit's text is worth keeping: changed by the user, not blank. */
function worthKeeping(edit: OpenEdit): boolean {
  return !!edit.text.trim() && edit.text !== edit.original;
}
