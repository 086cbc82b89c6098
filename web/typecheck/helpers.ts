// Compile-time assertions for the type test (nothing here runs: tsc --noEmit only).

/** true when A and B are the same type (not merely mutually assignable). */
export type Equals<A, B> =
  (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;

/** `assert<Equals<typeof x, Y>>()` fails to compile unless the condition is `true`. */
export function assert<T extends true>(): T | void {}

/** Realistic ids, as the front end gets them from the URL or from earlier answers. */
export const ids = {
  townId: '3f9a1c2e-6b7d-4e8f-9a0b-1c2d3e4f5a6b',
  orgTownId: '7c1e9b52-0d4a-4f6e-8b3c-2a9d8e7f6c5b',
  organizationId: 'b8e2d4f6-1a3c-4e5f-9d7b-6c8a0e2f4d1b',
  rigId: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
  beadId: 'c4d5e6f7-a8b9-4c0d-9e1f-2a3b4c5d6e7f',
  otherBeadId: 'd5e6f7a8-b9c0-4d1e-8f2a-3b4c5d6e7f8a',
  convoyId: 'e6f7a8b9-c0d1-4e2f-9a3b-4c5d6e7f8a9b',
  agentId: 'f7a8b9c0-d1e2-4f3a-8b4c-5d6e7f8a9b0c',
  ptyId: 'pty-1',
  wastelandId: 'wl-main',
} satisfies Record<string, string>;

/**
 * What the client infers for a procedure declared `output: void`: tRPC (transformer: false)
 * runs outputs through `Serialize`, and `Serialize<void>` is `never`, exactly as for a real
 * router's `t.procedure.mutation(async () => {})`. Pinned here so a change is noticed.
 */
export type VoidOutput = never;
