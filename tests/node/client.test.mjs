// The real @trpc/client (v11, no transformer) against the running server: httpLink,
// httpBatchLink, httpBatchStreamLink and wsLink, as the front end uses them.
// Run by tests/e2e/test_node_clients.py with GASTOWN_URL and GASTOWN_TOKEN set.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { TRPCClientError } from '@trpc/client';
import { frontEnd as client, rejection, streaming, webSocketClient } from './clients.mjs';

const { wsClient, ws } = webSocketClient();
after(() => wsClient.close());

let townId;
let rigId;

test('httpLink mutations create a town, a rig and a bead', async () => {
  const town = await client.mutation('gastown.createTown', { name: 'From @trpc/client' }, { context: { skipBatch: true } });
  assert.match(town.id, /^[0-9a-f-]{36}$/);
  assert.equal(town.forked_from, null);
  townId = town.id;
  const rig = await client.mutation('gastown.createRig', { townId, name: 'web', gitUrl: 'https://github.com/acme/web.git' });
  assert.equal(rig.town_id, townId);
  rigId = rig.id;
  const bead = await client.mutation('gastown.createBead', { rigId, title: 'Hello from Node' });
  assert.deepEqual(bead.labels, ['gt:held']);
});

test('httpBatchLink: two queries in one request, one failing with NOT_FOUND', async () => {
  const [town, missing] = await Promise.allSettled([
    client.query('gastown.getTown', { townId }),
    client.query('gastown.getTown', { townId: crypto.randomUUID() }),
  ]);
  assert.equal(town.status, 'fulfilled');
  assert.equal(town.value.id, townId);
  assert.equal(missing.status, 'rejected');
  assert.ok(missing.reason instanceof TRPCClientError);
  assert.equal(missing.reason.data.code, 'NOT_FOUND');
  assert.equal(missing.reason.data.httpStatus, 404);
  assert.equal(missing.reason.shape.code, -32004);
});

test('validation errors reach the client as BAD_REQUEST naming the field', async () => {
  const err = await rejection(client.mutation('gastown.createTown', { name: '' }));
  assert.equal(err.data.code, 'BAD_REQUEST');
  assert.match(err.message, /\$\.name/);
});

test('httpBatchStreamLink streams a batch', async () => {
  const [beads, rigs] = await Promise.all([
    streaming.query('gastown.listBeads', { rigId }),
    streaming.query('gastown.listRigs', { townId }),
  ]);
  assert.equal(beads.length, 1);
  assert.equal(rigs[0].id, rigId);
});

test('wsLink: query, mutation and an error over one socket', async () => {
  const town = await ws.query('gastown.getTown', { townId });
  assert.equal(town.name, 'From @trpc/client');
  const bead = await ws.mutation('gastown.createBead', { rigId, title: 'Over WebSocket', startImmediately: true });
  assert.deepEqual(bead.labels, []);
  const err = await rejection(ws.query('gastown.getTown', { townId: crypto.randomUUID() }));
  assert.equal(err.data.code, 'NOT_FOUND');
});

test('wsLink subscription: town events arrive as they happen', async () => {
  const seen = [];
  await new Promise((resolve, reject) => {
    const sub = ws.subscription('gastown.watchTownEvents', { townId, pollMs: 100 }, {
      onData: ({ id, data: event }) => {
        assert.equal(typeof id, 'string'); // tracked: the id a reconnect resumes after
        seen.push(event);
        if (event.event_type === 'created' && seen.some((e) => e.bead_id === event.bead_id) && event.metadata?.title === 'Late bead') {
          sub.unsubscribe();
          resolve();
        }
      },
      onError: reject,
    });
    setTimeout(() => client.mutation('gastown.createBead', { rigId, title: 'Late bead' }).catch(reject), 300);
    setTimeout(() => reject(new Error(`timed out; saw ${JSON.stringify(seen.map((e) => e.event_type))}`)), 5000);
  });
  assert.ok(seen.length >= 3);
});
