import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent, type ReactNode } from 'react';

import type { OrgTown, Town, TownConfig } from '../../../types/router';
import { Link, townPath } from '../../app/router';
import { useSession } from '../../app/session';
import { standingOf, type Standing } from '../../app/standing';
import { useTRPC, useTRPCClient } from '../../app/trpc';
import { ErrorBox } from '../../components/ErrorBox';
import { Loading } from '../../components/Loading';
import { PageTitle } from '../../components/PageTitle';
import { ForkDialog } from '../../fork/ForkDialog';
import { EnvVarsEditor } from './EnvVarsEditor';
import { AreaField, CheckField, ChoiceField, SecretField, TextField } from './fields';
import { INSTRUCTIONS_MAX, formOf, problemsOf, updateOf, type SettingsForm } from './form';

export function SettingsPage({ townId }: { townId: string }) {
  const trpc = useTRPC();
  const { identity } = useSession();
  const town = useQuery(trpc.gastown.getTown.queryOptions({ townId }));
  const config = useQuery(trpc.gastown.getTownConfig.queryOptions({ townId }));

  if (town.isPending || (town.isSuccess && config.isPending)) return <Loading label="Loading the settings…" />;
  if (town.isError) {
    return (
      <div className="page">
        <PageTitle title="Settings" />
        <ErrorBox error={town.error} what="Could not open this town." onRetry={() => void town.refetch()} />
        <p>
          <Link to="/">Back to your towns</Link>
        </p>
      </div>
    );
  }
  const standing = standingOf(town.data, identity);
  return (
    <div className="page">
      <nav aria-label="Breadcrumb" className="breadcrumb">
        <Link to="/">Towns</Link> <span aria-hidden="true">/</span>{' '}
        <Link to={townPath(townId)}>{town.data.name}</Link> <span aria-hidden="true">/</span>{' '}
        <span aria-current="page">Settings</span>
      </nav>
      <PageTitle title={`${town.data.name}: settings`}>
        Settings <span className="muted">of {town.data.name}</span>
      </PageTitle>
      {config.isError ? (
        <ErrorBox error={config.error} what="Could not load the settings." onRetry={() => void config.refetch()} />
      ) : config.data !== undefined ? (
        <SettingsEditor town={town.data} config={config.data} standing={standing} />
      ) : null}
    </div>
  );
}

function Section({ id, title, children, intro }: { id: string; title: string; children: ReactNode; intro?: string }) {
  return (
    <section className="card settings-section" aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      {intro !== undefined && <p className="muted">{intro}</p>}
      {children}
    </section>
  );
}

function SettingsEditor({ town, config, standing }: { town: Town | OrgTown; config: TownConfig; standing: Standing }) {
  const trpc = useTRPC();
  const client = useTRPCClient();
  const queryClient = useQueryClient();
  const [loaded, setLoaded] = useState(() => formOf(config));
  const [form, setForm] = useState(loaded);
  const [forking, setForking] = useState(false);
  const [savedAt, setSavedAt] = useState<number | null>(null);
  const editable = standing.canConfigure;
  const problems = problemsOf(form);
  const update = updateOf(loaded, form);
  const dirty = Object.keys(update).length > 0;

  const save = useMutation({
    mutationFn: () => client.gastown.updateTownConfig.mutate({ townId: town.id, config: update }),
    onSuccess: (saved) => {
      queryClient.setQueryData(trpc.gastown.getTownConfig.queryKey({ townId: town.id }), saved);
      const next = formOf(saved);
      setLoaded(next);
      setForm(next);
      setSavedAt(Date.now());
    },
  });

  function set<K extends keyof SettingsForm>(key: K): (value: SettingsForm[K]) => void {
    return (value) => {
      setSavedAt(null);
      setForm((f) => ({ ...f, [key]: value }));
    };
  }

  function submit(event: FormEvent): void {
    event.preventDefault();
    if (!editable || Object.keys(problems).length > 0 || !dirty) return;
    save.mutate();
  }

  return (
    <>
      {!editable && (
        <p className="notice" role="note">
          {standing.adminView
            ? 'You are viewing this town as an admin: the settings are read only, and secrets are masked.'
            : 'You can see these settings but not change them: only the town’s owner (for an organization town, an organization owner or the town’s creator) can. Secrets are masked.'}
        </p>
      )}
      <form onSubmit={submit} noValidate className="settings-form">
        <fieldset disabled={!editable} className="plain">
          <Section id="git-auth" title="Git authentication" intro="Tokens the agents use to push and open pull requests.">
            <SecretField label="GitHub token" value={form.github_token} onChange={set('github_token')} editable={editable} />
            <SecretField label="GitLab token" value={form.gitlab_token} onChange={set('gitlab_token')} editable={editable} />
            <TextField
              label="GitLab instance URL"
              type="url"
              value={form.gitlab_instance_url}
              onChange={set('gitlab_instance_url')}
              placeholder="https://gitlab.com"
            />
            <SecretField
              label="GitHub CLI token (github_cli_pat)"
              value={form.github_cli_pat}
              onChange={set('github_cli_pat')}
              editable={editable}
            />
          </Section>

          <Section id="commit-identity" title="Commit identity">
            <TextField label="Git author name" value={form.git_author_name} onChange={set('git_author_name')} />
            <TextField
              label="Git author email"
              type="email"
              value={form.git_author_email}
              onChange={set('git_author_email')}
            />
            <CheckField
              label="Leave out the AI co-author line"
              checked={form.disable_ai_coauthor}
              onChange={set('disable_ai_coauthor')}
            />
          </Section>

          <Section
            id="env-vars"
            title="Environment variables"
            intro="Given to every agent of this town. Values may be secrets."
          >
            <EnvVarsEditor rows={form.env} onChange={set('env')} editable={editable} problem={problems.env} />
          </Section>

          <Section id="agent-defaults" title="Agent defaults">
            <TextField label="Default model" value={form.default_model} onChange={set('default_model')} />
            <TextField label="Small model" value={form.small_model} onChange={set('small_model')} />
            <div className="grid-3">
              <TextField label="Mayor model" value={form.role_mayor} onChange={set('role_mayor')} />
              <TextField label="Refinery model" value={form.role_refinery} onChange={set('role_refinery')} />
              <TextField label="Polecat model" value={form.role_polecat} onChange={set('role_polecat')} />
            </div>
            <TextField
              label="Most polecats per rig"
              inputMode="numeric"
              value={form.max_polecats_per_rig}
              onChange={set('max_polecats_per_rig')}
              help="1 to 50; empty for the default."
              problem={problems.max_polecats_per_rig}
            />
          </Section>

          <Section id="merge-strategy" title="Merge strategy">
            <ChoiceField
              label="How finished work lands"
              value={form.merge_strategy}
              onChange={set('merge_strategy')}
              options={[
                ['pr', 'Open a pull request'],
                ['direct', 'Merge directly into the branch'],
              ]}
            />
            <ChoiceField
              label="Convoys"
              value={form.convoy_merge_mode}
              onChange={set('convoy_merge_mode')}
              options={[
                ['review-then-land', 'Review each bead, then land the convoy'],
                ['review-and-merge', 'Review and merge each bead as it is done'],
              ]}
            />
            <CheckField
              label="New convoys start staged"
              checked={form.staged_convoys_default}
              onChange={set('staged_convoys_default')}
            />
          </Section>

          <Section id="refinery" title="Refinery" intro="What checks and reviews a merge request before it lands.">
            <AreaField
              label="Gates (one command per line)"
              value={form.gates}
              onChange={set('gates')}
              rows={3}
            />
            <CheckField label="Auto-merge" checked={form.auto_merge} onChange={set('auto_merge')} />
            <CheckField label="Require a clean merge" checked={form.require_clean_merge} onChange={set('require_clean_merge')} />
            <CheckField label="Code review" checked={form.code_review} onChange={set('code_review')} />
            <ChoiceField
              label="Review mode"
              value={form.review_mode}
              onChange={set('review_mode')}
              options={[
                ['rework', 'Send the work back for rework'],
                ['comments', 'Leave review comments'],
              ]}
            />
            <CheckField
              label="Resolve pull request feedback automatically"
              checked={form.auto_resolve_pr_feedback}
              onChange={set('auto_resolve_pr_feedback')}
            />
            <CheckField
              label="Resolve merge conflicts automatically"
              checked={form.auto_resolve_merge_conflicts}
              onChange={set('auto_resolve_merge_conflicts')}
            />
            <TextField
              label="Auto-merge delay (minutes)"
              inputMode="numeric"
              value={form.auto_merge_delay_minutes}
              onChange={set('auto_merge_delay_minutes')}
              help="0 merges at once; empty turns auto-merge off."
              problem={problems.auto_merge_delay_minutes}
            />
          </Section>

          <Section id="custom-instructions" title="Custom instructions" intro={`Up to ${INSTRUCTIONS_MAX} characters per role.`}>
            <AreaField
              label="Polecat"
              value={form.instructions_polecat}
              onChange={set('instructions_polecat')}
              problem={problems.instructions_polecat}
            />
            <AreaField
              label="Refinery"
              value={form.instructions_refinery}
              onChange={set('instructions_refinery')}
              problem={problems.instructions_refinery}
            />
            <AreaField
              label="Mayor"
              value={form.instructions_mayor}
              onChange={set('instructions_mayor')}
              problem={problems.instructions_mayor}
            />
          </Section>
        </fieldset>

        {editable && (
          <div className="save-bar">
            <button type="submit" className="button primary" disabled={!dirty || save.isPending || Object.keys(problems).length > 0}>
              {save.isPending ? 'Saving…' : 'Save settings'}
            </button>
            {dirty && (
              <button
                type="button"
                className="button secondary"
                onClick={() => {
                  setForm(loaded);
                  save.reset();
                }}
              >
                Discard changes
              </button>
            )}
            <p role="status" className="muted">
              {savedAt !== null && !dirty ? 'Saved.' : dirty ? 'Unsaved changes.' : ''}
            </p>
          </div>
        )}
        {save.isError && <ErrorBox error={save.error} what="The settings were not saved." />}
      </form>

      <Section id="fork-town" title="Fork Town">
        <p>
          Start a new town from this one: its settings, its rigs and its finished history come along, with fresh ids
          and credentials; work in progress, agents and secrets do not. This town is not changed.
        </p>
        {standing.canFork ? (
          <button type="button" className="button primary" onClick={() => setForking(true)}>
            Fork this town…
          </button>
        ) : (
          <p className="muted">Admins can read this town but not fork it.</p>
        )}
      </Section>
      {forking && <ForkDialog source={town} onClose={() => setForking(false)} />}
    </>
  );
}
