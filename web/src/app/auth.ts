// The bearer token: kept in sessionStorage (this tab only, gone when it closes), read from
// `/#token=…` once at start-up and removed from the address bar at once.
import { useSyncExternalStore } from 'react';

const STORAGE_KEY = 'gastown.token';

export type OrgRole = 'owner' | 'member' | 'billing_manager';
export type OrgMembership = { orgId: string; role: OrgRole };

/** What the app reads from the token's payload (the server verifies the signature). */
export type Identity = {
  userId: string;
  isAdmin: boolean;
  orgs: OrgMembership[];
};

const listeners = new Set<() => void>();
let current: string | null = readStored();

function readStored(): string | null {
  try {
    return window.sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage disabled: the token lives in memory for this page only
  }
}

function emit(): void {
  for (const listener of listeners) listener();
}

export function getToken(): string | null {
  return current;
}

export function setToken(token: string | null): void {
  current = token;
  try {
    if (token === null) window.sessionStorage.removeItem(STORAGE_KEY);
    else window.sessionStorage.setItem(STORAGE_KEY, token);
  } catch {
    // Storage disabled: keep the in-memory token only.
  }
  emit();
}

/** `#token=…` in the address: take it, then drop it from the address and from history. */
export function takeTokenFromLocation(): void {
  const hash = window.location.hash;
  if (!hash.startsWith('#')) return;
  const params = new URLSearchParams(hash.slice(1));
  const token = params.get('token');
  if (token === null) return;
  params.delete('token');
  const rest = params.toString();
  const url = window.location.pathname + window.location.search + (rest ? `#${rest}` : '');
  window.history.replaceState(window.history.state, '', url);
  if (token.trim() !== '') setToken(token.trim());
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function useToken(): string | null {
  return useSyncExternalStore(subscribe, getToken, () => null);
}

function decodeSegment(segment: string): unknown {
  const base64 = segment.replace(/-/g, '+').replace(/_/g, '/');
  const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
  const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

function isRole(value: unknown): value is OrgRole {
  return value === 'owner' || value === 'member' || value === 'billing_manager';
}

/** The identity a token claims, or null when it is not a JWT of the expected shape. */
export function identityOf(token: string): Identity | null {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[1] === undefined) return null;
  let payload: unknown;
  try {
    payload = decodeSegment(parts[1]);
  } catch {
    return null;
  }
  if (typeof payload !== 'object' || payload === null) return null;
  const claims = payload as Record<string, unknown>;
  if (typeof claims.kiloUserId !== 'string' || claims.kiloUserId === '') return null;
  const orgs: OrgMembership[] = [];
  if (Array.isArray(claims.orgMemberships)) {
    for (const m of claims.orgMemberships as unknown[]) {
      if (typeof m !== 'object' || m === null) continue;
      const { orgId, role } = m as Record<string, unknown>;
      if (typeof orgId === 'string' && isRole(role)) orgs.push({ orgId, role });
    }
  }
  return { userId: claims.kiloUserId, isAdmin: claims.isAdmin === true, orgs };
}

/** Organizations where the caller may work with towns (and fork into): owner or member. */
export function workingOrgs(identity: Identity): OrgMembership[] {
  return identity.orgs.filter((m) => m.role !== 'billing_manager');
}

/** How an organization is named in the app: the token carries ids only. */
export function orgLabel(orgId: string): string {
  return `Organization ${orgId.slice(0, 8)}`;
}
