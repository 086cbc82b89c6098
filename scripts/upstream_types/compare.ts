// Compares web/types/router.d.ts with upstream's declaration, procedure by procedure:
// upstream's input must be assignable to ours, our output to upstream's, and the kinds equal.
// `Upstream` resolves to the file given to scripts/check_upstream_types.py (never committed).
import type { inferProcedureInput, inferProcedureOutput } from '@trpc/server';
import type { GastownRouter as Ours } from '../../web/types/router';
import type { GastownRouter as Up } from './upstream/router';

type UpRec = Up['_def']['record'];
type OurRec = Ours['_def']['record'];
type Common = keyof UpRec & keyof OurRec;
// No JSON value can satisfy these two upstream declarations (README, "TypeScript types").
type Waived = 'debugAgentMetadata';
type NoDisposable<T> = T extends infer U & Disposable ? U : T;
type InOk<K extends Common> = [inferProcedureInput<UpRec[K]>] extends [inferProcedureInput<OurRec[K]>] ? 'ok' : 'INPUT';
type OutOk<K extends Common> = [inferProcedureOutput<OurRec[K]>] extends [NoDisposable<inferProcedureOutput<UpRec[K]>>]
  ? 'ok'
  : 'OUTPUT';
type KindOk<K extends Common> = [UpRec[K]['_def']['type']] extends [OurRec[K]['_def']['type']] ? 'ok' : 'KIND';
type Report = { [K in Common]: `${InOk<K>} ${OutOk<K>} ${KindOk<K>}` };
export type Failing = { [K in Exclude<Common, Waived>]: Report[K] extends 'ok ok ok' ? never : `${K}: ${Report[K]}` }[Exclude<Common, Waived>];
export type Missing = Exclude<keyof UpRec, keyof OurRec>;
export type Shared = Common;
