// Agents, the mayor, the container (billing, drain, restarts) and the wasteland connection.
import type {
  Agent,
  BillingStatus,
  MayorSendResult,
  MayorStatus,
  PtySession,
  StreamTicket,
  TownAlarmStatus,
  WastelandConnection,
} from '../types/router';
import type { Client } from './client';
import { assert, ids, type Equals, type VoidOutput } from './helpers';

export async function agents(client: Client): Promise<void> {
  const { townId, rigId, agentId } = ids;

  const list = await client.gastown.listAgents.query({ rigId, townId });
  assert<Equals<typeof list, Agent[]>>();
  for (const agent of list) {
    const name: string = agent.name;
    const role: string = agent.role;
    const status: string = agent.status;
    const hook: string | null = agent.current_hook_bead_id;
    const attempts: number = agent.dispatch_attempts;
    assert<Equals<typeof agent.checkpoint, unknown>>();
    assert<Equals<typeof agent.agent_status_message, string | null>>();
    void [name, role, status, hook, attempts];
  }

  const reset = await client.gastown.resetAgentDispatchAttempts.mutate({ rigId, agentId, townId });
  assert<Equals<typeof reset, VoidOutput>>();
  const removed = await client.gastown.deleteAgent.mutate({ rigId, agentId });
  assert<Equals<typeof removed, VoidOutput>>();

  const ticket = await client.gastown.getAgentStreamUrl.query({ townId, agentId });
  assert<Equals<typeof ticket, StreamTicket>>();
  const streamUrl: string = `${ticket.url}?ticket=${encodeURIComponent(ticket.ticket)}`;

  const pty = await client.gastown.createPtySession.mutate({ townId, agentId });
  assert<Equals<typeof pty, PtySession>>();
  const wsUrl: string = pty.wsUrl;
  const resized = await client.gastown.resizePtySession.mutate({ townId, agentId, ptyId: pty.pty.id, cols: 120, rows: 40 });
  assert<Equals<typeof resized, VoidOutput>>();

  void [streamUrl, wsUrl];
}

export async function mayor(client: Client): Promise<void> {
  const { townId, rigId } = ids;

  const status = await client.gastown.getMayorStatus.query({ townId });
  assert<Equals<typeof status, MayorStatus>>();
  const configured: boolean = status.configured;
  if (status.session !== null) {
    assert<Equals<typeof status.session.status, 'idle' | 'active' | 'starting'>>();
    const lastActivity: string = status.session.lastActivityAt;
    void lastActivity;
  }

  const ensured = await client.gastown.ensureMayor.mutate({ townId });
  assert<Equals<typeof ensured, MayorSendResult>>();
  const sent = await client.gastown.sendMessage.mutate({
    townId,
    message: 'What is blocking the frontend convoy?',
    model: 'anthropic/claude-sonnet-4',
    rigId,
    uiContext: null,
  });
  const sessionStatus: 'idle' | 'active' | 'starting' = sent.sessionStatus;
  const agentId: string = sent.agentId;

  void [configured, sessionStatus, agentId];
}

export async function container(client: Client): Promise<void> {
  const { townId } = ids;

  const alarm = await client.gastown.getAlarmStatus.query({ townId });
  assert<Equals<typeof alarm, TownAlarmStatus>>();
  assert<Equals<typeof alarm.alarm.nextFireAt, string | null>>();
  const label: string = alarm.alarm.intervalLabel;
  const working: number = alarm.agents.working;
  const triage: number = alarm.beads.triageRequests;
  const orphaned: number = alarm.patrol.orphanedHooks;
  const messages: string[] = alarm.recentEvents.map((e) => `${e.time} ${e.type}: ${e.message}`);
  const billingEnabled: boolean = alarm.billing.enabled;

  const billing = await client.gastown.getBillingStatus.query({ townId });
  assert<Equals<typeof billing, BillingStatus>>();
  assert<Equals<typeof billing.state, 'blocked' | 'degraded' | 'idle' | 'paused' | 'running' | 'starting' | 'stopping' | 'warning'>>();
  assert<Equals<typeof billing.runPolicy, 'automatic' | 'paused_by_user'>>();
  assert<Equals<typeof billing.remaining, number | undefined>>();
  const payer: 'org' | 'user' | undefined = billing.payer?.type;

  const paused = await client.gastown.setContainerRunPolicy.mutate({ townId, policy: 'paused_by_user' });
  assert<Equals<typeof paused, BillingStatus>>();

  const drain = await client.gastown.getDrainStatus.query({ townId });
  const draining: boolean = drain.draining;
  assert<Equals<typeof drain.drainStartedAt, string | null>>();

  const destroyed = await client.gastown.destroyContainer.mutate({ townId });
  const restarted = await client.gastown.forceRestartContainer.mutate({ townId });
  const refreshed = await client.gastown.refreshContainerToken.mutate({ townId });
  assert<Equals<typeof destroyed | typeof restarted | typeof refreshed, VoidOutput>>();

  void [label, working, triage, orphaned, messages, billingEnabled, payer, draining];
}

export async function wasteland(client: Client): Promise<void> {
  const { townId, wastelandId } = ids;

  const current = await client.gastown.getTownWastelandConnection.query({ townId });
  assert<Equals<typeof current, WastelandConnection | null>>();
  if (current === null) {
    const connected = await client.gastown.connectTownToWasteland.mutate({
      townId,
      wastelandId,
      upstream: 'https://www.dolthub.com/repositories/acme/wasteland',
      rigHandle: 'acme-frontend',
      dolthubOrg: 'acme',
    });
    assert<Equals<typeof connected, WastelandConnection>>();
    assert<Equals<typeof connected.status, 'active' | 'disconnecting'>>();
    const since: string = connected.connected_at;
    void since;
  } else {
    const done = await client.gastown.disconnectTownFromWasteland.mutate({ townId, wastelandId: current.wasteland_id });
    const success: boolean = done.success;
    void success;
  }
}
