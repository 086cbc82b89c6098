// What a fork copies, skips and warns about, in words.
import type { CopiedCounts, ForkWarning, SkippedCounts } from '../../types/router';

export const COPIED_LABELS: Record<keyof CopiedCounts, string> = {
  rigs: 'Rigs',
  beads: 'Finished beads (closed or failed)',
  bead_events: 'Events of those beads',
  bead_dependencies: 'Dependencies between them',
  review_metadata: 'Merge request reviews',
  escalation_metadata: 'Escalation records',
  convoy_metadata: 'Landed convoys',
};

export const SKIPPED_LABELS: Record<keyof SkippedCounts, string> = {
  beads_active: 'Beads still open or in progress',
  beads_agent: 'Agent beads',
  beads_message: 'Messages',
  convoys_not_landed: 'Convoys not landed yet',
  bead_events: 'Events of beads not copied',
  bead_dependencies: 'Dependencies on beads not copied',
  agent_metadata: 'Agent state',
  agent_nudges: 'Agent nudges',
  town_events: 'Town events',
};

const SECRET_NAMES: Record<string, string> = {
  github_cli_pat: 'the GitHub CLI token (github_cli_pat)',
  'git_auth.gitlab_token': 'the GitLab token',
  'git_auth.github_token': 'the GitHub token',
  kilocode_token: 'the town API token',
};

export type WarningText = {
  code: string;
  title: string;
  body: string;
  items: string[];
  severity: 'info' | 'caution';
};

type Context = {
  /** Whether the person asked to copy environment variables. */
  includeEnvVars: boolean;
  /** Rig names by id (the source's for a preview, the new town's for a fork). */
  rigNames: Record<string, string>;
  /** A preview says "will", a finished fork "was". */
  done: boolean;
};

function plural(n: number, one: string, many: string): string {
  return `${n.toLocaleString('en')} ${n === 1 ? one : many}`;
}

function leadingCount(message: string): number | null {
  const m = /^(\d+)/.exec(message);
  return m === null || m[1] === undefined ? null : Number(m[1]);
}

export function warningText(warning: ForkWarning, ctx: Context): WarningText {
  const keys = warning.keys ?? [];
  const rigs = (warning.rigIds ?? []).map((id) => ctx.rigNames[id] ?? `rig ${id.slice(0, 8)}`);
  const will = ctx.done ? 'were' : 'will be';
  switch (warning.code) {
    case 'ENV_VARS_COPIED':
      return {
        code: warning.code,
        title: `Environment variables ${will} copied`,
        body:
          'Their values may be secrets (API keys, passwords). Whoever can see secrets in the new town will be able to read them. ' +
          'Untick “Copy environment variables” if they should not go along.',
        items: keys,
        severity: 'caution',
      };
    case 'ENV_VARS_NOT_COPIED':
      return {
        code: warning.code,
        title: `Environment variables ${ctx.done ? 'were not' : 'will not be'} copied`,
        body: ctx.includeEnvVars
          ? 'They are withheld because they may hold secrets, and you may not see this town’s secrets: only its owner (for an organization town, an organization owner or the town’s creator) may copy them. The new town gets none of these variables; set them there yourself.'
          : 'You chose not to copy them. The new town gets none of these variables.',
        items: keys,
        severity: 'info',
      };
    case 'SECRETS_NOT_COPIED':
      return {
        code: warning.code,
        title: 'Secrets are never copied',
        body: 'The new town starts without these; its owner must set them in its settings.',
        items: keys.map((k) => SECRET_NAMES[k] ?? k),
        severity: 'info',
      };
    case 'GIT_CREDENTIALS_MISSING':
      return {
        code: warning.code,
        title: `${plural(rigs.length, 'rig', 'rigs')} ${ctx.done ? 'have' : 'will have'} no git credentials`,
        body: 'No git token could be obtained for the new owner. These rigs will not work until git credentials are configured in the new town’s settings.',
        items: rigs,
        severity: 'caution',
      };
    case 'PARENT_DETACHED': {
      const n = leadingCount(warning.message);
      return {
        code: warning.code,
        title: 'Some beads lose their parent',
        body:
          n === null
            ? warning.message
            : `${plural(n, 'copied bead has a parent', 'copied beads have a parent')} that is not copied (it is still open, or an agent or message bead); in the new town they have no parent.`,
        items: [],
        severity: 'info',
      };
    }
    case 'RIG_UNMAPPED': {
      const n = leadingCount(warning.message);
      return {
        code: warning.code,
        title: 'References to deleted rigs are cleared',
        body:
          n === null
            ? warning.message
            : `${plural(n, 'reference names a rig', 'references name a rig')} that no longer exists; in the new town ${n === 1 ? 'it is' : 'they are'} cleared.`,
        items: [],
        severity: 'info',
      };
    }
    default:
      return { code: warning.code, title: warning.message, body: '', items: [...keys, ...rigs], severity: 'info' };
  }
}

export const PHASE_WORDS: Record<string, string> = {
  export: 'Reading the source town',
  import: 'Copying history',
  indexes: 'Building indexes',
  config: 'Copying settings',
  rigs: 'Setting up rigs',
  publish: 'Publishing the new town',
  done: 'Done',
  failed: 'Failed',
};
