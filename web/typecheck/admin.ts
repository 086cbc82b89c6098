// The admin panel: platform admins inspecting and repairing a town.
import type { AdminAccess, Agent, AlarmStatus, Bead, BeadEvent } from '../types/router';
import type { Client } from './client';
import { assert, ids, type Equals, type VoidOutput } from './helpers';

export async function admin(client: Client): Promise<void> {
  const { townId, beadId, otherBeadId, agentId } = ids;

  const access = await client.gastown.checkAdminAccess.query({ townId });
  assert<Equals<typeof access, AdminAccess>>();

  const beads = await client.gastown.adminListBeads.query({ townId, status: 'failed', type: 'merge_request', limit: 500 });
  assert<Equals<typeof beads, Bead[]>>();

  const bead = await client.gastown.adminGetBead.query({ townId, beadId });
  assert<Equals<typeof bead, Bead | null>>();
  const title: string = bead?.title ?? '(deleted)';

  const events = await client.gastown.adminGetTownEvents.query({ townId, beadId, since: null, limit: 1000 });
  assert<Equals<typeof events, BeadEvent[]>>();

  const agents = await client.gastown.adminListAgents.query({ townId });
  assert<Equals<typeof agents, Agent[]>>();

  const alarm = await client.gastown.adminGetAlarmStatus.query({ townId });
  assert<Equals<typeof alarm, AlarmStatus>>();
  const stalled: number = alarm.agents.stalled + alarm.patrol.stalledAgents;

  const rows = await client.gastown.debugAgentMetadata.query({ townId });
  assert<Equals<typeof rows, Record<string, unknown>[]>>();

  const closed = await client.gastown.adminForceCloseBead.mutate({ townId, beadId });
  const failed = await client.gastown.adminForceFailBead.mutate({ townId, beadId: otherBeadId });
  assert<Equals<typeof closed | typeof failed, Bead>>();

  const reset = await client.gastown.adminForceResetAgent.mutate({ townId, agentId });
  const restarted = await client.gastown.adminForceRestartContainer.mutate({ townId });
  assert<Equals<typeof reset | typeof restarted, VoidOutput>>();

  const bulk = await client.gastown.adminBulkDeleteBeads.mutate({ townId, beadIds: [beadId, otherBeadId] });
  const byStatus = await client.gastown.adminDeleteBeadsByStatus.mutate({ townId, status: 'closed', type: 'message' });
  const deleted: number = bulk.deleted + byStatus.deleted;

  void [title, stalled, deleted];
}
