// gastown.forkTown through the real @trpc/client (v11, no transformer): httpLink, the front
// end's httpBatchLink, and wsLink. Run by tests/e2e/test_node_clients.py with GASTOWN_URL and
// GASTOWN_TOKEN set.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { batch, http, rejection, webSocketClient } from './clients.mjs';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const { wsClient, ws } = webSocketClient();
after(() => wsClient.close());

let sourceId;
let sourceRigId;

async function source() {
  if (sourceId) return;
  const town = await http.mutation('gastown.createTown', { name: 'Node fork source' });
  sourceId = town.id;
  const rig = await http.mutation('gastown.createRig', { townId: sourceId, name: 'web', gitUrl: 'https://github.com/acme/web.git' });
  sourceRigId = rig.id;
  for (const title of ['first', 'second']) {
    const bead = await http.mutation('gastown.createBead', { rigId: sourceRigId, title });
    await http.mutation('gastown.updateBead', { rigId: sourceRigId, beadId: bead.bead_id, status: 'closed' });
  }
  await http.mutation('gastown.createBead', { rigId: sourceRigId, title: 'still open' });
}

function assertForkResult(result, name) {
  assert.match(result.town.id, UUID);
  assert.notEqual(result.town.id, sourceId);
  assert.equal(result.town.name, name);
  assert.equal(result.town.forked_from.town_id, sourceId);
  assert.equal(result.rigs.length, 1);
  assert.equal(result.rigs[0].town_id, result.town.id);
  assert.equal(result.rigs[0].name, 'web');
  assert.notEqual(result.rigs[0].id, sourceRigId);
  assert.deepEqual(result.rigIdMapping, { [sourceRigId]: result.rigs[0].id });
  assert.equal(result.copied.beads, 2);
  assert.equal(result.copied.rigs, 1);
  assert.equal(result.skipped.beads_active, 1);
  assert.equal(result.forked_from.town_id, sourceId);
  assert.ok(Array.isArray(result.warnings));
  const missing = result.warnings.find((w) => w.code === 'GIT_CREDENTIALS_MISSING');
  assert.deepEqual(missing.rigIds, [result.rigs[0].id]);
}

test('httpLink: forkTown returns a ForkResult and getTown shows the lineage', async () => {
  await source();
  const key = `node-${crypto.randomUUID()}`;
  const result = await http.mutation('gastown.forkTown', { sourceTownId: sourceId, newTownName: 'Forked over HTTP', idempotencyKey: key });
  assertForkResult(result, 'Forked over HTTP');
  const town = await http.query('gastown.getTown', { townId: result.town.id });
  assert.equal(town.forked_from.town_id, sourceId);
  assert.match(town.forked_from.forked_at, /^\d{4}-\d\d-\d\dT/);
  const beads = await http.query('gastown.listBeads', { rigId: result.rigs[0].id });
  assert.equal(beads.length, 2);
  // A retry through the front end's batch link returns the first result.
  const again = await batch.mutation('gastown.forkTown', { sourceTownId: sourceId, newTownName: 'Forked over HTTP', idempotencyKey: key });
  assert.deepEqual(again, result);
  const towns = await batch.query('gastown.listTowns');
  assert.equal(towns.filter((t) => t.id === result.town.id).length, 1);
});

test('httpLink: a fork input error is BAD_REQUEST naming the field', async () => {
  await source();
  const err = await rejection(http.mutation('gastown.forkTown', { sourceTownId: sourceId, newTownName: '' }));
  assert.equal(err.data.code, 'BAD_REQUEST');
  assert.equal(err.data.httpStatus, 400);
  assert.match(err.message, /\$\.newTownName/);
});

test('wsLink: forkTown, then getTown on the new town over the same socket', async () => {
  await source();
  const key = `node-ws-${crypto.randomUUID()}`;
  const result = await ws.mutation('gastown.forkTown', { sourceTownId: sourceId, newTownName: 'Forked over WebSocket', idempotencyKey: key });
  assertForkResult(result, 'Forked over WebSocket');
  const town = await ws.query('gastown.getTown', { townId: result.town.id });
  assert.equal(town.forked_from.town_id, sourceId);
  const err = await rejection(ws.mutation('gastown.forkTown', { sourceTownId: sourceId, newTownName: 'Other name', idempotencyKey: key }));
  assert.equal(err.data.code, 'CONFLICT');
  assert.equal(err.data.httpStatus, 409);
});

test('wsLink: a dry run returns the report and no town', async () => {
  await source();
  const dry = await ws.mutation('gastown.forkTown', { sourceTownId: sourceId, newTownName: 'dry', dryRun: true });
  assert.equal(dry.town, null);
  assert.equal(dry.copied.beads, 2);
  assert.deepEqual(dry.rigs, []);
});
