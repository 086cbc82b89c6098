import type { BeadEvent } from '../../../types/router';

/** A bead event in a few words ("status changed from open to closed"). */
export function eventWords(event: BeadEvent): string {
  const kind = event.event_type.replace(/_/g, ' ');
  if (event.old_value !== null && event.new_value !== null) return `${kind}: ${event.old_value} → ${event.new_value}`;
  if (event.new_value !== null && event.new_value.length <= 40) return `${kind}: ${event.new_value}`;
  return kind;
}
