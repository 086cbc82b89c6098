// Acceptance: each front-end page's on-load calls (upstream apps/web, as listed in the pages
// report), replayed concurrently through the front end's client (splitLink: httpLink when
// context.skipBatch, else httpBatchLink) against the demo data, for a personal and an org town.
// Every call must answer with the fields the page reads, or PRECONDITION_FAILED for the
// procedures that need the agent runtime.
// Run by tests/e2e/test_front_end_pages.py with GASTOWN_URL, GASTOWN_TOKEN (the dev user),
// GASTOWN_PERSONAL_TOWN_ID, GASTOWN_ORG_TOWN_ID, GASTOWN_ORG_ID and GASTOWN_DEV_USER_ID set.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { TRPCClientError } from '@trpc/client';
import { frontEndClient } from './clients.mjs';

const PERSONAL_TOWN_ID = process.env.GASTOWN_PERSONAL_TOWN_ID;
const ORG_TOWN_ID = process.env.GASTOWN_ORG_TOWN_ID;
const ORG_ID = process.env.GASTOWN_ORG_ID;
const DEV_USER_ID = process.env.GASTOWN_DEV_USER_ID;
for (const [name, value] of Object.entries({ PERSONAL_TOWN_ID, ORG_TOWN_ID, ORG_ID, DEV_USER_ID })) {
  assert.ok(value, `GASTOWN_${name} must be set`);
}

const requests = [];
const client = frontEndClient({ onRequest: (r) => requests.push(r) });

// Procedures that need the agent runtime: they answer PRECONDITION_FAILED here.
const RUNTIME = new Set(
  ['ensureMayor', 'sendMessage', 'createPtySession', 'resizePtySession', 'getAgentStreamUrl', 'sling', 'forceRestartContainer', 'destroyContainer'].map(
    (p) => `gastown.${p}`,
  ),
);

// ---- literal sets (web/types/router.d.ts; cross-checked by the first test) -----------------
const BEAD_TYPE = ['issue', 'message', 'escalation', 'merge_request', 'convoy', 'molecule', 'agent'];
const BEAD_STATUS = ['open', 'in_progress', 'in_review', 'closed', 'failed'];
const PRIORITY = ['low', 'medium', 'high', 'critical'];
const BILLING_STATE = ['blocked', 'degraded', 'idle', 'paused', 'running', 'starting', 'stopping', 'warning'];
const RUN_POLICY = ['automatic', 'paused_by_user'];
const PAYER_TYPE = ['org', 'user'];
const SESSION_STATUS = ['idle', 'active', 'starting'];
const CONVOY_STATUS = ['active', 'landed'];
const MERGE_MODE = ['review-then-land', 'review-and-merge'];
const MERGE_STRATEGY = ['direct', 'pr'];
const REVIEW_MODE = ['rework', 'comments'];
const OWNER_TYPE = ['user', 'org'];
const WASTELAND_STATUS = ['active', 'disconnecting'];
const LITERALS = [
  ['Bead', 'type', BEAD_TYPE],
  ['Bead', 'status', BEAD_STATUS],
  ['Bead', 'priority', PRIORITY],
  ['BillingStatus', 'state', BILLING_STATE],
  ['BillingStatus', 'runPolicy', RUN_POLICY],
  ['BillingPayer', 'type', PAYER_TYPE],
  ['MayorSession', 'status', SESSION_STATUS],
  ['MayorSendResult', 'sessionStatus', SESSION_STATUS],
  ['ConvoyDetail', 'status', CONVOY_STATUS],
  ['ConvoyDetail', 'merge_mode', MERGE_MODE],
  ['TownConfig', 'merge_strategy', MERGE_STRATEGY],
  ['TownConfig', 'convoy_merge_mode', MERGE_MODE],
  ['TownConfig', 'owner_type', OWNER_TYPE],
  ['RefineryConfig', 'review_mode', REVIEW_MODE],
  ['RigOverrideConfig', 'review_mode', REVIEW_MODE],
  ['RigOverrideConfig', 'merge_strategy', MERGE_STRATEGY],
  ['RigOverrideConfig', 'convoy_merge_mode', MERGE_MODE],
  ['WastelandConnection', 'status', WASTELAND_STATUS],
];
// Event types the merge queue's activity log renders (plus babysit_started, which upstream's
// query also selects for babysat external PRs).
const ACTIVITY_TYPES = ['review_completed', 'pr_created', 'pr_creation_failed', 'rework_requested', 'review_submitted', 'status_changed', 'babysit_started'];

// ---- a small shape checker: every leaf check counts, failures are collected with their path -
const stats = { pages: 0, calls: 0, checks: 0, batches: 0, batchedOps: 0 };
const exercised = {};

class Checker {
  failures = [];
  ok(cond, path, what, value) {
    stats.checks += 1;
    if (!cond) this.failures.push(`${path}: expected ${what}, got ${show(value)}`);
    return cond;
  }
}
const show = (v) => (v === undefined ? 'undefined (absent)' : JSON.stringify(v)?.slice(0, 160));
const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

const str = (c, v, p) => c.ok(typeof v === 'string', p, 'a string', v);
const num = (c, v, p) => c.ok(typeof v === 'number' && Number.isFinite(v), p, 'a number', v);
const bool = (c, v, p) => c.ok(typeof v === 'boolean', p, 'a boolean', v);
const ts = (c, v, p) => c.ok(typeof v === 'string' && !Number.isNaN(Date.parse(v)), p, 'a parseable timestamp', v);
const oneOf = (values) => (c, v, p) => c.ok(values.includes(v), p, `one of ${values.join('|')}`, v);
const eq = (expected) => (c, v, p) => c.ok(v === expected, p, JSON.stringify(expected), v);
const nullable = (spec) => (c, v, p) => (v === null ? c.ok(true) : spec(c, v, p));
const optional = (spec) => (c, v, p) => (v === undefined ? c.ok(true) : spec(c, v, p));
const all = (...specs) => (c, v, p) => specs.forEach((s) => s(c, v, p));
const arrayOf = (spec) => (c, v, p) => {
  if (c.ok(Array.isArray(v), p, 'an array', v)) v.forEach((x, i) => spec(c, x, `${p}[${i}]`));
};
const object = (fields) => (c, v, p) => {
  if (c.ok(isObject(v), p, 'an object', v)) for (const [k, spec] of Object.entries(fields)) spec(c, v[k], `${p}.${k}`);
};
const recordOf = (spec) => (c, v, p) => {
  if (c.ok(isObject(v), p, 'an object', v)) for (const [k, x] of Object.entries(v)) spec(c, x, `${p}.${k}`);
};
const nonEmpty = (what) => (c, v, p) => c.ok(Array.isArray(v) && v.length > 0, p, `a non-empty array (${what})`, v);

// ---- what the pages read (pages report, sections 1-8) --------------------------------------
const TOWN_LISTED = object({ id: str, name: str, created_at: ts });
const RIG_SIDEBAR = object({ id: str, name: str });
const RIG_OVERVIEW = object({ id: str, name: str, default_branch: str, created_at: ts, git_url: str });
const BILLING = object({
  state: oneOf(BILLING_STATE),
  runPolicy: oneOf(RUN_POLICY),
  // Newer upstream always sends `enforcing`; this server omits it, which the page reads as false.
  enforcing: optional(bool),
  estimatedRunCharge: optional(num),
  estimatedHourlyCharge: optional(num),
  payer: optional(object({ type: oneOf(PAYER_TYPE), id: str })),
});
const MAYOR_STATUS = object({ configured: bool, townId: nullable(str), session: eq(null) });
const ALARM = object({
  alarm: object({ intervalLabel: str, nextFireAt: nullable(ts) }),
  agents: object({ total: num, working: num, idle: num, stalled: num, dead: num }),
  beads: object({ open: num, inProgress: num, inReview: num, failed: num, triageRequests: num }),
  patrol: object({ guppWarnings: num, guppEscalations: num, stalledAgents: num, orphanedHooks: num }),
  recentEvents: arrayOf(object({ time: ts, type: str, message: str })),
});
const BEAD_COUNTED = object({ type: oneOf(BEAD_TYPE), status: oneOf(BEAD_STATUS) });
const AGENT = object({
  id: str,
  name: str,
  role: str,
  status: str,
  current_hook_bead_id: nullable(str),
  last_activity_at: nullable(ts),
  created_at: ts,
  agent_status_message: nullable(str),
  agent_status_updated_at: nullable(ts),
});
const EVENT_METADATA = all(
  recordOf(() => {}),
  object({
    title: optional(str),
    failure_reason: optional(object({ message: optional(str) })),
    action: optional(str),
    resolution_notes: optional(str),
    message: optional(str),
    agent_name: optional(str),
    rig_name: optional(str),
    source: optional(str),
  }),
);
const EVENT = object({
  bead_event_id: str,
  bead_id: str,
  event_type: str,
  agent_id: nullable(str),
  created_at: ts,
  old_value: nullable(str),
  new_value: nullable(str),
  metadata: EVENT_METADATA,
  rig_id: optional(str),
  rig_name: optional(str),
});
const CONVOY = object({
  id: str,
  title: str,
  status: oneOf(CONVOY_STATUS),
  staged: bool,
  total_beads: num,
  closed_beads: num,
  feature_branch: nullable(str),
  merge_mode: oneOf(MERGE_MODE),
  created_at: ts,
  dependency_edges: arrayOf(object({ bead_id: str, depends_on_bead_id: str })),
  beads: arrayOf(object({ bead_id: str, title: str, status: str, rig_id: nullable(str), assignee_agent_name: nullable(str) })),
});
const BEAD = object({
  bead_id: str,
  type: oneOf(BEAD_TYPE),
  status: oneOf(BEAD_STATUS),
  title: str,
  body: nullable(str),
  priority: oneOf(PRIORITY),
  labels: arrayOf(str),
  rig_id: nullable(str),
  parent_bead_id: nullable(str),
  assignee_agent_bead_id: nullable(str),
  created_at: ts,
  metadata: all(
    recordOf(() => {}),
    object({
      convoy_id: optional(str),
      pr_url: optional(str),
      source_bead_id: optional(str),
      head_sha: optional(str),
      force_push_allowed: optional(bool),
      babysit_started_at: optional(ts),
      wasteland: optional(object({ kind: str })),
    }),
  ),
});
const ADMIN_ACCESS = object({ isAdminViewing: bool, ownerOrgId: nullable(str), ownerUserId: nullable(str) });
const DRAIN = object({ draining: bool, drainStartedAt: nullable(ts) });
const ROLE_MODELS = optional(object({ mayor: optional(str), refinery: optional(str), polecat: optional(str) }));
const TOWN_CONFIG = object({
  env_vars: recordOf(str),
  git_auth: optional(object({ github_token: optional(str), gitlab_token: optional(str), gitlab_instance_url: optional(str) })),
  default_model: optional(str),
  small_model: optional(str),
  role_models: ROLE_MODELS,
  max_polecats_per_rig: optional(num),
  refinery: optional(
    object({
      gates: arrayOf(str),
      auto_merge: bool,
      code_review: bool,
      review_mode: oneOf(REVIEW_MODE),
      auto_resolve_pr_feedback: bool,
      auto_resolve_merge_conflicts: bool,
      auto_merge_delay_minutes: nullable(num),
    }),
  ),
  merge_strategy: oneOf(MERGE_STRATEGY),
  staged_convoys_default: bool,
  convoy_merge_mode: oneOf(MERGE_MODE),
  owner_type: oneOf(OWNER_TYPE),
  github_cli_pat: optional(str),
  git_author_name: optional(str),
  git_author_email: optional(str),
  disable_ai_coauthor: bool,
  custom_instructions: optional(object({ polecat: optional(str), refinery: optional(str), mayor: optional(str) })),
  created_by_user_id: eq(DEV_USER_ID),
  organization_id: optional(str),
  alarm_interval_active: optional(num),
  alarm_interval_idle: optional(num),
});
const WASTELAND = object({ wasteland_id: str, upstream: str, rig_handle: str, dolthub_org: str, status: oneOf(WASTELAND_STATUS), connected_at: ts });
const RIG_CONFIG = object({
  default_model: optional(str),
  role_models: optional(object({ polecat: optional(str), refinery: optional(str) })),
  code_review: optional(bool),
  review_mode: optional(oneOf(REVIEW_MODE)),
  auto_resolve_pr_feedback: optional(bool),
  auto_resolve_merge_conflicts: optional(bool),
  auto_merge_delay_minutes: optional(nullable(num)),
  merge_strategy: optional(oneOf(MERGE_STRATEGY)),
  convoy_merge_mode: optional(oneOf(MERGE_MODE)),
  custom_instructions: optional(object({ polecat: optional(str), refinery: optional(str) })),
  git_push_flags: optional(str),
  max_concurrent_polecats: optional(num),
  max_dispatch_attempts: optional(num),
});
const MQ_CONVOY = object({
  convoy_id: str,
  title: str,
  feature_branch: nullable(str),
  merge_mode: nullable(oneOf(MERGE_MODE)),
  total_beads: num,
  closed_beads: num,
});
const mqItem = (bucket) =>
  object({
    mrBead: object({ bead_id: str, title: str, rig_id: nullable(str), created_at: ts, status: str }),
    sourceBead: nullable(object({ bead_id: str, title: str })),
    convoy: nullable(MQ_CONVOY),
    agent: nullable(object({ name: str })),
    rigName: nullable(str),
    reviewMetadata: object({ retry_count: num, pr_url: nullable(str) }),
    staleSince: bucket === 'stalePRs' ? ts : nullable(ts),
    failureReason: nullable(str),
  });
const MERGE_QUEUE = object({
  needsAttention: object({
    openPRs: arrayOf(mqItem('openPRs')),
    failedReviews: arrayOf(mqItem('failedReviews')),
    stalePRs: arrayOf(mqItem('stalePRs')),
  }),
  activityLog: arrayOf(
    object({
      event: object({
        bead_event_id: str,
        event_type: oneOf(ACTIVITY_TYPES),
        new_value: nullable(str),
        created_at: ts,
        metadata: object({ message: optional(str), feedback: optional(str), reason: optional(str) }),
      }),
      agent: nullable(object({ name: str })),
      sourceBead: nullable(object({ title: str, bead_id: str })),
      mrBead: nullable(object({ title: str, rig_id: nullable(str), bead_id: str })),
      reviewMetadata: nullable(object({ target_branch: nullable(str), pr_url: nullable(str), merge_commit: nullable(str) })),
      convoy: nullable(MQ_CONVOY),
      rigName: nullable(str),
    }),
  ),
});

// ---- the page runner --------------------------------------------------------------------
// A page is a list of waves; a wave maps the answers so far to calls fired together with
// Promise.all (so httpBatchLink batches them as on the real page). Calls with the same kind,
// path and input share one request (react-query de-duplicates them by query key); each
// reader's spec is applied to the answer.
//   call: { as, path, input, kind = 'query', spec, extra(checker, value, answers) }
async function loadPage(name, waves) {
  stats.pages += 1;
  const c = new Checker();
  const answers = {};
  const fired = [];
  const first = requests.length;
  const inflight = new Map();
  for (const wave of waves) {
    const calls = wave(answers).filter(Boolean);
    await Promise.all(
      calls.map(async (call) => {
        const kind = call.kind ?? 'query';
        const key = `${kind} ${call.path} ${JSON.stringify(call.input)}`;
        if (!inflight.has(key)) {
          stats.calls += 1;
          fired.push(call.path);
          const promise = kind === 'query' ? client.query(call.path, call.input) : client.mutation(call.path, call.input);
          inflight.set(key, promise.then((value) => ({ value }), (error) => ({ error })));
        }
        const outcome = await inflight.get(key);
        const where = `${name} › ${call.path}(${JSON.stringify(call.input) ?? ''})`;
        checkOutcome(c, where, call, outcome);
        if (call.as) answers[call.as] = outcome.value;
      }),
    );
  }
  const sent = requests.slice(first);
  c.ok(sent.length > 0 && sent.every((r) => r.batch), `${name}: requests`, 'all sent by httpBatchLink (batch=1)', sent.map((r) => r.url));
  if (fired.length > 1) c.ok(sent.some((r) => r.paths.length > 1), `${name}: requests`, 'at least one batch of several calls', sent.map((r) => r.paths));
  stats.batches += sent.length;
  stats.batchedOps += sent.reduce((n, r) => n + r.paths.length, 0);
  return { checker: c, answers, fired };
}

function checkOutcome(c, where, call, { value, error }) {
  if (error !== undefined) {
    const code = error?.data?.code;
    c.ok(code !== 'NOT_FOUND' && code !== 'INTERNAL_SERVER_ERROR', where, 'no NOT_FOUND / INTERNAL_SERVER_ERROR', `${code}: ${error?.message}`);
    if (!RUNTIME.has(call.path)) {
      c.ok(false, where, 'an answer', `${code}: ${error?.message}`);
      return;
    }
    c.ok(error instanceof TRPCClientError, where, 'a TRPCClientError', String(error));
    c.ok(code === 'PRECONDITION_FAILED', `${where} data.code`, 'PRECONDITION_FAILED', code);
    c.ok(error?.data?.httpStatus === 412, `${where} data.httpStatus`, '412', error?.data?.httpStatus);
    c.ok(/agent runtime is not available/i.test(error?.message ?? ''), `${where} message`, 'to say the agent runtime is not available', error?.message);
    return;
  }
  if (RUNTIME.has(call.path)) {
    c.ok(false, where, 'PRECONDITION_FAILED (no agent runtime here)', value);
    return;
  }
  if (call.spec) call.spec(c, value, where);
  if (call.extra) call.extra(c, value, where);
}

function assertClean({ checker }) {
  assert.deepEqual(checker.failures.slice(0, 40), [], `${checker.failures.length} failed check(s)`);
}

// ---- the towns ----------------------------------------------------------------------------
const TOWNS = [
  { kind: 'personal', townId: PERSONAL_TOWN_ID, organizationId: undefined },
  { kind: 'org', townId: ORG_TOWN_ID, organizationId: ORG_ID },
];

// The rigs and beads the URL-driven pages (rig, rig settings, bead drawer) need, loaded once.
const fixtures = new Map();
async function townFixture(town) {
  if (!fixtures.has(town.townId)) {
    const rigs = await client.query('gastown.listRigs', { townId: town.townId });
    const [convoys, ...beads] = await Promise.all([
      client.query('gastown.listConvoys', { townId: town.townId }),
      ...rigs.map((rig) => client.query('gastown.listBeads', { rigId: rig.id })),
    ]);
    const convoyMembers = new Set(convoys.flatMap((cv) => cv.beads.map((b) => b.bead_id)));
    fixtures.set(town.townId, { rigs, convoyMembers, beadsByRig: new Map(rigs.map((rig, i) => [rig.id, beads[i]])) });
  }
  return fixtures.get(town.townId);
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);
const tally = (town, key, n) => {
  exercised[town.kind] ??= {};
  exercised[town.kind][key] = n;
};

// Section 2: every town page renders the layout (sidebar, terminal bar, onboarding tooltips).
function layout(town) {
  const { townId } = town;
  return [
    () => [
      { as: 'layout.town', path: 'gastown.getTown', input: { townId }, spec: object({ id: eq(townId), name: str }) },
      { as: 'layout.rigs', path: 'gastown.listRigs', input: { townId }, spec: all(nonEmpty('rigs'), arrayOf(RIG_SIDEBAR)) },
      { as: 'layout.billing', path: 'gastown.getBillingStatus', input: { townId }, spec: BILLING },
      { as: 'layout.mayor', path: 'gastown.getMayorStatus', input: { townId }, spec: all(MAYOR_STATUS, object({ townId: eq(townId) })) },
      { path: 'gastown.getAlarmStatus', input: { townId }, spec: ALARM },
      { path: 'gastown.listRigs', input: { townId }, spec: arrayOf(object({ id: str })) }, // onboarding tooltips
    ],
    (answers) => {
      const billing = answers['layout.billing'];
      const calls = (answers['layout.rigs'] ?? []).map((rig) => ({ path: 'gastown.listBeads', input: { rigId: rig.id }, spec: arrayOf(BEAD_COUNTED) }));
      if (billing && !billing.enforcing && billing.runPolicy !== 'paused_by_user') {
        calls.push({ path: 'gastown.ensureMayor', input: { townId }, kind: 'mutation' });
      }
      // createPtySession({townId, agentId}) runs once getMayorStatus has a session: never here.
      if (answers['layout.mayor']?.session) calls.push({ path: 'gastown.createPtySession', input: { townId, agentId: answers['layout.mayor'].session.agentId }, kind: 'mutation' });
      return calls;
    },
  ];
}

// Combine the layout's waves with a page's waves (wave i of each fires together).
function withLayout(town, pageWaves) {
  const layoutWaves = layout(town);
  const n = Math.max(layoutWaves.length, pageWaves.length);
  return Array.from({ length: n }, (_, i) => (answers) => [...(layoutWaves[i]?.(answers) ?? []), ...(pageWaves[i]?.(answers) ?? [])]);
}

test('the literal sets checked here are those of web/types/router.d.ts', () => {
  const dts = readFileSync(new URL('../../web/types/router.d.ts', import.meta.url), 'utf8');
  for (const [type, field, expected] of LITERALS) {
    const block = dts.match(new RegExp(`export type ${type} = \\{\\n([\\s\\S]*?)\\n\\};`))?.[1];
    assert.ok(block, `router.d.ts declares ${type}`);
    const line = block.split('\n').find((l) => l.trimStart().startsWith(`${field}:`) || l.trimStart().startsWith(`${field}?:`));
    assert.ok(line, `${type}.${field} is declared`);
    const literals = [...line.matchAll(/"([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual([...literals].sort(), [...expected].sort(), `${type}.${field}`);
  }
});

test('personal town list: listTowns', async () => {
  const page = await loadPage('town list', [
    () => [{ path: 'gastown.listTowns', input: undefined, spec: all(nonEmpty('towns'), arrayOf(TOWN_LISTED)), extra: (c, towns, p) => c.ok(towns.some((t) => t.id === PERSONAL_TOWN_ID), p, 'to list the personal demo town', towns.map((t) => t.id)) }],
  ]);
  assertClean(page);
});

test('org town list: listOrgTowns', async () => {
  const page = await loadPage('org town list', [
    () => [
      {
        path: 'gastown.listOrgTowns',
        input: { organizationId: ORG_ID },
        spec: all(nonEmpty('org towns'), arrayOf(all(TOWN_LISTED, object({ owner_org_id: eq(ORG_ID) })))),
        extra: (c, towns, p) => c.ok(towns.some((t) => t.id === ORG_TOWN_ID), p, 'to list the org demo town', towns.map((t) => t.id)),
      },
    ],
  ]);
  assertClean(page);
});

for (const town of TOWNS) {
  const { townId, kind } = town;

  test(`${kind} town: layout alone fires ensureMayor (PRECONDITION_FAILED) and no PTY session`, async () => {
    const page = await loadPage(`${kind} layout`, layout(town));
    assert.equal(page.answers['layout.mayor'].session, null);
    assert.ok(page.fired.includes('gastown.ensureMayor'), 'billing lets the layout call ensureMayor');
    assert.ok(!page.fired.includes('gastown.createPtySession'));
    assertClean(page);
  });

  test(`${kind} town: overview page`, async () => {
    const page = await loadPage(
      `${kind} overview`,
      withLayout(town, [
        () => [
          { path: 'gastown.getTown', input: { townId }, spec: object({ name: str }) },
          { as: 'rigs', path: 'gastown.listRigs', input: { townId }, spec: arrayOf(RIG_OVERVIEW) },
          {
            as: 'events',
            path: 'gastown.getTownEvents',
            input: { townId, limit: 200 },
            spec: all(nonEmpty('town events'), arrayOf(EVENT)),
          },
          { as: 'convoys', path: 'gastown.listConvoys', input: { townId }, spec: all(nonEmpty('convoys'), arrayOf(CONVOY)) },
          { path: 'gastown.checkAdminAccess', input: { townId }, spec: ADMIN_ACCESS },
          { path: 'gastown.getDrainStatus', input: { townId }, spec: DRAIN },
          { path: 'gastown.checkAdminAccess', input: { townId }, spec: object({ isAdminViewing: bool }) }, // drain banner, same key
        ],
        (answers) =>
          (answers.rigs ?? []).flatMap((rig) => [
            { as: `beads:${rig.id}`, path: 'gastown.listBeads', input: { rigId: rig.id }, spec: all(nonEmpty('beads'), arrayOf(BEAD_COUNTED)) },
            { as: `agents:${rig.id}`, path: 'gastown.listAgents', input: { rigId: rig.id }, spec: arrayOf(AGENT) },
          ]),
      ]),
    );
    const { rigs, events, convoys } = page.answers;
    // The overview shows rig_name on events: every event of a bead in an existing rig has it.
    const rigNames = new Map(rigs.map((r) => [r.id, r.name]));
    const c = page.checker;
    events.forEach((e, i) => {
      if (e.rig_id !== undefined && rigNames.has(e.rig_id)) c.ok(e.rig_name === rigNames.get(e.rig_id), `overview events[${i}].rig_name`, rigNames.get(e.rig_id), e.rig_name);
    });
    c.ok(events.some((e) => typeof e.rig_name === 'string'), 'overview events', 'some events with rig_name', undefined);
    const agents = rigs.flatMap((r) => page.answers[`agents:${r.id}`] ?? []);
    c.ok(agents.length > 0, 'overview agents', 'a non-empty list of agents across rigs', agents.length);
    tally(town, 'rigs', rigs.length);
    tally(town, 'beads', sum(rigs.map((r) => page.answers[`beads:${r.id}`]?.length ?? 0)));
    tally(town, 'agents', agents.length);
    tally(town, 'events (limit 200)', events.length);
    tally(town, 'events with rig_name', events.filter((e) => e.rig_name !== undefined).length);
    tally(town, 'events with a rig_id of a deleted rig', events.filter((e) => e.rig_id !== undefined && !rigNames.has(e.rig_id)).length);
    tally(town, 'convoys', convoys.length);
    tally(town, 'convoy beads', sum(convoys.map((cv) => cv.beads.length)));
    tally(town, 'convoy dependency edges', sum(convoys.map((cv) => cv.dependency_edges.length)));
    assertClean(page);
  });

  test(`${kind} town: settings page`, async () => {
    const configChecks = (c, config, p) => {
      c.ok(config.owner_type === (kind === 'org' ? 'org' : 'user'), `${p}.owner_type`, kind, config.owner_type);
      if (kind === 'org') c.ok(config.organization_id === ORG_ID, `${p}.organization_id`, ORG_ID, config.organization_id);
    };
    const page = await loadPage(
      `${kind} settings`,
      withLayout(town, [
        () => [
          { path: 'gastown.getTown', input: { townId }, spec: object({ name: str }) },
          { path: 'gastown.getTownConfig', input: { townId }, spec: TOWN_CONFIG, extra: configChecks },
          { path: 'gastown.checkAdminAccess', input: { townId }, spec: ADMIN_ACCESS },
          { path: 'gastown.checkAdminAccess', input: { townId }, spec: ADMIN_ACCESS }, // AdminViewingBanner, same key
          { path: 'gastown.listRigs', input: { townId }, spec: arrayOf(object({ id: str, name: str, git_url: str, default_branch: str })) },
          // WastelandSettingsSection is on personal towns only.
          kind === 'personal' && { path: 'gastown.getTownWastelandConnection', input: { townId }, spec: nullable(WASTELAND) },
        ],
      ]),
    );
    assertClean(page);
  });

  test(`${kind} town: rig pages ({rigId} only inputs)`, async () => {
    const { rigs } = await townFixture(town);
    let agents = 0;
    for (const rig of rigs) {
      const page = await loadPage(
        `${kind} rig ${rig.name}`,
        withLayout(town, [
          () => [
            { path: 'gastown.getRig', input: { rigId: rig.id }, spec: object({ name: str, default_branch: str, town_id: eq(townId) }) },
            { path: 'gastown.listBeads', input: { rigId: rig.id }, spec: all(nonEmpty('beads'), arrayOf(all(BEAD, object({ rig_id: eq(rig.id) })))) },
            { as: 'agents', path: 'gastown.listAgents', input: { rigId: rig.id }, spec: arrayOf(all(AGENT, object({ rig_id: eq(rig.id) }))) },
            { path: 'gastown.listConvoys', input: { townId }, spec: arrayOf(CONVOY) },
          ],
        ]),
      );
      agents += page.answers.agents?.length ?? 0;
      assertClean(page);
    }
    assert.ok(agents > 0, 'the rigs have agents');
  });

  test(`${kind} town: rig settings pages`, async () => {
    const { rigs } = await townFixture(town);
    for (const rig of rigs) {
      const page = await loadPage(
        `${kind} rig settings ${rig.name}`,
        withLayout(town, [
          () => [
            { path: 'gastown.getRig', input: { rigId: rig.id, townId }, spec: object({ name: str, config: RIG_CONFIG }) },
            { path: 'gastown.getTownConfig', input: { townId }, spec: TOWN_CONFIG },
          ],
        ]),
      );
      assertClean(page);
    }
  });

  test(`${kind} town: merges page, all rigs then each rig`, async () => {
    const page = await loadPage(
      `${kind} merges`,
      withLayout(town, [
        () => [
          { path: 'gastown.listRigs', input: { townId }, spec: arrayOf(RIG_SIDEBAR) },
          { as: 'queue', path: 'gastown.getMergeQueueData', input: { townId, rigId: undefined, limit: 200 }, spec: MERGE_QUEUE },
        ],
        // Choosing a rig in the filter adds rigId.
        (answers) =>
          (answers['layout.rigs'] ?? []).map((rig) => ({
            as: `queue:${rig.id}`,
            path: 'gastown.getMergeQueueData',
            input: { townId, rigId: rig.id, limit: 200 },
            spec: MERGE_QUEUE,
            extra: (c, q, p) => {
              for (const items of Object.values(q.needsAttention)) items.forEach((item, i) => c.ok(item.mrBead.rig_id === rig.id, `${p} item ${i}`, `an MR of rig ${rig.id}`, item.mrBead.rig_id));
              q.activityLog.forEach((entry, i) => entry.mrBead && c.ok(entry.mrBead.rig_id === rig.id, `${p} activityLog[${i}]`, `a bead of rig ${rig.id}`, entry.mrBead.rig_id));
            },
          })),
      ]),
    );
    const { queue } = page.answers;
    const c = page.checker;
    const attention = Object.values(queue.needsAttention).flat();
    c.ok(attention.length > 0, `${kind} merges needsAttention`, 'some merge requests needing attention', queue.needsAttention);
    c.ok(queue.activityLog.length > 0, `${kind} merges activityLog`, 'a non-empty activity log', queue.activityLog.length);
    for (const [bucket, items] of Object.entries(queue.needsAttention)) tally(town, `needsAttention.${bucket}`, items.length);
    tally(town, 'activityLog', queue.activityLog.length);
    tally(town, 'activityLog review events', queue.activityLog.filter((e) => e.event.event_type !== 'status_changed').length);
    tally(town, 'needsAttention with convoy', attention.filter((i) => i.convoy).length);
    assertClean(page);
  });

  test(`${kind} town: bead drawer (getRig → town_id → listConvoys)`, async () => {
    const { rigs, beadsByRig, convoyMembers } = await townFixture(town);
    let opened = 0;
    let inConvoys = 0;
    let beadEvents = 0;
    for (const rig of rigs) {
      const beads = beadsByRig.get(rig.id);
      // A task, a merge request, a convoy member, a child bead and a bead with child messages,
      // when the rig has them.
      const picks = new Set(
        [
          beads.find((b) => b.type === 'issue'),
          beads.find((b) => b.type === 'merge_request'),
          beads.find((b) => convoyMembers.has(b.bead_id)),
          beads.find((b) => typeof b.metadata?.convoy_id === 'string'),
          beads.find((b) => b.parent_bead_id !== null),
          beads.find((b) => beads.some((m) => m.type === 'message' && m.parent_bead_id === b.bead_id)),
        ].filter(Boolean),
      );
      for (const bead of picks) {
        opened += 1;
        const page = await loadPage(`${kind} bead drawer ${bead.bead_id}`, [
          () => [
            {
              path: 'gastown.listBeads',
              input: { rigId: rig.id },
              spec: arrayOf(BEAD),
              extra: (c, list, p) => {
                const found = list.find((b) => b.bead_id === bead.bead_id);
                if (c.ok(found !== undefined, p, `the drawer's bead ${bead.bead_id} in the list`, undefined)) BEAD(c, found, `${p} bead`);
                list.filter((b) => b.type === 'message' && b.parent_bead_id === bead.bead_id).forEach((m, i) => object({ body: nullable(str), created_at: ts })(c, m, `${p} child message ${i}`));
              },
            },
            { path: 'gastown.listAgents', input: { rigId: rig.id }, spec: arrayOf(object({ id: str, name: str })) },
            { as: 'rig', path: 'gastown.getRig', input: { rigId: rig.id }, spec: object({ town_id: eq(townId) }) },
            {
              path: 'gastown.getBeadEvents',
              input: { rigId: rig.id, beadId: bead.bead_id },
              spec: arrayOf(all(EVENT, object({ bead_id: eq(bead.bead_id), rig_name: optional(eq(rig.name)) }))),
              extra: (c, events) => {
                beadEvents += events.length;
              },
            },
          ],
          (answers) =>
            answers.rig?.town_id
              ? [
                  {
                    path: 'gastown.listConvoys',
                    input: { townId: answers.rig.town_id },
                    spec: arrayOf(CONVOY),
                    extra: (c, convoys, p) => {
                      if (!convoyMembers.has(bead.bead_id)) return;
                      inConvoys += 1;
                      c.ok(convoys.some((cv) => cv.beads.some((b) => b.bead_id === bead.bead_id && b.rig_id === rig.id)), p, `a convoy holding ${bead.bead_id}`, undefined);
                    },
                  },
                ]
              : [],
        ]);
        assertClean(page);
      }
    }
    assert.ok(opened > 0);
    assert.ok(beadEvents > 0, 'the opened beads have events');
    assert.ok(inConvoys > 0, 'some opened bead is in a convoy');
    tally(town, 'bead drawers opened', opened);
    tally(town, 'bead drawers of convoy members', inConvoys);
    tally(town, 'bead events shown in drawers', beadEvents);
  });

  test(`${kind} town: runtime actions answer PRECONDITION_FAILED`, async () => {
    // Conditional or on-click calls that need the agent runtime: the first-task sendMessage,
    // a terminal on an agent (create, resize), the agent drawer's stream, sling, and the
    // settings page's container buttons.
    const { rigs } = await townFixture(town);
    const agents = await client.query('gastown.listAgents', { rigId: rigs[0].id });
    assert.ok(agents.length > 0);
    const agentId = agents[0].id;
    const page = await loadPage(`${kind} runtime actions`, [
      () => [
        { path: 'gastown.sendMessage', input: { townId, message: 'Build the first feature' }, kind: 'mutation' },
        { path: 'gastown.createPtySession', input: { townId, agentId }, kind: 'mutation' },
        { path: 'gastown.resizePtySession', input: { townId, agentId, ptyId: 'pty-1', cols: 120, rows: 40 }, kind: 'mutation' },
        { path: 'gastown.getAgentStreamUrl', input: { townId, agentId } },
        { path: 'gastown.sling', input: { rigId: rigs[0].id, title: 'Slung from the acceptance test' }, kind: 'mutation' },
        { path: 'gastown.forceRestartContainer', input: { townId }, kind: 'mutation' },
        { path: 'gastown.destroyContainer', input: { townId }, kind: 'mutation' },
      ],
    ]);
    assert.equal(page.fired.length, 7);
    assertClean(page);
  });
}

after(() => {
  console.log(`front-end pages: ${stats.pages} page loads, ${stats.calls} calls, ${stats.checks} checks, ${stats.batches} HTTP requests carrying ${stats.batchedOps} operations`);
  console.log(`demo data exercised: ${JSON.stringify(exercised)}`);
});
