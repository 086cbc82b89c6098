const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 24 * 3600],
  ['month', 30 * 24 * 3600],
  ['week', 7 * 24 * 3600],
  ['day', 24 * 3600],
  ['hour', 3600],
  ['minute', 60],
];

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const absolute = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'short' });

export function ago(iso: string, now: number = Date.now()): string {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return iso;
  const seconds = Math.round((then - now) / 1000);
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return 'just now';
}

/** "3 days ago", with the exact date and time on hover and for screen readers' `datetime`. */
export function TimeAgo({ iso, prefix }: { iso: string; prefix?: string }) {
  const then = Date.parse(iso);
  const exact = Number.isNaN(then) ? iso : absolute.format(then);
  return (
    <time dateTime={iso} title={exact}>
      {prefix !== undefined ? `${prefix} ` : ''}
      {ago(iso)}
    </time>
  );
}
