// Every procedure of web/types/router.d.ts, used the way the front end uses it.
//
// The calls live in a few groups (towns.ts, beads.ts, runtime.ts, admin.ts; react.tsx for
// @trpc/tanstack-react-query; expect-errors.ts for the misuses that must not compile). The map
// below says which group calls each procedure; `satisfies` makes it exhaustive: a procedure
// added to (or removed from) the router fails this file until the map and a group follow.
// tests/e2e/test_typescript_types.py checks that each group really calls its procedures.
// Nothing here runs: `tsc --noEmit` only.
import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';

import type { AppRouter, Bead, BeadEvent, ConvoyDetail, ListBeadsInput, NoInput, Town } from '../types/router';
import { admin } from './admin';
import { beads, convoys, events, mergeQueue } from './beads';
import { makeClient, makeWsClient, type Client } from './client';
import { assert, type Equals } from './helpers';
import { agents, container, mayor, wasteland } from './runtime';
import { forks, rigs, townConfig, towns } from './towns';

type Inputs = inferRouterInputs<AppRouter>['gastown'];
type Outputs = inferRouterOutputs<AppRouter>['gastown'];
export type ProcedureName = keyof Inputs;

type Group = (client: Client) => Promise<void>;

export const calledBy = {
  adminBulkDeleteBeads: admin,
  adminDeleteBeadsByStatus: admin,
  adminForceCloseBead: admin,
  adminForceFailBead: admin,
  adminForceResetAgent: admin,
  adminForceRestartContainer: admin,
  adminGetAlarmStatus: admin,
  adminGetBead: admin,
  adminGetTownEvents: admin,
  adminListAgents: admin,
  adminListBeads: admin,
  checkAdminAccess: townConfig,
  closeConvoy: convoys,
  connectTownToWasteland: wasteland,
  convoyAddBead: convoys,
  convoyRemoveBead: convoys,
  createBead: beads,
  createOrgRig: rigs,
  createOrgTown: towns,
  createPtySession: agents,
  createRig: rigs,
  createTown: towns,
  debugAgentMetadata: admin,
  deleteAgent: agents,
  deleteBead: beads,
  deleteBeadsByStatus: beads,
  deleteOrgTown: towns,
  deleteRig: rigs,
  deleteTown: towns,
  destroyContainer: container,
  disconnectTownFromWasteland: wasteland,
  enrichBead: beads,
  ensureMayor: mayor,
  forceRestartContainer: container,
  forkOrgTown: forks,
  forkProgress: forks,
  forkTown: forks,
  getAgentStreamUrl: agents,
  getAlarmStatus: container,
  getBeadEvents: events,
  getBillingStatus: container,
  getConvoy: convoys,
  getDrainStatus: container,
  getForkStatus: forks,
  getMayorStatus: mayor,
  getMergeQueueData: mergeQueue,
  getRig: rigs,
  getTown: towns,
  getTownConfig: townConfig,
  getTownEvents: events,
  getTownWastelandConnection: wasteland,
  listAgents: agents,
  listBeads: beads,
  listConvoys: convoys,
  listForks: forks,
  listOrgRigs: towns,
  listOrgTowns: towns,
  listRigs: rigs,
  listTowns: towns,
  refreshContainerToken: container,
  resetAgentDispatchAttempts: agents,
  resizePtySession: agents,
  sendMessage: mayor,
  setContainerRunPolicy: container,
  sling: beads,
  startBead: beads,
  startConvoy: convoys,
  updateBead: beads,
  updateRigConfig: rigs,
  updateTownConfig: townConfig,
  watchTownEvents: events,
} satisfies Record<ProcedureName, Group>;

assert<Equals<keyof typeof calledBy, ProcedureName>>();

/** Never invoked: the groups only have to type-check. */
export async function everyProcedure(token: string): Promise<void> {
  for (const client of [makeClient(token), makeWsClient(token)]) {
    for (const group of new Set<Group>(Object.values(calledBy))) {
      await group(client);
    }
  }
}

// The helper types a front end uses for props and forms agree with the procedure table.
assert<Equals<Inputs['getTown'], { townId: string }>>();
assert<Equals<Outputs['getTown']['name'], string>>();
assert<Equals<Outputs['listTowns'], Town[]>>();
assert<Equals<Outputs['getConvoy'], ConvoyDetail | null>>();
assert<Equals<Outputs['updateBead'], Bead>>();
assert<Equals<Outputs['getTownEvents'][number], BeadEvent>>();
assert<Equals<NonNullable<Inputs['updateBead']['status']>, Bead['status']>>();
// All-optional inputs may be left out: `X | void`.
assert<Equals<Inputs['listBeads'], ListBeadsInput | void>>();
assert<Equals<Inputs['listTowns'], NoInput | void>>();
