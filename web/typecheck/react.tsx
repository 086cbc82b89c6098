// @trpc/tanstack-react-query the way the front end uses it (type level only: nothing renders).
import { QueryClient, QueryClientProvider, useMutation, useQuery, useQueryClient, useSuspenseQuery } from '@tanstack/react-query';
import { createTRPCContext, useSubscription, type TRPCQueryKey } from '@trpc/tanstack-react-query';
import { useState, type ReactNode } from 'react';

import type { AppRouter, BeadEvent, ConvoyDetail, ForkResult, ForkStatus, OrgTown, Rig, Town, TownConfig } from '../types/router';
import { makeClient } from './client';
import { assert, ids, type Equals } from './helpers';

export const { TRPCProvider, useTRPC, useTRPCClient } = createTRPCContext<AppRouter>();

type Trpc = ReturnType<typeof useTRPC>;

export function GastownProviders({ token, children }: { token: string; children: ReactNode }) {
  const [queryClient] = useState(() => new QueryClient());
  const [trpcClient] = useState(() => makeClient(token));
  return (
    <QueryClientProvider client={queryClient}>
      <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
        {children}
      </TRPCProvider>
    </QueryClientProvider>
  );
}

export function TownHeader({ townId }: { townId: string }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();

  const townQuery = useQuery(trpc.gastown.getTown.queryOptions({ townId }));
  assert<Equals<typeof townQuery.data, Town | OrgTown | undefined>>();
  const townName: string = townQuery.data?.name ?? 'Town';

  const rigsQuery = useQuery(trpc.gastown.listRigs.queryOptions({ townId }));
  assert<Equals<typeof rigsQuery.data, Rig[] | undefined>>();
  const rigs: Rig[] = rigsQuery.data ?? [];

  const eventsQuery = useQuery({
    ...trpc.gastown.getTownEvents.queryOptions({ townId, limit: 80 }),
    refetchInterval: 5_000,
  });
  const escalations: number = (eventsQuery.data ?? []).filter((e) => e.event_type === 'escalated').length;

  const convoysQuery = useQuery({
    ...trpc.gastown.listConvoys.queryOptions({ townId }),
    select: (convoys) => convoys.filter((c) => !c.staged),
  });
  assert<Equals<typeof convoysQuery.data, ConvoyDetail[] | undefined>>();

  const convoyQuery = useQuery(trpc.gastown.getConvoy.queryOptions({ townId, convoyId: ids.convoyId }));
  assert<Equals<typeof convoyQuery.data, ConvoyDetail | null | undefined>>();
  const convoyTitle: string | undefined = convoyQuery.data?.title;

  const deleteRig = useMutation(
    trpc.gastown.deleteRig.mutationOptions({
      onSuccess: () => {
        void queryClient.invalidateQueries({ queryKey: trpc.gastown.listRigs.queryKey({ townId }) });
      },
    }),
  );

  const forkTown = useMutation(
    trpc.gastown.forkTown.mutationOptions({
      onSuccess: (result, variables) => {
        assert<Equals<typeof result, ForkResult>>();
        const newName: string = variables.newTownName;
        if (result.town !== null) {
          void queryClient.invalidateQueries(trpc.gastown.listTowns.queryFilter());
        }
        void newName;
      },
    }),
  );
  assert<Equals<typeof forkTown.data, ForkResult | undefined>>();
  const forkedId: string | undefined = forkTown.data?.town?.id;

  return (
    <header>
      <h1>{townName}</h1>
      <span>{escalations} escalations</span>
      <span>{convoyTitle}</span>
      <span>{forkedId}</span>
      {rigs.map((rig) => (
        <button key={rig.id} onClick={() => deleteRig.mutate({ rigId: rig.id, townId })} disabled={deleteRig.isPending}>
          {rig.name}
        </button>
      ))}
      <button
        onClick={() => forkTown.mutate({ sourceTownId: townId, newTownName: `${townName} (fork)`, dryRun: false })}
      >
        Fork
      </button>
    </header>
  );
}

export function TownSettings({ townId }: { townId: string }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const { data: config } = useSuspenseQuery(trpc.gastown.getTownConfig.queryOptions({ townId }));
  assert<Equals<typeof config, TownConfig>>();
  const updateConfig = useMutation(
    trpc.gastown.updateTownConfig.mutationOptions({
      onSuccess: (saved) => {
        queryClient.setQueryData(trpc.gastown.getTownConfig.queryKey({ townId }), saved);
      },
    }),
  );
  const admin = useQuery(trpc.gastown.checkAdminAccess.queryOptions({ townId }));
  const readOnly: boolean = admin.data?.isAdminViewing ?? false;
  return (
    <form onSubmit={() => updateConfig.mutate({ townId, config: { merge_strategy: config.merge_strategy === 'pr' ? 'direct' : 'pr' } })}>
      <fieldset disabled={readOnly}>{config.default_model}</fieldset>
    </form>
  );
}

export function LiveFeed({ townId }: { townId: string }) {
  const trpc = useTRPC();
  const [events, setEvents] = useState<BeadEvent[]>([]);
  const sub = useSubscription(
    trpc.gastown.watchTownEvents.subscriptionOptions(
      { townId, pollMs: 2_000 },
      {
        onData: ({ id, data: event }) => {
          assert<Equals<typeof id, string>>();
          assert<Equals<typeof event, BeadEvent>>();
          setEvents((prev) => [...prev, event]);
        },
      },
    ),
  );
  assert<Equals<typeof sub.data, { id: string; data: BeadEvent } | undefined>>();
  const status: 'idle' | 'connecting' | 'pending' | 'error' = sub.status;
  return (
    <ul data-status={status}>
      {events.map((e) => (
        <li key={e.bead_event_id}>{e.rig_name ?? e.event_type}</li>
      ))}
    </ul>
  );
}

/** A fork's progress bar: polled with `refetchInterval` until it ends, or live. */
export function ForkProgressBar({ idempotencyKey, live }: { idempotencyKey: string; live: boolean }) {
  const trpc = useTRPC();
  const polled = useQuery({
    ...trpc.gastown.getForkStatus.queryOptions({ idempotencyKey }),
    enabled: !live,
    refetchInterval: (query) => (query.state.data?.phase === 'done' || query.state.data?.phase === 'failed' ? false : 500),
  });
  assert<Equals<typeof polled.data, ForkStatus | undefined>>();
  const [latest, setLatest] = useState<ForkStatus | undefined>(undefined);
  const sub = useSubscription(
    trpc.gastown.forkProgress.subscriptionOptions({ idempotencyKey }, { enabled: live, onData: ({ data }) => setLatest(data) }),
  );
  assert<Equals<typeof sub.data, { id: string; data: ForkStatus } | undefined>>();
  const status: ForkStatus | undefined = live ? latest : polled.data;
  return (
    <progress max={100} value={status?.percent ?? 0} title={status?.error?.message ?? status?.phase}>
      {status?.townId}
    </progress>
  );
}

/** Outside components: prefetching and cache keys from a `trpc` handed in. */
export async function prefetchTown(trpc: Trpc, queryClient: QueryClient, townId: string): Promise<string> {
  const options = trpc.gastown.getTown.queryOptions({ townId });
  const key = options.queryKey;
  const sameKey: TRPCQueryKey = trpc.gastown.getTown.queryKey({ townId });
  const town = await queryClient.fetchQuery(options);
  assert<Equals<typeof town, Town | OrgTown>>();
  const cached = queryClient.getQueryData(trpc.gastown.listTowns.queryKey());
  assert<Equals<typeof cached, Town[] | undefined>>();
  const beads = await queryClient.fetchQuery(trpc.gastown.listBeads.queryOptions({ townId, status: 'open' }));
  const p: 'low' | 'medium' | 'high' | 'critical' | undefined = beads[0]?.priority;
  const mutationKey = trpc.gastown.forkTown.mutationKey();
  void [key, sameKey, p, mutationKey];
  return town.name;
}
