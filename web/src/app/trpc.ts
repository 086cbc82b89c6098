// The one client module: every call to the server goes through `/trpc` with the stock
// @trpc/client, single requests when a call asks for `context: { skipBatch: true }` and
// batched otherwise, as the upstream front end does.
import { createTRPCClient, httpBatchLink, httpLink, splitLink, type TRPCClient } from '@trpc/client';
import { createTRPCContext } from '@trpc/tanstack-react-query';

import type { AppRouter } from '../../types/router';
import { getToken } from './auth';

export const TRPC_URL = '/trpc';

export const { TRPCProvider, useTRPC, useTRPCClient } = createTRPCContext<AppRouter>();

export type Client = TRPCClient<AppRouter>;

function headers(): Record<string, string> {
  const token = getToken();
  return token === null ? {} : { Authorization: `Bearer ${token}` };
}

export function makeClient(): Client {
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.context.skipBatch === true,
        true: httpLink({ url: TRPC_URL, headers }),
        false: httpBatchLink({ url: TRPC_URL, headers, maxItems: 10 }),
      }),
    ],
  });
}

/** For long calls (a fork) that must not hold up a batch of short reads. */
export const single = { context: { skipBatch: true } } as const;
