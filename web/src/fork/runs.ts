// Forks being sent, by idempotencyKey, for the whole app: the dialog that started one may be
// closed (Esc) while it runs, and a reload resumes the forks that never got an answer. Each
// run is sent with its stored key and input, so resuming never makes a second town.
import { useSyncExternalStore } from 'react';

import type { ForkResult } from '../../types/router';
import { describeError } from '../app/errors';
import type { Client } from '../app/trpc';
import { forgetPending, pendingForks, rememberPending, sendRequest, type ForkRequest } from './request';

export type ForkRun =
  | { status: 'running'; request: ForkRequest }
  | { status: 'done'; request: ForkRequest; result: ForkResult }
  | { status: 'failed'; request: ForkRequest; error: unknown; network: boolean };

let runs: ReadonlyMap<string, ForkRun> = new Map();
const attached = new Set<string>(); // keys an open dialog shows itself
const listeners = new Set<() => void>();

function update(key: string, run: ForkRun | null): void {
  const next = new Map(runs);
  if (run === null) next.delete(key);
  else next.set(key, run);
  runs = next;
  for (const listener of listeners) listener();
}

export function startFork(client: Client, request: ForkRequest, onDone: (result: ForkResult) => void): void {
  const key = request.idempotencyKey;
  if (runs.get(key)?.status === 'running') return; // a double click: the first send goes on
  rememberPending(request);
  update(key, { status: 'running', request });
  sendRequest(client, request).then(
    (result) => {
      forgetPending(key);
      update(key, { status: 'done', request, result });
      onDone(result);
    },
    (error: unknown) => {
      const { network } = describeError(error);
      // Without an answer the fork may have happened: keep it pending, retry with the key.
      if (!network) forgetPending(key);
      update(key, { status: 'failed', request, error, network });
    },
  );
}

/** Send again the forks this tab started and never heard back about (after a reload). */
export function resumePending(client: Client, onDone: (result: ForkResult) => void): void {
  for (const request of pendingForks()) {
    if (!runs.has(request.idempotencyKey)) startFork(client, request, onDone);
  }
}

export function dismissRun(key: string): void {
  const run = runs.get(key);
  if (run?.status === 'running') return;
  forgetPending(key);
  update(key, null);
}

export function attach(key: string): () => void {
  attached.add(key);
  for (const listener of listeners) listener();
  return () => {
    attached.delete(key);
    for (const listener of listeners) listener();
  };
}

let detachedSnapshot: ForkRun[] = [];
let detachedFrom: ReadonlyMap<string, ForkRun> | null = null;
let detachedKeys = '';

function detached(): ForkRun[] {
  const keys = [...attached].sort().join(',');
  if (detachedFrom !== runs || detachedKeys !== keys) {
    detachedFrom = runs;
    detachedKeys = keys;
    detachedSnapshot = [...runs.values()].filter((r) => !attached.has(r.request.idempotencyKey));
  }
  return detachedSnapshot;
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function useForkRun(key: string): ForkRun | undefined {
  return useSyncExternalStore(subscribe, () => runs.get(key));
}

/** Runs no open dialog is showing: the app-wide banner shows these. */
export function useDetachedRuns(): ForkRun[] {
  return useSyncExternalStore(subscribe, detached);
}
