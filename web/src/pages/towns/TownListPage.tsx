import { useQueries, useQuery, type UseQueryResult } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';

import type { OrgTown, Town } from '../../../types/router';
import { orgLabel, type OrgMembership } from '../../app/auth';
import { useSession } from '../../app/session';
import { useTRPC } from '../../app/trpc';
import { ErrorBox } from '../../components/ErrorBox';
import { Loading } from '../../components/Loading';
import { PageTitle } from '../../components/PageTitle';
import { TownCard } from '../../components/TownCard';
import { ForkDialog } from '../../fork/ForkDialog';
import { CreateTownForm } from './CreateTownForm';

export function TownListPage() {
  const { identity } = useSession();
  const trpc = useTRPC();
  const [forking, setForking] = useState<Town | OrgTown | null>(null);
  const personal = useQuery(trpc.gastown.listTowns.queryOptions());
  const working = identity.orgs.filter((m) => m.role !== 'billing_manager');
  const orgTowns = useQueries({
    queries: working.map((m) => trpc.gastown.listOrgTowns.queryOptions({ organizationId: m.orgId })),
  });
  const byOrg = new Map(working.map((m, i) => [m.orgId, orgTowns[i]]));
  // Every town listed here by id, to name the source of a fork.
  const names = new Map<string, string>();
  for (const t of [...(personal.data ?? []), ...orgTowns.flatMap((q) => q.data ?? [])]) names.set(t.id, t.name);

  return (
    <div className="page">
      <PageTitle title="Towns" />
      <CreateTownForm />
      <TownSection
        headingId="personal-towns"
        heading={<>Personal towns</>}
        query={personal}
        names={names}
        onFork={setForking}
        loading="Loading your towns…"
        failed="Could not load your towns."
        empty="No personal towns yet. Create one above."
      />
      {identity.orgs.map((m) => (
        <OrgSection key={m.orgId} membership={m} query={byOrg.get(m.orgId)} names={names} onFork={setForking} />
      ))}
      {forking !== null && <ForkDialog source={forking} onClose={() => setForking(null)} />}
    </div>
  );
}

function OrgSection({
  membership,
  query,
  names,
  onFork,
}: {
  membership: OrgMembership;
  query: UseQueryResult<OrgTown[], unknown> | undefined;
  names: ReadonlyMap<string, string>;
  onFork: (town: Town | OrgTown) => void;
}) {
  const heading = (
    <>
      {orgLabel(membership.orgId)} <span className="badge">{membership.role.replace('_', ' ')}</span>
    </>
  );
  const headingId = `org-${membership.orgId}`;
  if (query === undefined) {
    return (
      <section aria-labelledby={headingId}>
        <h2 id={headingId}>{heading}</h2>
        <p className="muted">Billing managers cannot use this organization’s towns.</p>
      </section>
    );
  }
  return (
    <TownSection
      headingId={headingId}
      heading={heading}
      query={query}
      names={names}
      onFork={onFork}
      loading="Loading the organization’s towns…"
      failed="Could not load this organization’s towns."
      empty="No towns in this organization yet."
    />
  );
}

function TownSection({
  headingId,
  heading,
  query,
  names,
  onFork,
  loading,
  failed,
  empty,
}: {
  headingId: string;
  heading: ReactNode;
  query: UseQueryResult<(Town | OrgTown)[], unknown>;
  names: ReadonlyMap<string, string>;
  onFork: (town: Town | OrgTown) => void;
  loading: string;
  failed: string;
  empty: string;
}) {
  return (
    <section aria-labelledby={headingId}>
      <h2 id={headingId}>{heading}</h2>
      {query.isPending ? (
        <Loading label={loading} />
      ) : query.isError ? (
        <ErrorBox error={query.error} what={failed} onRetry={() => void query.refetch()} />
      ) : query.data.length === 0 ? (
        <p className="muted">{empty}</p>
      ) : (
        <ul className="town-grid">
          {query.data.map((t) => (
            <TownCard key={t.id} town={t} names={names} onFork={onFork} />
          ))}
        </ul>
      )}
    </section>
  );
}
