// Beads, bead events (including the watchTownEvents subscription), convoys and the merge queue.
import type { TRPCClientErrorLike } from '@trpc/client';

import type {
  AppRouter,
  Bead,
  BeadEvent,
  BeadSuggestion,
  ConvoyDetail,
  MergeQueueData,
  SlingResult,
} from '../types/router';
import type { Client } from './client';
import { assert, ids, type Equals } from './helpers';

type BeadStatus = 'open' | 'in_progress' | 'in_review' | 'closed' | 'failed';
type BeadType = 'issue' | 'message' | 'escalation' | 'merge_request' | 'convoy' | 'molecule' | 'agent';
type Priority = 'low' | 'medium' | 'high' | 'critical';

/** What a bead list row reads. */
function renderBead(bead: Bead): string {
  assert<Equals<typeof bead.status, BeadStatus>>();
  assert<Equals<typeof bead.type, BeadType>>();
  assert<Equals<typeof bead.priority, Priority>>();
  assert<Equals<typeof bead.body, string | null>>();
  assert<Equals<typeof bead.closed_at, string | null>>();
  assert<Equals<typeof bead.metadata, Record<string, unknown>>>();
  const p: 'low' | 'medium' | 'high' | 'critical' = bead.priority;
  const labels: string[] = bead.labels;
  const rig: string = bead.rig_id ?? '(town)';
  const assignee: string | null = bead.assignee_agent_bead_id;
  const parent: string | null = bead.parent_bead_id;
  switch (bead.status) {
    case 'open':
    case 'in_progress':
    case 'in_review':
      return `${bead.title} [${p}] ${labels.join(',')} ${rig} ${assignee ?? ''} ${parent ?? ''}`;
    case 'closed':
    case 'failed': {
      const exhaustive: 'closed' | 'failed' = bead.status;
      return `${bead.title} (${exhaustive} ${bead.closed_at ?? bead.updated_at})`;
    }
  }
}

/** What the activity feed reads from an event. */
function renderEvent(event: BeadEvent): string {
  assert<Equals<typeof event.rig_name, string | undefined>>();
  assert<Equals<typeof event.agent_id, string | null>>();
  assert<Equals<typeof event.old_value, string | null>>();
  const rigName: string | undefined = event.rig_name;
  const rigId: string | undefined = event.rig_id;
  const type: string = event.event_type;
  const at: string = event.created_at;
  const to: string = event.new_value ?? '';
  return `${at} ${type} ${event.bead_id} ${rigName ?? rigId ?? ''} ${to}`;
}

export async function beads(client: Client): Promise<void> {
  const { townId, rigId, beadId, otherBeadId } = ids;

  const all = await client.gastown.listBeads.query({ townId, status: 'in_progress', type: 'issue', limit: 50 });
  assert<Equals<typeof all, Bead[]>>();
  all.map(renderBead);
  // Every field is optional: the input may be left out.
  const everything = await client.gastown.listBeads.query();
  assert<Equals<typeof everything, Bead[]>>();
  await client.gastown.listBeads.query({ rigId, status: null, offset: 100 });

  const created = await client.gastown.createBead.mutate({
    rigId,
    townId,
    title: 'Fix the login redirect',
    body: 'After login the user lands on /undefined.',
    labels: ['bug', 'auth'],
    startImmediately: false,
  });
  assert<Equals<typeof created, Bead>>();
  const createdId: string = created.bead_id;

  const updated = await client.gastown.updateBead.mutate({
    rigId,
    beadId: createdId,
    status: 'in_review',
    priority: 'high',
    labels: ['bug'],
    metadata: { pr: 42 },
    parent_bead_id: null,
    depends_on: [otherBeadId],
  });
  assert<Equals<typeof updated, Bead>>();
  const status: 'open' | 'in_progress' | 'in_review' | 'closed' | 'failed' = updated.status;

  const started = await client.gastown.startBead.mutate({ rigId, beadId, townId });
  assert<Equals<typeof started, Bead>>();

  const one = await client.gastown.deleteBead.mutate({ rigId, beadId });
  const many = await client.gastown.deleteBead.mutate({ rigId, beadId: [beadId, otherBeadId] });
  const byStatus = await client.gastown.deleteBeadsByStatus.mutate({ rigId, status: 'failed', type: null });
  const deletedCount: number = one.deleted + many.deleted + byStatus.deleted;

  const suggestion = await client.gastown.enrichBead.mutate({ townId, body: 'the login page is slow' });
  assert<Equals<typeof suggestion, BeadSuggestion | null>>();
  if (suggestion !== null) {
    const title: string = suggestion.title;
    const labels: string[] = suggestion.labels;
    void [title, labels];
  }

  const slung = await client.gastown.sling.mutate({
    rigId,
    townId,
    title: 'Add dark mode',
    body: null,
    model: 'anthropic/claude-sonnet-4',
    labels: ['ui'],
  });
  assert<Equals<typeof slung, SlingResult>>();
  renderBead(slung.bead);
  const agentName: string = slung.agent.name;

  void [status, deletedCount, agentName];
}

export async function events(client: Client): Promise<void> {
  const { townId, rigId, beadId } = ids;

  const beadEvents = await client.gastown.getBeadEvents.query({ rigId, beadId, since: null, limit: 100 });
  assert<Equals<typeof beadEvents, BeadEvent[]>>();
  beadEvents.map(renderEvent);

  const townEvents = await client.gastown.getTownEvents.query({ townId, limit: 200 });
  assert<Equals<typeof townEvents, BeadEvent[]>>();
  const escalations: number = townEvents.filter((e) => e.event_type === 'escalated').length;
  const latest = townEvents.at(-1);
  const since: string | null = latest?.created_at ?? null;

  // The live feed: SSE through the split link (a WebSocket client types it the same way).
  const seen: BeadEvent[] = [];
  const subscription = client.gastown.watchTownEvents.subscribe(
    { townId, since, pollMs: 1_000 },
    {
      onStarted() {},
      onData({ id, data: event }) {
        // tracked events: the id is what a reconnect sends back as lastEventId
        assert<Equals<typeof id, string>>();
        assert<Equals<typeof event, BeadEvent>>();
        const rigName: string | undefined = event.rig_name;
        seen.push(event);
        renderEvent(event);
        void rigName;
      },
      onError(err) {
        const like: TRPCClientErrorLike<AppRouter> = err;
        const message: string = err.message;
        const code: string | undefined = err.data?.code;
        void [like, message, code];
      },
      onComplete() {},
    },
  );
  subscription.unsubscribe();

  void escalations;
}

export async function convoys(client: Client): Promise<void> {
  const { townId, convoyId, beadId, otherBeadId } = ids;

  const convoy = await client.gastown.getConvoy.query({ townId, convoyId });
  assert<Equals<typeof convoy, ConvoyDetail | null>>();
  if (convoy !== null) {
    const title: string = convoy.title;
    assert<Equals<typeof convoy.status, 'active' | 'landed'>>();
    assert<Equals<typeof convoy.merge_mode, 'review-then-land' | 'review-and-merge'>>();
    assert<Equals<typeof convoy.landed_at, string | null>>();
    assert<Equals<typeof convoy.feature_branch, string | null>>();
    const progress: number = convoy.closed_beads / convoy.total_beads;
    const staged: boolean = convoy.staged;
    for (const b of convoy.beads) {
      const who: string | null = b.assignee_agent_name;
      const beadStatus: string = b.status;
      void [who, beadStatus];
    }
    for (const edge of convoy.dependency_edges) {
      const arrow: string = `${edge.bead_id} -> ${edge.depends_on_bead_id}`;
      void arrow;
    }
    void [title, progress, staged];
  }

  const open = await client.gastown.listConvoys.query({ townId });
  assert<Equals<typeof open, ConvoyDetail[]>>();

  const landed = await client.gastown.closeConvoy.mutate({ townId, convoyId });
  assert<Equals<typeof landed, ConvoyDetail | null>>();
  const started = await client.gastown.startConvoy.mutate({ townId, convoyId });
  assert<Equals<typeof started, ConvoyDetail | null>>();
  const staged: boolean | undefined = started?.staged;

  const added = await client.gastown.convoyAddBead.mutate({ townId, convoyId, beadId, depends_on: [otherBeadId] });
  const removed = await client.gastown.convoyRemoveBead.mutate({ townId, convoyId, beadId });
  const total: number = added.total_beads - removed.total_beads;

  void [staged, total];
}

export async function mergeQueue(client: Client): Promise<void> {
  const { townId, rigId } = ids;

  const queue = await client.gastown.getMergeQueueData.query({ townId, rigId, limit: 50, since: null });
  assert<Equals<typeof queue, MergeQueueData>>();
  for (const item of queue.needsAttention.openPRs) {
    const branch: string = item.reviewMetadata.branch;
    const prUrl: string | null = item.reviewMetadata.pr_url;
    const retries: number = item.reviewMetadata.retry_count;
    const rigName: string | null = item.rigName;
    const source: string | undefined = item.sourceBead?.title;
    const convoyTitle: string | undefined = item.convoy?.title;
    const agent: string | undefined = item.agent?.name;
    void [branch, prUrl, retries, rigName, source, convoyTitle, agent, item.mrBead.title];
  }
  const failed: number = queue.needsAttention.failedReviews.length + queue.needsAttention.stalePRs.length;
  for (const entry of queue.activityLog) {
    const type: string = entry.event.event_type;
    const mrTitle: string | undefined = entry.mrBead?.title;
    const merged: string | null | undefined = entry.reviewMetadata?.merge_commit;
    void [type, mrTitle, merged];
  }
  void failed;
}
