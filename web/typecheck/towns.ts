// Towns, org towns, forks, rigs and configuration, called the way the front end does.
import type {
  ForkedFrom,
  ForkError,
  ForkResult,
  ForkStatus,
  OrgTown,
  Rig,
  RigDetail,
  RigOverrideConfig,
  Town,
  TownConfig,
} from '../types/router';
import type { Client } from './client';
import { assert, ids, type Equals, type VoidOutput } from './helpers';

export async function towns(client: Client): Promise<void> {
  const { townId, organizationId } = ids;

  // listTowns takes no input (NoInput | void).
  const mine = await client.gastown.listTowns.query();
  assert<Equals<typeof mine, Town[]>>();
  const alsoMine = await client.gastown.listTowns.query({}, { context: { skipBatch: true } });
  assert<Equals<typeof alsoMine, Town[]>>();
  for (const t of mine) {
    const name: string = t.name;
    const owner: string = t.owner_user_id;
    const createdAt: string = t.created_at;
    assert<Equals<typeof t.forked_from, ForkedFrom | null>>();
    if (t.forked_from !== null) {
      const sourceId: string = t.forked_from.town_id;
      const forkedAt: string = t.forked_from.forked_at;
      const by: string = t.forked_from.by_user_id;
      void [sourceId, forkedAt, by];
    }
    void [name, owner, createdAt];
  }

  const town = await client.gastown.getTown.query({ townId });
  assert<Equals<typeof town, Town | OrgTown>>();
  const townName: string = town.name;
  const updatedAt: string = town.updated_at;
  // No discriminant between the two: the front end narrows on the org-only key.
  if ('owner_org_id' in town) {
    assert<Equals<typeof town, OrgTown>>();
    const org: string = town.owner_org_id;
    const creator: string = town.created_by_user_id;
    void [org, creator];
  } else {
    assert<Equals<typeof town, Town>>();
  }

  const created = await client.gastown.createTown.mutate({ name: 'My town' });
  assert<Equals<typeof created, Town>>();
  const newId: string = created.id;

  const deleted = await client.gastown.deleteTown.mutate({ townId: newId });
  assert<Equals<typeof deleted, VoidOutput>>();

  // Org towns.
  const orgTown = await client.gastown.createOrgTown.mutate({ organizationId, name: 'Team town' });
  assert<Equals<typeof orgTown, OrgTown>>();
  const orgOwner: string = orgTown.owner_org_id;
  const orgTowns = await client.gastown.listOrgTowns.query({ organizationId });
  assert<Equals<typeof orgTowns, OrgTown[]>>();
  const orgRigs = await client.gastown.listOrgRigs.query({ organizationId, townId: orgTown.id });
  assert<Equals<typeof orgRigs, Rig[]>>();
  const orgDeleted = await client.gastown.deleteOrgTown.mutate({ organizationId, townId: orgTown.id });
  assert<Equals<typeof orgDeleted, VoidOutput>>();

  void [townName, updatedAt, orgOwner];
}

export async function forks(client: Client): Promise<void> {
  const { townId, organizationId } = ids;

  const dry = await client.gastown.forkTown.mutate(
    { sourceTownId: townId, newTownName: 'Copy', dryRun: true },
    { context: { skipBatch: true } },
  );
  assert<Equals<typeof dry, ForkResult>>();
  // A dry run answers `town: null`; a real fork the new town.
  assert<Equals<typeof dry.town, Town | OrgTown | null>>();
  const beadsToCopy: number = dry.copied.beads;
  const eventsToCopy: number = dry.copied.bead_events;
  const skippedActive: number = dry.skipped.beads_active;
  const skippedConvoys: number = dry.skipped.convoys_not_landed;

  const fork = await client.gastown.forkTown.mutate({
    sourceTownId: townId,
    newTownName: 'My fork',
    includeGitAuthor: true,
    includeEnvVars: false,
    idempotencyKey: 'fork-2026-11-24-1',
  });
  if (fork.town !== null) {
    const forkId: string = fork.town.id;
    const forkName: string = fork.town.name;
    void [forkId, forkName];
  }
  const forkedFrom: string = fork.forked_from.town_id;
  for (const [oldRigId, newRigId] of Object.entries(fork.rigIdMapping)) {
    const pair: [string, string] = [oldRigId, newRigId];
    void pair;
  }
  for (const rig of fork.rigs) {
    const gitUrl: string = rig.git_url;
    void gitUrl;
  }
  for (const w of fork.warnings) {
    const code: string = w.code;
    const message: string = w.message;
    assert<Equals<typeof w.keys, string[] | undefined>>();
    const keys: string[] = w.keys ?? [];
    const rigIds: string[] = w.rigIds ?? [];
    void [code, message, keys, rigIds];
  }

  const orgFork = await client.gastown.forkOrgTown.mutate({
    organizationId,
    sourceTownId: townId,
    newTownName: 'Team fork',
    idempotencyKey: null,
  });
  assert<Equals<typeof orgFork, ForkResult>>();

  // Progress of a fork by its key: a poll, and the live feed (subscribed as the fork starts).
  const status = await client.gastown.getForkStatus.query({ idempotencyKey: 'fork-2026-11-24-1' });
  assert<Equals<typeof status, ForkStatus>>();
  assert<Equals<typeof status.phase, 'export' | 'import' | 'indexes' | 'config' | 'rigs' | 'publish' | 'done' | 'failed'>>();
  assert<Equals<typeof status.error, ForkError | null>>();
  const newTownId: string | null = status.townId;
  const progressLabel = `${status.phase} ${status.rowsDone}/${status.rowsTotal} (${status.percent.toFixed(0)}%)`;
  const watching = client.gastown.forkProgress.subscribe(
    { idempotencyKey: 'fork-2026-11-24-1', waitMs: 10_000 },
    {
      onData({ id, data: update }) {
        assert<Equals<typeof id, string>>();
        assert<Equals<typeof update, ForkStatus>>();
        const failure: string | undefined = update.error?.message;
        const finished: boolean = update.phase === 'done' || update.phase === 'failed';
        void [failure, finished];
      },
      onError(err) {
        const code: string | undefined = err.data?.code; // NOT_FOUND: no fork with this key
        void code;
      },
      onComplete() {},
    },
  );
  watching.unsubscribe();
  void [newTownId, progressLabel];

  // The town page's "forks of this town": Town or OrgTown rows, each with its lineage.
  const children = await client.gastown.listForks.query({ townId });
  assert<Equals<typeof children, (Town | OrgTown)[]>>();
  for (const child of children) {
    assert<Equals<typeof child.forked_from, ForkedFrom | null>>();
    const parent: string | undefined = child.forked_from?.town_id;
    void parent;
  }

  void [beadsToCopy, eventsToCopy, skippedActive, skippedConvoys, forkedFrom];
}

export async function rigs(client: Client): Promise<void> {
  const { townId, rigId, organizationId } = ids;

  const list = await client.gastown.listRigs.query({ townId });
  assert<Equals<typeof list, Rig[]>>();
  const first = list[0];
  if (first !== undefined) {
    const branch: string = first.default_branch;
    assert<Equals<typeof first.platform_integration_id, string | null>>();
    void branch;
  }

  const rig = await client.gastown.getRig.query({ rigId, townId });
  assert<Equals<typeof rig, RigDetail>>();
  assert<Equals<typeof rig.config, RigOverrideConfig>>();
  assert<Equals<typeof rig.config.merge_strategy, 'direct' | 'pr' | undefined>>();
  assert<Equals<typeof rig.config.auto_merge_delay_minutes, number | null | undefined>>();
  const polecatModel: string | undefined = rig.config.role_models?.polecat;
  const agentNames: string[] = rig.agents.map((a) => a.name);
  const beadTitles: string[] = rig.beads.map((b) => b.title);

  const createdRig = await client.gastown.createRig.mutate({
    townId,
    name: 'frontend',
    gitUrl: 'https://github.com/acme/frontend.git',
    defaultBranch: 'main',
  });
  assert<Equals<typeof createdRig, Rig>>();

  const orgRig = await client.gastown.createOrgRig.mutate({
    organizationId,
    townId,
    name: 'backend',
    gitUrl: 'https://github.com/acme/backend.git',
    platformIntegrationId: null,
  });
  assert<Equals<typeof orgRig, Rig>>();

  const updated = await client.gastown.updateRigConfig.mutate({
    rigId,
    townId,
    config: {
      default_model: 'anthropic/claude-sonnet-4',
      review_mode: 'comments',
      merge_strategy: 'pr',
      convoy_merge_mode: 'review-then-land',
      auto_merge_delay_minutes: null,
      role_models: { refinery: 'openai/gpt-5' },
      custom_instructions: { polecat: 'Write tests first.' },
      max_concurrent_polecats: 3,
    },
  });
  assert<Equals<typeof updated, RigDetail>>();

  const removed = await client.gastown.deleteRig.mutate({ rigId, townId });
  assert<Equals<typeof removed, VoidOutput>>();

  void [polecatModel, agentNames, beadTitles];
}

export async function townConfig(client: Client): Promise<void> {
  const { townId } = ids;

  const config = await client.gastown.getTownConfig.query({ townId });
  assert<Equals<typeof config, TownConfig>>();
  const envVars: Record<string, string> = config.env_vars;
  assert<Equals<typeof config.owner_type, 'user' | 'org'>>();
  assert<Equals<typeof config.merge_strategy, 'direct' | 'pr'>>();
  assert<Equals<typeof config.convoy_merge_mode, 'review-then-land' | 'review-and-merge'>>();
  const githubToken: string | undefined = config.git_auth.github_token;
  const stagedDefault: boolean = config.staged_convoys_default;
  const gates: string[] = config.refinery?.gates ?? [];
  assert<Equals<typeof config.refinery, TownConfig['refinery']>>();
  if (config.refinery !== undefined) {
    assert<Equals<typeof config.refinery.review_mode, 'rework' | 'comments'>>();
    assert<Equals<typeof config.refinery.auto_merge_delay_minutes, number | null>>();
  }
  const sleepAfter: number | undefined = config.container?.sleep_after_minutes;

  const saved = await client.gastown.updateTownConfig.mutate({
    townId,
    config: {
      env_vars: { NODE_ENV: 'production' },
      git_auth: { github_token: 'ghp_example' },
      merge_strategy: 'direct',
      refinery: { gates: ['npm test'], auto_merge: true, auto_merge_delay_minutes: null },
      custom_instructions: { mayor: null, polecat: 'Keep PRs small.' },
      staged_convoys_default: true,
      owner_type: null,
    },
  });
  assert<Equals<typeof saved, TownConfig>>();

  const access = await client.gastown.checkAdminAccess.query({ townId });
  const isAdminViewing: boolean = access.isAdminViewing;
  assert<Equals<typeof access.ownerOrgId, string | null>>();

  void [envVars, githubToken, stagedDefault, gates, sleepAfter, isAdminViewing];
}
