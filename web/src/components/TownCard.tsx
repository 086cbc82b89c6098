import type { OrgTown, Town } from '../../types/router';
import { Link, townPath } from '../app/router';
import { TimeAgo } from './TimeAgo';

type Props = {
  town: Town | OrgTown;
  /** Names of towns the page knows, to name a fork's source. */
  names: ReadonlyMap<string, string>;
  onFork: ((town: Town | OrgTown) => void) | null;
};

/** A town in a list: name, created …ago, a "forked from" badge, and a Fork action. */
export function TownCard({ town, names, onFork }: Props) {
  const source = town.forked_from;
  return (
    <li className="town-card">
      <div className="town-card-main">
        <h3 className="town-name">
          <Link to={townPath(town.id)}>{town.name}</Link>
        </h3>
        <p className="muted small">
          <TimeAgo iso={town.created_at} prefix="Created" />
        </p>
        {source !== null && (
          <p className="badge fork-badge">
            Forked from {names.get(source.town_id) ?? 'another town'}
          </p>
        )}
      </div>
      {onFork !== null && (
        <button
          type="button"
          className="button secondary small"
          aria-label={`Fork ${town.name}`}
          onClick={() => onFork(town)}
        >
          Fork
        </button>
      )}
    </li>
  );
}
