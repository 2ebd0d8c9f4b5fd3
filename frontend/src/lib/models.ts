// The models of GET /api/models as the picker shows them: grouped under the
// upstream server that serves each, in the server's order.

import type { ModelInfo, Params, UpstreamInfo } from './protocol';

/** ModelGroup is one upstream's models, titled with its label. */
export interface ModelGroup {
  name: string;
  label: string;
  models: readonly ModelInfo[];
}

/** ModelGroups are the models without an upstream (the demo model), then each upstream's. */
export interface ModelGroups {
  ungrouped: readonly ModelInfo[];
  groups: readonly ModelGroup[];
}

/**
 * groupModels sorts models under their upstreams, in the order of the
 * upstreams list; an upstream a model names but the list lacks (an older or
 * partial answer) follows, titled with the model's upstreamLabel. Models
 * keep their order within a group.
 */
export function groupModels(models: readonly ModelInfo[], upstreams: readonly UpstreamInfo[] = []): ModelGroups {
  const ungrouped: ModelInfo[] = [];
  const byName = new Map<string, { label: string; models: ModelInfo[] }>();
  for (const u of upstreams) byName.set(u.name, { label: u.label || u.name, models: [] });
  for (const m of models) {
    if (!m.upstream) {
      ungrouped.push(m);
      continue;
    }
    let g = byName.get(m.upstream);
    if (!g) {
      g = { label: m.upstreamLabel || m.upstream, models: [] };
      byName.set(m.upstream, g);
    }
    g.models.push(m);
  }
  const groups: ModelGroup[] = [];
  for (const [name, g] of byName) if (g.models.length > 0) groups.push({ name, label: g.label, models: g.models });
  return { ungrouped, groups };
}

/** modelLabel is how a model is named in the UI. */
export function modelLabel(m: ModelInfo): string {
  return m.demo ? 'Demo (offline)' : m.name || m.id;
}

/**
 * replacedNotice is the note for an answer the server gave with another
 * model than the conversation's, which it no longer offers (the ack's
 * replacedModel and model; protocol.md), or null when none was replaced.
 * The model answering is named as the picker names it when listed. The
 * conversation keeps its model, so every such answer tells again until
 * the user picks another.
 */
export function replacedNotice(a: { replacedModel?: string; model?: string }, models: readonly ModelInfo[]): string | null {
  if (!a.replacedModel || !a.model) return null;
  const by = models.find((m) => m.id === a.model);
  return `Model ${a.replacedModel} is no longer offered; this answer used ${by ? modelLabel(by) : a.model}. Pick another model in the Model menu at the top of the chat to stop this notice.`;
}

/**
 * currentModel is the model shown as picked for value: the default for ''
 * (none picked), undefined for a model the list lacks (the picker shows it
 * unavailable; neither its demo notice nor its parameters are the default's).
 */
export function currentModel(models: readonly ModelInfo[], value: string): ModelInfo | undefined {
  return value === '' ? models.find((m) => m.default) : models.find((m) => m.id === value);
}

/**
 * newChatModel is the model a new chat is created with for the pick saved
 * for new chats: the pick, or '' (the server's default) when the list,
 * loaded, lacks it, which the server would refuse (400, unknown model).
 * The pick itself is kept: once listed again, new chats use it. An empty
 * list (not loaded yet, or its loads failed) tells nothing: the pick.
 */
export function newChatModel(models: readonly ModelInfo[], pick: string): string {
  if (pick === '' || models.length === 0 || models.some((m) => m.id === pick)) return pick;
  return '';
}

/**
 * withinBound returns params with a maxTokens over model's bound
 * (maxOutputTokens) lowered to it: what a new chat is made with, since
 * the server refuses such a value when the conversation is made, where a
 * conversation switched to that model since keeps its value, capped at
 * each answer. The same params when nothing is over, or the model unknown.
 */
export function withinBound(params: Params | undefined, model: ModelInfo | undefined): Params | undefined {
  const bound = model?.maxOutputTokens;
  if (!params || params.maxTokens === undefined || !bound || params.maxTokens <= bound) return params;
  return { ...params, maxTokens: bound };
}

/** unavailableNotice says that a new chat uses the default model, the one picked (id) not being offered now. */
export function unavailableNotice(id: string): string {
  return `Model ${id} is not available right now: new chats use the default model until it is offered again.`;
}
