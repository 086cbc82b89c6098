import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';

import type { Bead, BeadEvent, ForkedFrom, OrgTown, Town } from '../../../types/router';
import { errorCode } from '../../app/errors';
import { Link, settingsPath, townPath } from '../../app/router';
import { useSession } from '../../app/session';
import { isOrgTown, standingOf } from '../../app/standing';
import { useTRPC } from '../../app/trpc';
import { ErrorBox } from '../../components/ErrorBox';
import { Loading } from '../../components/Loading';
import { PageTitle } from '../../components/PageTitle';
import { TimeAgo } from '../../components/TimeAgo';
import { ForkDialog } from '../../fork/ForkDialog';
import { eventWords } from './events';

export function TownPage({ townId }: { townId: string }) {
  const trpc = useTRPC();
  const { identity } = useSession();
  const town = useQuery(trpc.gastown.getTown.queryOptions({ townId }));
  const [forking, setForking] = useState(false);

  if (town.isPending) return <Loading label="Loading the town…" />;
  if (town.isError) {
    return (
      <div className="page">
        <PageTitle title={errorCode(town.error) === 'NOT_FOUND' ? 'Town not found' : 'Town'} />
        <ErrorBox error={town.error} what="Could not open this town." onRetry={() => void town.refetch()} />
        <p>
          <Link to="/">Back to your towns</Link>
        </p>
      </div>
    );
  }
  const t = town.data;
  const standing = standingOf(t, identity);
  return (
    <div className="page">
      <nav aria-label="Breadcrumb" className="breadcrumb">
        <Link to="/">Towns</Link> <span aria-hidden="true">/</span> <span aria-current="page">{t.name}</span>
      </nav>
      <div className="page-head">
        <div>
          <PageTitle title={t.name} />
          <p className="muted">
            Owner: {standing.ownerLabel}
            {isOrgTown(t) && <> · created by {t.created_by_user_id === identity.userId ? 'you' : t.created_by_user_id}</>}
            {' · '}
            <TimeAgo iso={t.created_at} prefix="created" />
          </p>
          {t.forked_from !== null && <ForkedFromLine lineage={t.forked_from} />}
          {standing.adminView && <p className="notice">You are viewing this town as an admin: read only.</p>}
        </div>
        <div className="actions">
          <Link to={settingsPath(t.id)} className="button secondary">
            Settings
          </Link>
          {standing.canFork && (
            <button type="button" className="button primary" onClick={() => setForking(true)}>
              Fork town
            </button>
          )}
        </div>
      </div>
      <div className="town-sections">
        <ForksSection townId={t.id} />
        <RigsSection townId={t.id} />
        <BeadsAndEvents townId={t.id} />
      </div>
      {forking && <ForkDialog source={t} onClose={() => setForking(false)} />}
    </div>
  );
}

function ForkedFromLine({ lineage }: { lineage: ForkedFrom }) {
  const trpc = useTRPC();
  const source = useQuery({ ...trpc.gastown.getTown.queryOptions({ townId: lineage.town_id }), retry: false });
  return (
    <p className="forked-from">
      <span className="badge fork-badge">Forked</span>{' '}
      {source.isSuccess ? (
        <>
          forked from <Link to={townPath(lineage.town_id)}>{source.data.name}</Link>
        </>
      ) : source.isError ? (
        errorCode(source.error) === 'NOT_FOUND' ? (
          <>forked from a town that is gone or not shared with you</>
        ) : (
          <>
            forked from <Link to={townPath(lineage.town_id)}>another town</Link>
          </>
        )
      ) : (
        <>forked from …</>
      )}{' '}
      <TimeAgo iso={lineage.forked_at} />
    </p>
  );
}

function ownerOf(town: Town | OrgTown, me: string): string {
  if (isOrgTown(town)) return `Organization ${town.owner_org_id.slice(0, 8)}`;
  return town.owner_user_id === me ? 'you' : town.owner_user_id;
}

function ForksSection({ townId }: { townId: string }) {
  const trpc = useTRPC();
  const { identity } = useSession();
  const forks = useQuery(trpc.gastown.listForks.queryOptions({ townId }));
  return (
    <section aria-labelledby="forks-title" className="card">
      <h2 id="forks-title">Forks of this town</h2>
      {forks.isPending ? (
        <Loading label="Loading forks…" />
      ) : forks.isError ? (
        <ErrorBox error={forks.error} what="Could not load the forks." onRetry={() => void forks.refetch()} />
      ) : forks.data.length === 0 ? (
        <p className="muted">No forks that you can see yet.</p>
      ) : (
        <ul className="plain-list" aria-label="Forks">
          {forks.data.map((f) => (
            <li key={f.id}>
              <Link to={townPath(f.id)}>{f.name}</Link>
              <span className="muted small">
                {' '}
                · {ownerOf(f, identity.userId)} · {f.forked_from !== null && <TimeAgo iso={f.forked_from.forked_at} prefix="forked" />}
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function RigsSection({ townId }: { townId: string }) {
  const trpc = useTRPC();
  const rigs = useQuery(trpc.gastown.listRigs.queryOptions({ townId }));
  return (
    <section aria-labelledby="rigs-title" className="card">
      <h2 id="rigs-title">Rigs</h2>
      {rigs.isPending ? (
        <Loading label="Loading rigs…" />
      ) : rigs.isError ? (
        <ErrorBox error={rigs.error} what="Could not load the rigs." onRetry={() => void rigs.refetch()} />
      ) : rigs.data.length === 0 ? (
        <p className="muted">No rigs.</p>
      ) : (
        <ul className="plain-list">
          {rigs.data.map((r) => (
            <li key={r.id}>
              <strong>{r.name}</strong> <span className="badge">{r.default_branch}</span>
              <br />
              <code className="wrap small">{r.git_url}</code>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

const STATUS_WORDS: Record<Bead['status'], string> = {
  open: 'open',
  in_progress: 'in progress',
  in_review: 'in review',
  closed: 'closed',
  failed: 'failed',
};

function BeadsAndEvents({ townId }: { townId: string }) {
  const trpc = useTRPC();
  const beads = useQuery(trpc.gastown.listBeads.queryOptions({ townId, limit: 12 }));
  const events = useQuery(trpc.gastown.getTownEvents.queryOptions({ townId, limit: 12 }));
  const titles = new Map((beads.data ?? []).map((b) => [b.bead_id, b.title]));
  return (
    <>
      <section aria-labelledby="beads-title" className="card">
        <h2 id="beads-title">Recent beads</h2>
        {beads.isPending ? (
          <Loading label="Loading beads…" />
        ) : beads.isError ? (
          <ErrorBox error={beads.error} what="Could not load the beads." onRetry={() => void beads.refetch()} />
        ) : beads.data.length === 0 ? (
          <p className="muted">No beads.</p>
        ) : (
          <ul className="plain-list">
            {beads.data.map((b) => (
              <li key={b.bead_id} className="bead">
                <span className={`status status-${b.status}`}>{STATUS_WORDS[b.status]}</span>{' '}
                <span className="bead-title">{b.title}</span>
                <span className="muted small">
                  {' '}
                  · {b.type.replace('_', ' ')} · <TimeAgo iso={b.updated_at} prefix="updated" />
                </span>
              </li>
            ))}
          </ul>
        )}
      </section>
      <section aria-labelledby="events-title" className="card">
        <h2 id="events-title">Recent events</h2>
        {events.isPending ? (
          <Loading label="Loading events…" />
        ) : events.isError ? (
          <ErrorBox error={events.error} what="Could not load the events." onRetry={() => void events.refetch()} />
        ) : events.data.length === 0 ? (
          <p className="muted">No events.</p>
        ) : (
          <ul className="plain-list">
            {events.data.map((e: BeadEvent) => (
              <li key={e.bead_event_id}>
                {eventWords(e)}
                {titles.has(e.bead_id) && <> on “{titles.get(e.bead_id)}”</>}
                <span className="muted small">
                  {' '}
                  {e.rig_name !== undefined && <>· {e.rig_name} </>}· <TimeAgo iso={e.created_at} />
                </span>
              </li>
            ))}
          </ul>
        )}
      </section>
    </>
  );
}
