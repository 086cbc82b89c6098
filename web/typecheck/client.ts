// The client the front end builds: subscriptions over SSE (or a WebSocket), queries and
// mutations batched unless the caller asks for `context: { skipBatch: true }`.
import {
  createTRPCClient,
  createWSClient,
  httpBatchLink,
  httpLink,
  httpSubscriptionLink,
  splitLink,
  wsLink,
  type TRPCClient,
} from '@trpc/client';

import type { AppRouter } from '../types/router';
import { assert, type Equals } from './helpers';

export const TRPC_URL = 'http://127.0.0.1:8787/trpc';

export function makeClient(token: string) {
  const headers = () => ({ Authorization: `Bearer ${token}` });
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({ url: TRPC_URL, connectionParams: { token } }),
        false: splitLink({
          condition: (op) => op.context.skipBatch === true,
          true: httpLink({ url: TRPC_URL, headers }),
          false: httpBatchLink({ url: TRPC_URL, headers }),
        }),
      }),
    ],
  });
}

export function makeWsClient(token: string) {
  const wsClient = createWSClient({ url: 'ws://127.0.0.1:8787/trpc', connectionParams: { token } });
  return createTRPCClient<AppRouter>({ links: [wsLink<AppRouter>({ client: wsClient })] });
}

export type Client = ReturnType<typeof makeClient>;

assert<Equals<Client, TRPCClient<AppRouter>>>();
assert<Equals<ReturnType<typeof makeWsClient>, TRPCClient<AppRouter>>>();
