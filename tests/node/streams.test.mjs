// Long-lived streams through the real @trpc/client (v11): keep-alive pings (SSE `event: ping`,
// wsLink's keepAlive PING/PONG) and reconnects that resume watchTownEvents from the last
// tracked id, with every event written meanwhile received exactly once. Run by
// tests/e2e/test_node_clients.py with GASTOWN_URL and GASTOWN_TOKEN set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTRPCUntypedClient, createWSClient, httpSubscriptionLink, wsLink } from '@trpc/client';
import { EventSource } from 'eventsource';
import { WebSocket } from 'ws';
import { URL_BASE, TOKEN, http } from './clients.mjs';

const EPOCH = '2000-01-01T00:00:00.000Z';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function townWithRig(name) {
  const town = await http.mutation('gastown.createTown', { name });
  const rig = await http.mutation('gastown.createRig', { townId: town.id, name: 'r', gitUrl: 'https://github.com/acme/r.git' });
  return { townId: town.id, rigId: rig.id };
}
const beads = async (rigId, n, prefix) => {
  for (let i = 0; i < n; i++) await http.mutation('gastown.createBead', { rigId, title: `${prefix} ${i}` });
};
// Every bead event of the town, oldest first: what the subscription must deliver, once each.
const written = async (townId) =>
  (await http.query('gastown.getTownEvents', { townId, limit: 100 })).map((e) => e.bead_event_id).reverse();

async function until(condition, what, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

// An EventSource whose responses can be cut mid-stream as a network failure would (not an
// abort: the EventSource then reconnects by itself, sending Last-Event-ID), and which counts
// the server's pings.
function droppableEventSource() {
  const state = { requests: [], drops: [], pings: 0 };
  const fetchThatDrops = async (url, init) => {
    state.requests.push({ url: String(url), lastEventId: new Headers(init?.headers).get('last-event-id') });
    const response = await globalThis.fetch(url, init);
    const reader = response.body.getReader();
    const body = new ReadableStream({
      start(controller) {
        state.drops.push(() => {
          controller.error(new TypeError('connection dropped'));
          reader.cancel().catch(() => {});
        });
      },
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (err) {
          controller.error(err);
        }
      },
    });
    return new Response(body, { status: response.status, headers: response.headers });
  };
  class CountingEventSource extends EventSource {
    constructor(url, init) {
      super(url, { ...init, fetch: fetchThatDrops });
      this.addEventListener('ping', () => (state.pings += 1));
    }
  }
  return { state, EventSource: CountingEventSource };
}

test('httpSubscriptionLink: the server pings an idle stream every second; the client stays connected', async () => {
  const { townId } = await townWithRig('Node SSE ping');
  const { state, EventSource: ES } = droppableEventSource();
  const client = createTRPCUntypedClient({
    links: [httpSubscriptionLink({ url: `${URL_BASE}/trpc`, EventSource: ES, connectionParams: { token: TOKEN } })],
  });
  const seen = [];
  const sub = client.subscription('gastown.watchTownEvents', { townId, pollMs: 100 }, { onData: (e) => seen.push(e), onError: (e) => seen.push(e) });
  await sleep(2_500);
  sub.unsubscribe();
  assert.ok(state.pings >= 2, `pings: ${state.pings}`);
  assert.deepEqual(seen, []); // pings never reach onData
  assert.equal(state.requests.length, 1); // no reconnect
});

test('httpSubscriptionLink: a dropped stream reconnects with Last-Event-ID and resumes without loss or repetition', async () => {
  const { townId, rigId } = await townWithRig('Node SSE resume');
  await beads(rigId, 3, 'before');
  const { state, EventSource: ES } = droppableEventSource();
  const client = createTRPCUntypedClient({
    links: [httpSubscriptionLink({ url: `${URL_BASE}/trpc`, EventSource: ES, connectionParams: { token: TOKEN } })],
  });
  const received = [];
  const sub = client.subscription('gastown.watchTownEvents', { townId, since: EPOCH, pollMs: 100 }, {
    onData: ({ id, data }) => received.push({ id, event: data.bead_event_id }),
    onError: (err) => received.push({ error: err.message }),
  });
  await until(() => received.length >= 3, 'the first three events');
  state.drops[0](); // the connection breaks
  await beads(rigId, 4, 'while away'); // written while the client is away
  await until(() => received.length >= 7, 'the events written while away');
  await sleep(300); // nothing more may come (no repetition)
  sub.unsubscribe();
  assert.ok(state.requests.length >= 2, 'the EventSource reconnected');
  assert.equal(state.requests[1].lastEventId, received[2].id, 'the reconnect sent the last tracked id');
  assert.deepEqual(received.map((r) => r.event), await written(townId));
});

// A ws WebSocket that records the frames the client sends and can be killed like a lost network.
function recordingWebSocket() {
  const state = { sockets: [], sent: [] };
  class RecordingWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      state.sockets.push(this);
    }
    send(data, ...rest) {
      state.sent.push(String(data));
      return super.send(data, ...rest);
    }
  }
  return { state, WebSocket: RecordingWebSocket };
}

test('wsLink keepAlive: the client PINGs an idle socket and the server answers PONG', async () => {
  const { state, WebSocket: WS } = recordingWebSocket();
  const pongs = [];
  const wsClient = createWSClient({
    url: URL_BASE.replace(/^http/, 'ws') + '/trpc',
    WebSocket: WS,
    connectionParams: { token: TOKEN },
    keepAlive: { enabled: true, intervalMs: 300, pongTimeoutMs: 1_000 },
  });
  try {
    const ws = createTRPCUntypedClient({ links: [wsLink({ client: wsClient })] });
    await ws.query('gastown.listTowns');
    state.sockets[0].on('message', (data) => String(data) === 'PONG' && pongs.push(Date.now()));
    await sleep(1_300);
    assert.ok(state.sent.filter((f) => f === 'PING').length >= 3, `sent: ${state.sent}`);
    assert.ok(pongs.length >= 3, `pongs: ${pongs.length}`);
    assert.equal(state.sockets.length, 1, 'the socket stayed up (each PING answered in time)');
    assert.ok(Array.isArray(await ws.query('gastown.listTowns')));
  } finally {
    wsClient.close();
  }
});

test('wsLink: a killed socket reconnects, re-subscribes with lastEventId and resumes without loss or repetition', async () => {
  const { townId, rigId } = await townWithRig('Node WS resume');
  await beads(rigId, 3, 'before');
  const { state, WebSocket: WS } = recordingWebSocket();
  const wsClient = createWSClient({ url: URL_BASE.replace(/^http/, 'ws') + '/trpc', WebSocket: WS, connectionParams: { token: TOKEN } });
  try {
    const ws = createTRPCUntypedClient({ links: [wsLink({ client: wsClient })] });
    const received = [];
    const sub = ws.subscription('gastown.watchTownEvents', { townId, since: EPOCH, pollMs: 100 }, {
      onData: ({ id, data }) => received.push({ id, event: data.bead_event_id }),
      onError: (err) => received.push({ error: err.message }),
    });
    await until(() => received.length >= 3, 'the first three events');
    state.sockets[0].terminate(); // no close frame: as a lost network
    await beads(rigId, 4, 'while away');
    await until(() => received.length >= 7, 'the events written while away');
    await sleep(300);
    sub.unsubscribe();
    assert.ok(state.sockets.length >= 2, 'the client reconnected');
    const resubscribe = state.sent
      .flatMap((f) => (f.startsWith('{') || f.startsWith('[') ? [JSON.parse(f)].flat() : []))
      .filter((m) => m.method === 'subscription')
      .at(-1);
    assert.equal(resubscribe.params.lastEventId, received[2].id, 'the re-subscribe carried the last tracked id');
    assert.deepEqual(received.map((r) => r.event), await written(townId));
  } finally {
    wsClient.close();
  }
});
