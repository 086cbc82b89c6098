// The settings form: the config as strings and flags for the inputs, and back to the smallest
// TownConfigUpdate that says what changed. Secrets shown masked (`****abcd`) are sent back
// only when changed, so a masked value never overwrites the stored one.
import type { TownConfig, TownConfigUpdate } from '../../../types/router';

export type EnvRow = { id: number; key: string; value: string };

export type SettingsForm = {
  github_token: string;
  gitlab_token: string;
  gitlab_instance_url: string;
  github_cli_pat: string;
  git_author_name: string;
  git_author_email: string;
  disable_ai_coauthor: boolean;
  env: EnvRow[];
  default_model: string;
  small_model: string;
  role_mayor: string;
  role_refinery: string;
  role_polecat: string;
  max_polecats_per_rig: string;
  merge_strategy: TownConfig['merge_strategy'];
  convoy_merge_mode: TownConfig['convoy_merge_mode'];
  staged_convoys_default: boolean;
  gates: string;
  auto_merge: boolean;
  require_clean_merge: boolean;
  code_review: boolean;
  review_mode: 'rework' | 'comments';
  auto_resolve_pr_feedback: boolean;
  auto_resolve_merge_conflicts: boolean;
  auto_merge_delay_minutes: string;
  instructions_polecat: string;
  instructions_refinery: string;
  instructions_mayor: string;
};

export const INSTRUCTIONS_MAX = 2000;
const MASK = /^\*{4}.{0,4}$/s;

export function isMasked(value: string): boolean {
  return MASK.test(value);
}

let nextRow = 1;
export function envRow(key = '', value = ''): EnvRow {
  return { id: nextRow++, key, value };
}

export function formOf(config: TownConfig): SettingsForm {
  const refinery = config.refinery;
  return {
    github_token: config.git_auth.github_token ?? '',
    gitlab_token: config.git_auth.gitlab_token ?? '',
    gitlab_instance_url: config.git_auth.gitlab_instance_url ?? '',
    github_cli_pat: config.github_cli_pat ?? '',
    git_author_name: config.git_author_name ?? '',
    git_author_email: config.git_author_email ?? '',
    disable_ai_coauthor: config.disable_ai_coauthor,
    env: Object.entries(config.env_vars).map(([k, v]) => envRow(k, v)),
    default_model: config.default_model ?? '',
    small_model: config.small_model ?? '',
    role_mayor: config.role_models?.mayor ?? '',
    role_refinery: config.role_models?.refinery ?? '',
    role_polecat: config.role_models?.polecat ?? '',
    max_polecats_per_rig: config.max_polecats_per_rig === undefined ? '' : String(config.max_polecats_per_rig),
    merge_strategy: config.merge_strategy,
    convoy_merge_mode: config.convoy_merge_mode,
    staged_convoys_default: config.staged_convoys_default,
    gates: (refinery?.gates ?? []).join('\n'),
    auto_merge: refinery?.auto_merge ?? true,
    require_clean_merge: refinery?.require_clean_merge ?? true,
    code_review: refinery?.code_review ?? true,
    review_mode: refinery?.review_mode ?? 'rework',
    auto_resolve_pr_feedback: refinery?.auto_resolve_pr_feedback ?? false,
    auto_resolve_merge_conflicts: refinery?.auto_resolve_merge_conflicts ?? true,
    auto_merge_delay_minutes:
      refinery?.auto_merge_delay_minutes === null || refinery?.auto_merge_delay_minutes === undefined
        ? ''
        : String(refinery.auto_merge_delay_minutes),
    instructions_polecat: config.custom_instructions?.polecat ?? '',
    instructions_refinery: config.custom_instructions?.refinery ?? '',
    instructions_mayor: config.custom_instructions?.mayor ?? '',
  };
}

export type Problems = Partial<Record<keyof SettingsForm | 'env', string>>;

function wholeNumber(text: string): number | null {
  return /^\d+$/.test(text.trim()) ? Number(text.trim()) : null;
}

export function problemsOf(form: SettingsForm): Problems {
  const problems: Problems = {};
  if (form.max_polecats_per_rig.trim() !== '') {
    const n = wholeNumber(form.max_polecats_per_rig);
    if (n === null || n < 1 || n > 50) problems.max_polecats_per_rig = 'A whole number from 1 to 50.';
  }
  if (form.auto_merge_delay_minutes.trim() !== '' && wholeNumber(form.auto_merge_delay_minutes) === null) {
    problems.auto_merge_delay_minutes = 'A whole number of minutes (0 = at once), or empty to turn auto-merge off.';
  }
  for (const role of ['polecat', 'refinery', 'mayor'] as const) {
    const text = form[`instructions_${role}`];
    if (text.length > INSTRUCTIONS_MAX) {
      problems[`instructions_${role}`] = `At most ${INSTRUCTIONS_MAX} characters (this is ${text.length}).`;
    }
  }
  const keys = form.env.map((r) => r.key.trim());
  if (keys.some((k) => k === '')) problems.env = 'Every environment variable needs a name.';
  else if (new Set(keys).size !== keys.length) problems.env = 'Two environment variables have the same name.';
  return problems;
}

function envMap(rows: EnvRow[]): Record<string, string> {
  return Object.fromEntries(rows.map((r) => [r.key.trim(), r.value]));
}

function sameEnv(a: EnvRow[], b: EnvRow[]): boolean {
  const x = envMap(a);
  const y = envMap(b);
  const keys = Object.keys(x);
  return keys.length === Object.keys(y).length && keys.every((k) => k in y && x[k] === y[k]);
}

/** What changed between the loaded form and the edited one, as updateTownConfig takes it. */
export function updateOf(before: SettingsForm, after: SettingsForm): TownConfigUpdate {
  const update: TownConfigUpdate = {};
  const changed = (k: keyof SettingsForm): boolean => before[k] !== after[k];

  if (changed('github_token') || changed('gitlab_token') || changed('gitlab_instance_url')) {
    update.git_auth = {};
    if (changed('github_token')) update.git_auth.github_token = after.github_token;
    if (changed('gitlab_token')) update.git_auth.gitlab_token = after.gitlab_token;
    if (changed('gitlab_instance_url')) update.git_auth.gitlab_instance_url = after.gitlab_instance_url.trim();
  }
  if (changed('github_cli_pat')) update.github_cli_pat = after.github_cli_pat;
  if (changed('git_author_name')) update.git_author_name = after.git_author_name.trim();
  if (changed('git_author_email')) update.git_author_email = after.git_author_email.trim();
  if (changed('disable_ai_coauthor')) update.disable_ai_coauthor = after.disable_ai_coauthor;
  // The whole map replaces the stored one; an unchanged masked value is kept by the server.
  if (!sameEnv(before.env, after.env)) update.env_vars = envMap(after.env);
  if (changed('default_model')) update.default_model = after.default_model.trim();
  if (changed('small_model')) update.small_model = after.small_model.trim();
  if (changed('role_mayor') || changed('role_refinery') || changed('role_polecat')) {
    update.role_models = {};
    if (after.role_mayor.trim() !== '') update.role_models.mayor = after.role_mayor.trim();
    if (after.role_refinery.trim() !== '') update.role_models.refinery = after.role_refinery.trim();
    if (after.role_polecat.trim() !== '') update.role_models.polecat = after.role_polecat.trim();
  }
  if (changed('max_polecats_per_rig')) {
    const n = wholeNumber(after.max_polecats_per_rig);
    if (n !== null) update.max_polecats_per_rig = n;
  }
  if (changed('merge_strategy')) update.merge_strategy = after.merge_strategy;
  if (changed('convoy_merge_mode')) update.convoy_merge_mode = after.convoy_merge_mode;
  if (changed('staged_convoys_default')) update.staged_convoys_default = after.staged_convoys_default;

  const refinery: NonNullable<TownConfigUpdate['refinery']> = {};
  if (changed('gates')) {
    refinery.gates = after.gates
      .split('\n')
      .map((g) => g.trim())
      .filter((g) => g !== '');
  }
  for (const k of [
    'auto_merge',
    'require_clean_merge',
    'code_review',
    'auto_resolve_pr_feedback',
    'auto_resolve_merge_conflicts',
  ] as const) {
    if (changed(k)) refinery[k] = after[k];
  }
  if (changed('review_mode')) refinery.review_mode = after.review_mode;
  if (changed('auto_merge_delay_minutes')) {
    refinery.auto_merge_delay_minutes =
      after.auto_merge_delay_minutes.trim() === '' ? null : wholeNumber(after.auto_merge_delay_minutes);
  }
  if (Object.keys(refinery).length > 0) update.refinery = refinery;

  const instructions: NonNullable<TownConfigUpdate['custom_instructions']> = {};
  for (const role of ['polecat', 'refinery', 'mayor'] as const) {
    const k = `instructions_${role}` as const;
    if (changed(k)) instructions[role] = after[k].trim() === '' ? null : after[k];
  }
  if (Object.keys(instructions).length > 0) update.custom_instructions = instructions;
  return update;
}
