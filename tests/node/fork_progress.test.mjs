// gastown.forkProgress through the real @trpc/client (v11, no transformer): httpSubscriptionLink
// (SSE, token in connectionParams) and wsLink, each subscribed while forkTown.mutate runs with
// the same idempotencyKey; getForkStatus afterwards; another user sees nothing. Run by
// tests/e2e/test_node_clients.py with GASTOWN_URL, GASTOWN_TOKEN and GASTOWN_OTHER_TOKEN set.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createTRPCUntypedClient, httpLink, httpSubscriptionLink } from '@trpc/client';
import { EventSource } from 'eventsource';
import { URL_BASE, TOKEN, batch, http, rejection, webSocketClient } from './clients.mjs';

const PHASES = ['export', 'import', 'indexes', 'config', 'rigs', 'publish', 'done'];
const RANK = { ...Object.fromEntries(PHASES.map((p, i) => [p, i])), failed: PHASES.length - 1 };
const BEADS = 1500;
const OTHER_TOKEN = process.env.GASTOWN_OTHER_TOKEN;

const sseClient = (token) =>
  createTRPCUntypedClient({ links: [httpSubscriptionLink({ url: `${URL_BASE}/trpc`, EventSource, connectionParams: { token } })] });
const sse = sseClient(TOKEN);
const { wsClient, ws } = webSocketClient();
after(() => wsClient.close());

let source;

// A source with enough finished history that a fork takes a moment: beads created and closed
// through the front end's batch link, a hundred calls per request.
async function sourceTown() {
  if (source) return source;
  const town = await http.mutation('gastown.createTown', { name: 'Node progress source' });
  const rig = await http.mutation('gastown.createRig', { townId: town.id, name: 'web', gitUrl: 'https://github.com/acme/web.git' });
  for (let start = 0; start < BEADS; start += 100) {
    const beads = await Promise.all(
      Array.from({ length: 100 }, (_, i) => batch.mutation('gastown.createBead', { rigId: rig.id, title: `done ${start + i}` })),
    );
    await Promise.all(beads.map((b) => batch.mutation('gastown.updateBead', { rigId: rig.id, beadId: b.bead_id, status: 'closed' })));
  }
  source = town.id;
  return source;
}

// Subscribe; once the subscription has started, fork with the same key (the subscription is
// already waiting for it). Resolves when the subscription completes.
function watchWhileForking(client, key, fork) {
  const statuses = [];
  let forking;
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out; saw ${JSON.stringify(statuses.map((s) => s.phase))}`)), 30_000);
    const sub = client.subscription('gastown.forkProgress', { idempotencyKey: key }, {
      onStarted: () => {
        forking = fork();
        forking.catch(reject);
      },
      onData: ({ id, data: status }) => {
        assert.equal(typeof id, 'string'); // tracked: the id a reconnect resumes after
        statuses.push(status);
      },
      onError: (err) => {
        clearTimeout(timer);
        reject(err);
      },
      onComplete: () => {
        clearTimeout(timer);
        sub.unsubscribe();
        resolve();
      },
    });
  });
  return done.then(async () => ({ statuses, result: await forking }));
}

function assertProgress(statuses, key, result) {
  assert.ok(statuses.length > 0);
  for (let i = 1; i < statuses.length; i += 1) {
    const [a, b] = [statuses[i - 1], statuses[i]];
    assert.ok(RANK[b.phase] >= RANK[a.phase], `${a.phase} then ${b.phase}`);
    assert.ok(b.percent >= a.percent, `${a.percent} then ${b.percent}`);
    assert.ok(b.rowsDone >= a.rowsDone);
  }
  const phases = statuses.map((s) => s.phase).filter((p, i, all) => i === 0 || all[i - 1] !== p);
  assert.deepEqual(phases, PHASES);
  const copied = Object.entries(result.copied).reduce((sum, [table, n]) => (table === 'rigs' ? sum : sum + n), 0);
  const last = statuses.at(-1);
  assert.equal(last.phase, 'done');
  assert.equal(last.percent, 100);
  assert.equal(last.rowsDone, copied);
  assert.equal(last.rowsTotal, copied);
  assert.equal(last.error, null);
  assert.equal(last.idempotencyKey, key);
  for (const status of statuses) {
    assert.equal(status.townId, result.town.id);
    assert.equal(status.percent === 100, status.phase === 'done');
  }
}

test('httpSubscriptionLink: forkProgress while forkTown runs, ordered statuses ending in done', async () => {
  const sourceTownId = await sourceTown();
  const key = `node-sse-${crypto.randomUUID()}`;
  const { statuses, result } = await watchWhileForking(sse, key, () =>
    http.mutation('gastown.forkTown', { sourceTownId, newTownName: 'Watched over SSE', idempotencyKey: key }),
  );
  assertProgress(statuses, key, result);
  assert.ok(result.copied.beads >= BEADS);
  // The front end's poll reads the same final status; a late subscriber gets just that.
  const polled = await batch.query('gastown.getForkStatus', { idempotencyKey: key });
  assert.deepEqual(polled, statuses.at(-1));
  const late = [];
  await new Promise((resolve, reject) => {
    sse.subscription('gastown.forkProgress', { idempotencyKey: key }, { onData: ({ data }) => late.push(data), onError: reject, onComplete: resolve });
  });
  assert.deepEqual(late, [polled]);
});

test('wsLink: forkProgress and forkTown over one socket, ordered statuses ending in done', async () => {
  const sourceTownId = await sourceTown();
  const key = `node-ws-${crypto.randomUUID()}`;
  const { statuses, result } = await watchWhileForking(ws, key, () =>
    ws.mutation('gastown.forkTown', { sourceTownId, newTownName: 'Watched over WebSocket', idempotencyKey: key }),
  );
  assertProgress(statuses, key, result);
  assert.deepEqual(await ws.query('gastown.getForkStatus', { idempotencyKey: key }), statuses.at(-1));
});

test('another user can neither watch nor read the fork: NOT_FOUND', async () => {
  const sourceTownId = await sourceTown();
  const key = `node-mine-${crypto.randomUUID()}`;
  await http.mutation('gastown.forkTown', { sourceTownId, newTownName: 'Mine', idempotencyKey: key });
  const other = sseClient(OTHER_TOKEN);
  const err = await new Promise((resolve, reject) => {
    other.subscription('gastown.forkProgress', { idempotencyKey: key, waitMs: 200 }, {
      onData: (s) => reject(new Error(`saw ${JSON.stringify(s)}`)),
      onError: resolve,
      onComplete: () => reject(new Error('completed without an error')),
    });
  });
  assert.equal(err.data.code, 'NOT_FOUND');
  const otherHttp = createTRPCUntypedClient({
    links: [httpLink({ url: `${URL_BASE}/trpc`, headers: () => ({ Authorization: `Bearer ${OTHER_TOKEN}` }) })],
  });
  const read = await rejection(otherHttp.query('gastown.getForkStatus', { idempotencyKey: key }));
  assert.equal(read.data.code, 'NOT_FOUND');
  assert.equal(read.data.httpStatus, 404);
  assert.equal((await http.query('gastown.getForkStatus', { idempotencyKey: key })).phase, 'done');
});
