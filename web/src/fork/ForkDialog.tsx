import { useQuery } from '@tanstack/react-query';
import { useEffect, useId, useMemo, useRef, useState, type FormEvent } from 'react';

import type { ForkResult, OrgTown, Town } from '../../types/router';
import { orgLabel, workingOrgs } from '../app/auth';
import { describeError } from '../app/errors';
import { Link, townPath } from '../app/router';
import { useSession } from '../app/session';
import { useTRPC, useTRPCClient } from '../app/trpc';
import { Dialog } from '../components/Dialog';
import { ErrorBox } from '../components/ErrorBox';
import { Loading } from '../components/Loading';
import { ForkProgress } from './ForkProgress';
import { useRefreshAfterFork } from './refresh';
import { newKey, sendFork, type ForkRequest, type ForkTarget } from './request';
import { attach, dismissRun, startFork, useForkRun } from './runs';
import { COPIED_LABELS, SKIPPED_LABELS, warningText } from './words';

export const NAME_MAX = 64;

/** The name as it will be sent, or what is wrong with it. */
export function checkName(raw: string): { name: string; problem: string | null } {
  const name = raw.trim();
  const length = [...name].length;
  if (length === 0) return { name, problem: 'Enter a name for the new town.' };
  if (length > NAME_MAX) return { name, problem: `Use at most ${NAME_MAX} characters (this is ${length}).` };
  return { name, problem: null };
}

function defaultName(source: string): string {
  const suffix = ' (fork)';
  const chars = [...source];
  const room = NAME_MAX - suffix.length;
  return (chars.length > room ? chars.slice(0, room).join('') : source) + suffix;
}

function targetValue(target: ForkTarget): string {
  return target.kind === 'personal' ? 'personal' : `org:${target.orgId}`;
}

function parseTarget(value: string): ForkTarget {
  return value.startsWith('org:') ? { kind: 'org', orgId: value.slice(4) } : { kind: 'personal' };
}

type Props = { source: Town | OrgTown; onClose: () => void };

export function ForkDialog({ source, onClose }: Props) {
  const { identity } = useSession();
  const trpc = useTRPC();
  const client = useTRPCClient();
  const refresh = useRefreshAfterFork();
  const ids = { form: useId(), name: useId(), nameHelp: useId(), target: useId() };

  const orgs = workingOrgs(identity);
  const [target, setTarget] = useState<ForkTarget>({ kind: 'personal' });
  const [rawName, setRawName] = useState(() => defaultName(source.name));
  const [edited, setEdited] = useState(false);
  const [includeGitAuthor, setIncludeGitAuthor] = useState(true);
  const [includeEnvVars, setIncludeEnvVars] = useState(true);
  // One key per intended fork: kept across retries; a new one only after a definite failure.
  const [key, setKey] = useState(newKey);
  const run = useForkRun(key);
  useEffect(() => attach(key), [key]);

  const { name, problem } = checkName(rawName);
  const showProblem = problem !== null && (edited || run !== undefined);
  const locked = run !== undefined && (run.status === 'running' || run.status === 'done' || run.network);

  const rigs = useQuery(trpc.gastown.listRigs.queryOptions({ townId: source.id }));
  const previewKey = ['forkPreview', source.id, targetValue(target), includeGitAuthor, includeEnvVars] as const;
  const preview = useQuery({
    queryKey: previewKey,
    // A dry run creates nothing; its name only has to be valid.
    queryFn: () =>
      sendFork(client, {
        sourceTownId: source.id,
        target,
        newTownName: problem === null ? name : 'Preview',
        includeGitAuthor,
        includeEnvVars,
        dryRun: true,
        idempotencyKey: null,
      }),
    retry: false,
    staleTime: 30_000,
  });

  const sourceRigNames = useMemo(
    () => Object.fromEntries((rigs.data ?? []).map((r) => [r.id, r.name])),
    [rigs.data],
  );

  function submit(event: FormEvent): void {
    event.preventDefault();
    setEdited(true);
    if (problem !== null || locked) return;
    let requestKey = key;
    if (run?.status === 'failed' && !run.network) {
      // The last attempt definitely failed: this is a new attempt with a new key.
      dismissRun(key);
      requestKey = newKey();
      setKey(requestKey);
    }
    const request: ForkRequest = {
      sourceTownId: source.id,
      sourceName: source.name,
      target,
      newTownName: name,
      includeGitAuthor,
      includeEnvVars,
      idempotencyKey: requestKey,
    };
    startFork(client, request, (result) => refresh(source.id, result));
  }

  function retry(): void {
    if (run?.status === 'failed') startFork(client, run.request, (result) => refresh(source.id, result));
  }

  function close(): void {
    // A finished or definitely failed run has been seen here: nothing to keep.
    if (run !== undefined && run.status !== 'running' && !(run.status === 'failed' && run.network)) dismissRun(key);
    onClose();
  }

  const targetName = target.kind === 'personal' ? 'your personal towns' : orgLabel(target.orgId);

  return (
    <Dialog
      title={`Fork “${source.name}”`}
      onClose={close}
      footer={
        !locked && (
          <>
            <button type="button" className="button secondary" onClick={close}>
              Cancel
            </button>
            <button type="submit" form={ids.form} className="button primary" disabled={problem !== null}>
              {run?.status === 'failed' ? 'Try the fork again' : 'Fork'}
            </button>
          </>
        )
      }
    >
      <form id={ids.form} className="fork-form" onSubmit={submit} noValidate>
        <fieldset disabled={locked} className="plain">
          <div className="field">
            <label htmlFor={ids.target}>Fork into</label>
            <select id={ids.target} value={targetValue(target)} onChange={(e) => setTarget(parseTarget(e.target.value))}>
              <option value="personal">My personal towns</option>
              {orgs.map((m) => (
                <option key={m.orgId} value={`org:${m.orgId}`}>
                  {orgLabel(m.orgId)} ({m.role})
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor={ids.name}>New town name</label>
            <input
              id={ids.name}
              value={rawName}
              maxLength={NAME_MAX * 2}
              autoComplete="off"
              aria-invalid={showProblem}
              aria-describedby={ids.nameHelp}
              onChange={(e) => {
                setRawName(e.target.value);
                setEdited(true);
              }}
            />
            <p id={ids.nameHelp} className={showProblem ? 'field-error' : 'field-help'} aria-live="polite">
              {showProblem ? problem : `${[...name].length} of ${NAME_MAX} characters`}
            </p>
          </div>
          <fieldset className="options">
            <legend>Copy along</legend>
            <label className="check">
              <input type="checkbox" checked={includeGitAuthor} onChange={(e) => setIncludeGitAuthor(e.target.checked)} />
              Git author (commit name and email)
            </label>
            <label className="check">
              <input type="checkbox" checked={includeEnvVars} onChange={(e) => setIncludeEnvVars(e.target.checked)} />
              Environment variables
            </label>
          </fieldset>
        </fieldset>

        {run?.status !== 'done' && (
        <section className="preview" aria-labelledby="fork-preview-title" aria-busy={preview.isFetching}>
          <h3 id="fork-preview-title">Preview</h3>
          {preview.isPending ? (
            <Loading label="Working out what the fork will copy…" />
          ) : preview.isError ? (
            <ErrorBox error={preview.error} what="Could not preview the fork." onRetry={() => void preview.refetch()} />
          ) : (
            <Preview result={preview.data} rigNames={sourceRigNames} includeEnvVars={includeEnvVars} done={false} />
          )}
        </section>
        )}

        <RunArea
          run={run}
          targetName={targetName}
          onRetry={retry}
          onClose={close}
        />
      </form>
    </Dialog>
  );
}

function RunArea({
  run,
  targetName,
  onRetry,
  onClose,
}: {
  run: ReturnType<typeof useForkRun>;
  targetName: string;
  onRetry: () => void;
  onClose: () => void;
}) {
  const ref = useRef<HTMLElement>(null);
  const status = run?.status;
  useEffect(() => {
    // The outcome appears below the preview: bring it into view as it changes.
    ref.current?.scrollIntoView({ block: 'nearest' });
  }, [status]);
  if (run === undefined) return null;
  if (run.status === 'running') {
    return (
      <section ref={ref} className="run" aria-label="Fork">
        <ForkProgress idempotencyKey={run.request.idempotencyKey} />
        <p className="muted">You can close this dialog: the fork goes on, and you will be told when it is ready.</p>
      </section>
    );
  }
  if (run.status === 'failed') {
    const described = describeError(run.error);
    return (
      <section ref={ref} className="run" aria-label="Fork">
        <ErrorBox error={run.error} what="The fork did not finish." />
        {run.network && (
          <div className="dialog-actions">
            <p className="muted">
              It may have been made anyway: trying again sends the same request, so at most one town is made.
            </p>
            <button type="button" className="button primary" onClick={onRetry}>
              Retry
            </button>
          </div>
        )}
        {described.signIn && <p>Sign in again, then retry.</p>}
      </section>
    );
  }
  return <ForkDone result={run.result} targetName={targetName} onClose={onClose} includeEnvVars={run.request.includeEnvVars} />;
}

function ForkDone({
  result,
  targetName,
  onClose,
  includeEnvVars,
}: {
  result: ForkResult;
  targetName: string;
  onClose: () => void;
  includeEnvVars: boolean;
}) {
  const town = result.town;
  const rigNames = Object.fromEntries(result.rigs.map((r) => [r.id, r.name]));
  const openRef = useRef<HTMLAnchorElement>(null);
  useEffect(() => openRef.current?.focus(), []);
  return (
    <section className="run done" aria-label="Fork finished">
      <p role="status" className="success">
        Forked into {targetName}.
      </p>
      {town !== null && (
        <p>
          <Link ref={openRef} to={townPath(town.id)} className="button primary" onClick={onClose}>
            Open “{town.name}”
          </Link>
        </p>
      )}
      <Preview result={result} rigNames={rigNames} includeEnvVars={includeEnvVars} done />
    </section>
  );
}

export function Preview({
  result,
  rigNames,
  includeEnvVars,
  done,
}: {
  result: ForkResult;
  rigNames: Record<string, string>;
  includeEnvVars: boolean;
  done: boolean;
}) {
  const copied = Object.entries(COPIED_LABELS) as [keyof typeof COPIED_LABELS, string][];
  const skipped = (Object.entries(SKIPPED_LABELS) as [keyof typeof SKIPPED_LABELS, string][]).filter(
    ([k]) => result.skipped[k] > 0,
  );
  const warnings = result.warnings.map((w) => warningText(w, { includeEnvVars, rigNames, done }));
  return (
    <div className="preview-body">
      <div className="counts">
        <div>
          <h4>{done ? 'Copied' : 'Will be copied'}</h4>
          <dl className="count-list" aria-label={done ? 'Copied' : 'Will be copied'}>
            {copied.map(([k, label]) => (
              <div key={k} data-count={k}>
                <dt>{label}</dt>
                <dd>{result.copied[k].toLocaleString('en')}</dd>
              </div>
            ))}
          </dl>
        </div>
        <div>
          <h4>{done ? 'Left behind' : 'Will be left behind'}</h4>
          {skipped.length === 0 ? (
            <p className="muted">Nothing.</p>
          ) : (
            <dl className="count-list" aria-label={done ? 'Left behind' : 'Will be left behind'}>
              {skipped.map(([k, label]) => (
                <div key={k} data-count={k}>
                  <dt>{label}</dt>
                  <dd>{result.skipped[k].toLocaleString('en')}</dd>
                </div>
              ))}
            </dl>
          )}
          <p className="muted small">Agents, their runtime state and credentials never come along.</p>
        </div>
      </div>
      {warnings.length > 0 && (
        <ul className="warnings" aria-label="Warnings">
          {warnings.map((w) => (
            <li key={w.code} className={`warning ${w.severity}`} data-code={w.code}>
              <strong>{w.title}</strong>
              {w.items.length > 0 && (
                <span className="warning-items">
                  {': '}
                  {w.items.map((item, i) => (
                    <span key={item}>
                      {i > 0 && ', '}
                      <code>{item}</code>
                    </span>
                  ))}
                </span>
              )}
              {w.body !== '' && <p>{w.body}</p>}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
