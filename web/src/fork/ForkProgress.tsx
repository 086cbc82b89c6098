import { useQuery } from '@tanstack/react-query';

import { errorCode } from '../app/errors';
import { useTRPC } from '../app/trpc';
import { PHASE_WORDS } from './words';

/** Live progress of the caller's running fork (getForkStatus, polled while it runs). */
export function ForkProgress({ idempotencyKey }: { idempotencyKey: string }) {
  const trpc = useTRPC();
  const status = useQuery({
    ...trpc.gastown.getForkStatus.queryOptions({ idempotencyKey }),
    refetchInterval: 250,
    retry: false,
    gcTime: 0,
  });
  // NOT_FOUND until the server has registered the fork: it is starting.
  const data = status.data;
  const starting = data === undefined || errorCode(status.error) === 'NOT_FOUND';
  const percent = starting ? 0 : Math.min(100, Math.max(0, data.percent));
  const phase = starting ? 'Starting the fork' : (PHASE_WORDS[data.phase] ?? data.phase);
  const rows =
    !starting && data.phase === 'import' && data.rowsTotal > 0
      ? ` — ${data.rowsDone.toLocaleString('en')} of ${data.rowsTotal.toLocaleString('en')} rows`
      : '';
  return (
    <div className="fork-progress">
      <progress max={100} value={percent} aria-label="Fork progress" aria-valuetext={`${Math.round(percent)}%`} />
      <p role="status" aria-live="polite">
        <span className="spinner" aria-hidden="true" />
        {phase}
        {rows} ({Math.round(percent)}%)
      </p>
    </div>
  );
}
