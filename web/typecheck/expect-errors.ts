// Misuses the types must reject. Each `@ts-expect-error` names the error tsc reports on the
// line below it (tests/e2e/test_typescript_types.py removes the directives in a copy and checks
// that exactly these errors appear there); tsc itself fails on any directive left unused.
import { useQuery } from '@tanstack/react-query';

import type { Client } from './client';
import { ids } from './helpers';
import type { useTRPC } from './react';

export async function misuses(client: Client): Promise<void> {
  const { townId, rigId, beadId, convoyId } = ids;
  const forkStatus = await client.gastown.getForkStatus.query({ idempotencyKey: 'k' });

  // @ts-expect-error TS2345 missing required input field (getTown without townId)
  await client.gastown.getTown.query({});

  // @ts-expect-error TS2322 wrong input type (limit as a string)
  await client.gastown.listBeads.query({ townId, limit: '50' });

  // @ts-expect-error TS2322 unknown enum value (updateBead status 'done')
  await client.gastown.updateBead.mutate({ rigId, beadId, status: 'done' });

  // @ts-expect-error TS2339 unknown procedure
  await client.gastown.noSuchProcedure.query({ townId });

  const town = await client.gastown.getTown.query({ townId });
  // @ts-expect-error TS2339 unknown output field
  const missing: unknown = town.no_such_field;

  // @ts-expect-error TS2339 .mutate on a query
  await client.gastown.getTown.mutate({ townId });

  // @ts-expect-error TS2339 .query on a mutation
  await client.gastown.forkTown.query({ sourceTownId: townId, newTownName: 'Copy' });

  // @ts-expect-error TS2322 a fork phase that does not exist
  const phase: (typeof forkStatus)['phase'] = 'copying';

  const convoy = await client.gastown.getConvoy.query({ townId, convoyId });
  // @ts-expect-error TS18047 nullable output used without a null check (ConvoyDetail | null)
  const convoyTitle: string = convoy.title;

  // @ts-expect-error TS2322 a number where a uuid string is required
  await client.gastown.getTown.query({ townId: 42 });

  // listTowns takes `NoInput | void`, so an input object is allowed, but only an empty one.
  // @ts-expect-error TS2322 a key in the input of a procedure that takes none
  await client.gastown.listTowns.query({ organizationId: ids.organizationId });

  // @ts-expect-error TS2345 missing required input field (forkTown without newTownName)
  await client.gastown.forkTown.mutate({ sourceTownId: townId });

  // @ts-expect-error TS2353 unknown key in a nested input (excess property check)
  await client.gastown.updateTownConfig.mutate({ townId, config: { no_such_setting: true } });

  // @ts-expect-error TS2322 unknown enum value in a nested input
  await client.gastown.updateRigConfig.mutate({ rigId, config: { merge_strategy: 'squash' } });

  // @ts-expect-error TS2339 .query on the subscription
  await client.gastown.watchTownEvents.query({ townId });

  const bead = await client.gastown.startBead.mutate({ rigId, beadId });
  // @ts-expect-error TS2367 comparing a status with a value outside its union
  const isDone: boolean = bead.status === 'done';

  // @ts-expect-error TS2322 a nullable output field assigned to a non-null type
  const body: string = bead.body;

  const [event] = await client.gastown.getTownEvents.query({ townId });
  // @ts-expect-error TS2322 an optional output field (rig_name?: string) assigned to a non-optional type
  const rigName: string = event.rig_name;

  const fork = await client.gastown.forkTown.mutate({ sourceTownId: townId, newTownName: 'Copy' });
  // @ts-expect-error TS18047 the fork's town is null on a dry run
  const forkName: string = fork.town.name;

  void [missing, convoyTitle, isDone, body, rigName, forkName, phase];
}

export function MisusedQuery({ trpc, townId }: { trpc: ReturnType<typeof useTRPC>; townId: string }) {
  const townQuery = useQuery(trpc.gastown.getTown.queryOptions({ townId }));
  // @ts-expect-error TS18048 query data read before it has loaded (undefined)
  const name: string = townQuery.data.name;

  // @ts-expect-error TS2769 queryOptions with a wrong input type (no overload matches)
  const bad = trpc.gastown.listRigs.queryOptions({ townId: 7 });

  // @ts-expect-error TS2349 mutationOptions on a query (the decorated query has none: never)
  const wrongKind = trpc.gastown.getTown.mutationOptions();

  return [name, bad, wrongKind];
}
