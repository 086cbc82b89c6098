// What the signed-in person may do with a town, as the server's access rules say (README:
// read = personal owner, org member, admin; configure = personal owner, org owner or the
// town's creator; fork = a reader who is not only an admin). The server enforces them; the
// app only avoids offering what would be refused.
import type { OrgTown, Town } from '../../types/router';
import { orgLabel, type Identity } from './auth';

export function isOrgTown(town: Town | OrgTown): town is OrgTown {
  return 'owner_org_id' in town;
}

export type Standing = {
  ownerLabel: string;
  canConfigure: boolean;
  canFork: boolean;
  /** Reading only because the token is an admin's. */
  adminView: boolean;
};

export function standingOf(town: Town | OrgTown, identity: Identity): Standing {
  if (isOrgTown(town)) {
    const role = identity.orgs.find((m) => m.orgId === town.owner_org_id)?.role;
    const member = role === 'owner' || role === 'member';
    return {
      ownerLabel: orgLabel(town.owner_org_id),
      canConfigure: role === 'owner' || (member && town.created_by_user_id === identity.userId),
      canFork: member,
      adminView: !member,
    };
  }
  const mine = town.owner_user_id === identity.userId;
  return {
    ownerLabel: mine ? 'You (personal town)' : `User ${town.owner_user_id}`,
    canConfigure: mine,
    canFork: mine,
    adminView: !mine,
  };
}
