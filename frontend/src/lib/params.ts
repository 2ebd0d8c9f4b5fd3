// A conversation's sampling parameters as the settings dialog edits them:
// the form's text fields, their checks in plain words (the ranges of
// docs/api.md, refused rather than clamped, as the server does), and the
// server's own refusal (`invalid_field` naming `params.<field>`) read back
// onto the field it names.

import { ApiError } from './api';
import { errorText, sentence } from './errors';
import type { ModelInfo, Params } from './protocol';

/** ParamField names one parameter. */
export type ParamField = 'temperature' | 'topP' | 'maxTokens' | 'stop';

/** PARAM_LABELS are the fields' names as the dialog shows them. */
export const PARAM_LABELS: Readonly<Record<ParamField, string>> = {
  temperature: 'Temperature',
  topP: 'Top-p',
  maxTokens: 'Max answer tokens',
  stop: 'Stop sequences',
};

/** Limits of docs/api.md. */
export const MAX_TEMPERATURE = 2;
export const MAX_STOP_SEQUENCES = 4;
export const MAX_STOP_CHARS = 64;
/** The bound of maxTokens for a model without maxOutputTokens. */
export const MAX_TOKENS_UNKNOWN = 1 << 20;

/** ParamsForm is the dialog's text: "" leaves a parameter to the model's default. */
export interface ParamsForm {
  temperature: string;
  topP: string;
  maxTokens: string;
  /** Stop sequences as typed, with \n, \t and \\ for a line break, a tab and a backslash. */
  stop: readonly string[];
}

/** ParamErrors are the fields' problems in plain words. */
export type ParamErrors = Partial<Record<ParamField, string>>;

/** escapeStop shows a stop sequence in one line: a line break as \n, a tab as \t, a backslash as \\. */
export function escapeStop(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\t/g, '\\t');
}

/** unescapeStop reads a typed stop sequence back (the inverse of escapeStop); other backslashes stay. */
export function unescapeStop(s: string): string {
  return s.replace(/\\(\\|n|t)/g, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : '\\'));
}

/** paramsForm fills the form from stored parameters. */
export function paramsForm(p: Params | undefined): ParamsForm {
  return {
    temperature: p?.temperature === undefined ? '' : String(p.temperature),
    topP: p?.topP === undefined ? '' : String(p.topP),
    maxTokens: p?.maxTokens === undefined ? '' : String(p.maxTokens),
    stop: (p?.stop ?? []).map(escapeStop),
  };
}

/**
 * cappedHint says, for a stored maxTokens above model's bound (the
 * conversation switched to it since), that its answers are capped there;
 * otherwise undefined.
 */
export function cappedHint(maxTokens: string, model: ModelInfo | undefined): string | undefined {
  const bound = model?.maxOutputTokens;
  const t = maxTokens.trim();
  if (!bound || bound <= 0 || !/^\d+$/.test(t) || Number(t) <= bound) return undefined;
  return `Above this model's ${bound.toLocaleString('en-US')}: its answers are capped at ${bound.toLocaleString('en-US')}.`;
}

/** maxTokensBound is the largest maxTokens the model takes. */
export function maxTokensBound(model: ModelInfo | undefined): number {
  return model?.maxOutputTokens && model.maxOutputTokens > 0 ? model.maxOutputTokens : MAX_TOKENS_UNKNOWN;
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function parseDecimal(text: string): number | undefined {
  const t = text.trim();
  return DECIMAL.test(t) ? Number(t) : undefined;
}

function chars(s: string): number {
  return [...s].length;
}

/** ParamsCheck is the form read into parameters, or the problems that keep it from saving. */
export type ParamsCheck = { ok: true; params: Params } | { ok: false; errors: ParamErrors };

/** CheckOptions: how checkParams reads a form. */
export interface CheckOptions {
  /**
   * The form's maxTokens is the one stored, left as it was: it is checked
   * against no model's bound (MAX_TOKENS_UNKNOWN). A conversation switched
   * to a model with a lower bound keeps its value, and the server caps
   * each answer at the bound (docs/api.md): a save of other fields is not
   * refused for it.
   */
  maxTokensKept?: boolean;
}

/**
 * checkParams reads the form into parameters for model, with a message in
 * plain words for every field out of range. Empty fields (and empty stop
 * lines) are left unset.
 */
export function checkParams(form: ParamsForm, model: ModelInfo | undefined, opts: CheckOptions = {}): ParamsCheck {
  const errors: ParamErrors = {};
  const params: Params = {};
  if (form.temperature.trim()) {
    const v = parseDecimal(form.temperature);
    if (v === undefined || v < 0 || v > MAX_TEMPERATURE) errors.temperature = `Temperature must be a number from 0 to ${MAX_TEMPERATURE}.`;
    else params.temperature = v;
  }
  if (form.topP.trim()) {
    const v = parseDecimal(form.topP);
    if (v === undefined || v <= 0 || v > 1) errors.topP = 'Top-p must be a number above 0 and at most 1.';
    else params.topP = v;
  }
  if (form.maxTokens.trim()) {
    const bound = opts.maxTokensKept ? MAX_TOKENS_UNKNOWN : maxTokensBound(model);
    const t = form.maxTokens.trim();
    const v = /^\d+$/.test(t) ? Number(t) : undefined;
    if (v === undefined || v < 1 || v > bound) {
      errors.maxTokens = `Max answer tokens must be a whole number from 1 to ${bound.toLocaleString('en-US')}${bound !== MAX_TOKENS_UNKNOWN ? ' for this model' : ''}.`;
    } else params.maxTokens = v;
  }
  const stop = form.stop.filter((s) => s !== '').map(unescapeStop);
  if (stop.length > MAX_STOP_SEQUENCES) errors.stop = `At most ${MAX_STOP_SEQUENCES} stop sequences.`;
  else {
    // Named by its row as shown (empty rows count there), not its place among those kept.
    const long = form.stop.findIndex((s) => s !== '' && chars(unescapeStop(s)) > MAX_STOP_CHARS);
    if (long >= 0) errors.stop = `Stop sequence ${long + 1} is ${chars(unescapeStop(form.stop[long]!))} characters long; at most ${MAX_STOP_CHARS}.`;
    else if (stop.length > 0) params.stop = stop;
  }
  return Object.keys(errors).length > 0 ? { ok: false, errors } : { ok: true, params };
}

/** sameParams says whether two sets of parameters are equal (absent and empty alike). */
export function sameParams(a: Params | undefined, b: Params | undefined): boolean {
  const sa = a?.stop ?? [];
  const sb = b?.stop ?? [];
  return (
    a?.temperature === b?.temperature &&
    a?.topP === b?.topP &&
    a?.maxTokens === b?.maxTokens &&
    sa.length === sb.length &&
    sa.every((s, i) => s === sb[i])
  );
}

/** isEmptyParams says whether p sets nothing. */
export function isEmptyParams(p: Params | undefined): boolean {
  return sameParams(p, undefined);
}

/** ServerRefusal is a refused save in plain words, with the field it names, if any. */
export interface ServerRefusal {
  field?: ParamField;
  text: string;
}

const FIELD_ERROR = /^params\.(temperature|topP|maxTokens|stop):\s*(.*)$/s;

/**
 * serverRefusal reads a refused save: an `invalid_field` naming
 * `params.<field>` becomes "<Label> <problem>." on that field (for
 * "params.temperature: must be from 0 to 2 (got 2.5)": "Temperature must be
 * from 0 to 2 (got 2.5)."); a rate limit says the save waits; any other
 * error keeps the server's text.
 */
export function serverRefusal(err: unknown): ServerRefusal {
  if (err instanceof ApiError && err.code === 'invalid_field') {
    const m = FIELD_ERROR.exec(err.message);
    if (m) {
      const field = m[1] as ParamField;
      const problem = m[2]!.trim().replace(/\.$/, '');
      return { field, text: `${refusalSubject(field, problem)} ${problem}.` };
    }
  }
  // No answer, or none from chatd (a proxy's bare status, its 500): said as errorText words it.
  // A rate limit refuses no setting: the save is to be asked again later.
  if (err instanceof ApiError && err.status === 429) return { text: `The settings are not saved yet: ${sentence(errorText(err))}` };
  if (err instanceof ApiError) return { text: err.status === 0 || err.status >= 500 ? errorText(err) : `The server refused the settings: ${errorText(err)}` };
  return { text: err instanceof Error ? err.message : String(err) };
}

/**
 * refusalByRow renumbers a server refusal of "Stop sequence N" (N counts the
 * sequences sent, empty rows dropped) by the row as shown in rows, the form's
 * stop rows that were checked and sent, as checkParams numbers its own.
 */
export function refusalByRow(refusal: ServerRefusal, rows: readonly string[]): ServerRefusal {
  if (refusal.field !== 'stop') return refusal;
  return {
    ...refusal,
    text: refusal.text.replace(/^Stop sequence (\d+)\b/, (whole, n: string) => {
      let left = Number(n);
      const row = rows.findIndex((s) => s !== '' && --left === 0);
      return row >= 0 ? `Stop sequence ${row + 1}` : whole;
    }),
  };
}

/** refusalSubject is what a refusal's problem is about: "Stop" for "sequence 2 must be …", else the field's label. */
function refusalSubject(field: ParamField, problem: string): string {
  if (field !== 'stop') return PARAM_LABELS[field];
  return problem.startsWith('sequence ') ? 'Stop' : `${PARAM_LABELS.stop}:`;
}

/** defaultHint describes what an empty field means for model: its default, else the upstream's own. */
export function defaultHint(model: ModelInfo | undefined, field: Exclude<ParamField, 'stop'>): string {
  const v = model?.defaults?.[field];
  return v === undefined ? 'model default' : `default ${v}`;
}
