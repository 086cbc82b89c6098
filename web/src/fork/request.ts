// A fork as the app sends it, and the forks sent but not yet answered, kept in sessionStorage
// with their idempotencyKey: a retry (the Retry button, a double click, a reload of the page)
// sends the very same input and key, so the server makes at most one town.
import type { ForkOrgTownInput, ForkResult, ForkTownInput } from '../../types/router';
import { single, type Client } from '../app/trpc';

const STORAGE_KEY = 'gastown.pendingForks';

export type ForkTarget = { kind: 'personal' } | { kind: 'org'; orgId: string };

export type ForkRequest = {
  sourceTownId: string;
  sourceName: string;
  target: ForkTarget;
  newTownName: string;
  includeGitAuthor: boolean;
  includeEnvVars: boolean;
  idempotencyKey: string;
};

export function newKey(): string {
  return typeof crypto.randomUUID === 'function'
    ? crypto.randomUUID()
    : Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

type Options = Omit<ForkRequest, 'idempotencyKey' | 'sourceName'> & { dryRun: boolean; idempotencyKey: string | null };

/** One call of forkTown / forkOrgTown, on its own request (a fork is long: never batched). */
export function sendFork(client: Client, options: Options): Promise<ForkResult> {
  const base: ForkTownInput = {
    sourceTownId: options.sourceTownId,
    newTownName: options.newTownName,
    includeGitAuthor: options.includeGitAuthor,
    includeEnvVars: options.includeEnvVars,
    dryRun: options.dryRun,
    idempotencyKey: options.idempotencyKey,
  };
  if (options.target.kind === 'org') {
    const input: ForkOrgTownInput = { ...base, organizationId: options.target.orgId };
    return client.gastown.forkOrgTown.mutate(input, single);
  }
  return client.gastown.forkTown.mutate(base, single);
}

export function sendRequest(client: Client, request: ForkRequest): Promise<ForkResult> {
  return sendFork(client, { ...request, dryRun: false });
}

function isRequest(value: unknown): value is ForkRequest {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  const target = r.target as Record<string, unknown> | null | undefined;
  return (
    typeof r.sourceTownId === 'string' &&
    typeof r.sourceName === 'string' &&
    typeof r.newTownName === 'string' &&
    typeof r.includeGitAuthor === 'boolean' &&
    typeof r.includeEnvVars === 'boolean' &&
    typeof r.idempotencyKey === 'string' &&
    typeof target === 'object' &&
    target !== null &&
    (target.kind === 'personal' || (target.kind === 'org' && typeof target.orgId === 'string'))
  );
}

export function pendingForks(): ForkRequest[] {
  try {
    const parsed: unknown = JSON.parse(window.sessionStorage.getItem(STORAGE_KEY) ?? '[]');
    return Array.isArray(parsed) ? parsed.filter(isRequest) : [];
  } catch {
    return [];
  }
}

function store(requests: ForkRequest[]): void {
  try {
    if (requests.length === 0) window.sessionStorage.removeItem(STORAGE_KEY);
    else window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify(requests));
  } catch {
    // Storage disabled: a reload then forgets the pending fork; the key still guards retries.
  }
}

export function rememberPending(request: ForkRequest): void {
  store([...pendingForks().filter((r) => r.idempotencyKey !== request.idempotencyKey), request]);
}

export function forgetPending(key: string): void {
  store(pendingForks().filter((r) => r.idempotencyKey !== key));
}
