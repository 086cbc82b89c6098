import { useQueryClient } from '@tanstack/react-query';
import { useCallback } from 'react';

import type { ForkResult } from '../../types/router';
import { useTRPC } from '../app/trpc';

/** After a fork: the town lists and the source's "forks of this town" are out of date. */
export function useRefreshAfterFork(): (sourceTownId: string, result: ForkResult) => void {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  return useCallback(
    (sourceTownId: string) => {
      void queryClient.invalidateQueries(trpc.gastown.listTowns.pathFilter());
      void queryClient.invalidateQueries(trpc.gastown.listOrgTowns.pathFilter());
      void queryClient.invalidateQueries(trpc.gastown.listForks.queryFilter({ townId: sourceTownId }));
    },
    [trpc, queryClient],
  );
}
