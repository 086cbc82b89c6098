// The clients the Node tests use: the real @trpc/client (v11, no transformer) with the links
// the front end uses, all pointed at GASTOWN_URL with the bearer token GASTOWN_TOKEN.
import assert from 'node:assert/strict';
import {
  createTRPCUntypedClient,
  createWSClient,
  httpBatchLink,
  httpBatchStreamLink,
  httpLink,
  splitLink,
  wsLink,
} from '@trpc/client';
import { WebSocket } from 'ws';

export const URL_BASE = process.env.GASTOWN_URL;
export const TOKEN = process.env.GASTOWN_TOKEN;
const headers = () => ({ Authorization: `Bearer ${TOKEN}` });
const url = `${URL_BASE}/trpc`;

export const http = createTRPCUntypedClient({ links: [httpLink({ url, headers })] });
export const batch = createTRPCUntypedClient({ links: [httpBatchLink({ url, headers })] });
export const streaming = createTRPCUntypedClient({ links: [httpBatchStreamLink({ url, headers })] });
// The front end's client: splitLink of httpLink (context.skipBatch) and httpBatchLink.
// `onRequest({url, method, batch, paths})` (optional) sees every HTTP request either link sends.
export function frontEndClient({ onRequest } = {}) {
  const observed = onRequest
    ? (input, init) => {
        const requestUrl = typeof input === 'string' ? input : input.url ?? String(input);
        const parsed = new globalThis.URL(requestUrl);
        const paths = decodeURIComponent(parsed.pathname.replace(/^.*\/trpc\//, '')).split(',');
        onRequest({ url: requestUrl, method: init?.method ?? 'GET', batch: parsed.searchParams.get('batch') === '1', paths });
        return globalThis.fetch(input, init);
      }
    : undefined;
  return createTRPCUntypedClient({
    links: [
      splitLink({
        condition: (op) => op.context.skipBatch === true,
        true: httpLink({ url, headers, fetch: observed }),
        false: httpBatchLink({ url, headers, fetch: observed }),
      }),
    ],
  });
}
export const frontEnd = frontEndClient();

export function webSocketClient() {
  const wsClient = createWSClient({ url: URL_BASE.replace(/^http/, 'ws') + '/trpc', WebSocket, connectionParams: { token: TOKEN } });
  return { wsClient, ws: createTRPCUntypedClient({ links: [wsLink({ client: wsClient })] }) };
}

export async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail('expected the call to reject');
}
