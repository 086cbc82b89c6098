import { useEffect } from 'react';

import { orgLabel } from '../app/auth';
import { describeError } from '../app/errors';
import { Link, townPath } from '../app/router';
import { useTRPCClient } from '../app/trpc';
import { ForkProgress } from './ForkProgress';
import { useRefreshAfterFork } from './refresh';
import { dismissRun, resumePending, startFork, useDetachedRuns, type ForkRun } from './runs';

/** Forks no dialog is showing: started in a dialog that was closed, or resumed after a reload
 * (sent again with their stored idempotencyKey, so the server answers the first result). */
export function ForkBanner() {
  const client = useTRPCClient();
  const refresh = useRefreshAfterFork();
  const runs = useDetachedRuns();
  useEffect(() => {
    resumePending(client, (result) => refresh(result.forked_from.town_id, result));
  }, [client, refresh]);
  if (runs.length === 0) return null;
  return (
    <section className="fork-banner" aria-label="Forks">
      {runs.map((run) => (
        <BannerRow
          key={run.request.idempotencyKey}
          run={run}
          onRetry={() => startFork(client, run.request, (result) => refresh(run.request.sourceTownId, result))}
        />
      ))}
    </section>
  );
}

function BannerRow({ run, onRetry }: { run: ForkRun; onRetry: () => void }) {
  const { request } = run;
  const into = request.target.kind === 'personal' ? 'your personal towns' : orgLabel(request.target.orgId);
  const what = `“${request.sourceName}” into ${into} as “${request.newTownName}”`;
  const dismiss = (
    <button type="button" className="button secondary small" onClick={() => dismissRun(request.idempotencyKey)}>
      Dismiss
    </button>
  );
  if (run.status === 'running') {
    return (
      <div className="banner-row">
        <p>Forking {what}…</p>
        <ForkProgress idempotencyKey={request.idempotencyKey} />
      </div>
    );
  }
  if (run.status === 'done') {
    const town = run.result.town;
    return (
      <div className="banner-row" role="status">
        <p>
          The fork of {what} is ready.{' '}
          {town !== null && <Link to={townPath(town.id)}>Open “{town.name}”</Link>}
        </p>
        {dismiss}
      </div>
    );
  }
  const described = describeError(run.error);
  return (
    <div className="banner-row" role="alert">
      <p>
        The fork of {what} did not finish. {described.title}
        {described.detail !== null && ` (${described.detail})`}
      </p>
      {run.network && (
        <button type="button" className="button primary small" onClick={onRetry}>
          Retry
        </button>
      )}
      {dismiss}
    </div>
  );
}
