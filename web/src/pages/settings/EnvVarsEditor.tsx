import { useId } from 'react';

import { envRow, isMasked, type EnvRow } from './form';

type Props = { rows: EnvRow[]; onChange: (rows: EnvRow[]) => void; editable: boolean; problem: string | undefined };

export function EnvVarsEditor({ rows, onChange, editable, problem }: Props) {
  const problemId = useId();
  function change(id: number, patch: Partial<EnvRow>): void {
    onChange(rows.map((r) => (r.id === id ? { ...r, ...patch } : r)));
  }
  return (
    <div className="env-vars">
      {rows.length === 0 && <p className="muted">No environment variables.</p>}
      {rows.length > 0 && (
        <ul className="env-list" aria-describedby={problem !== undefined ? problemId : undefined}>
          {rows.map((row, i) => (
            <li key={row.id} className="env-row">
              <input
                aria-label={`Name of variable ${i + 1}`}
                value={row.key}
                spellCheck={false}
                autoComplete="off"
                onChange={(e) => change(row.id, { key: e.target.value })}
              />
              <input
                aria-label={`Value of ${row.key || `variable ${i + 1}`}`}
                type={editable && !isMasked(row.value) ? 'password' : 'text'}
                value={row.value}
                spellCheck={false}
                autoComplete="off"
                onChange={(e) => change(row.id, { value: e.target.value })}
              />
              {editable && (
                <button
                  type="button"
                  className="button secondary small"
                  aria-label={`Remove ${row.key || `variable ${i + 1}`}`}
                  onClick={() => onChange(rows.filter((r) => r.id !== row.id))}
                >
                  Remove
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      {problem !== undefined && (
        <p id={problemId} className="field-error">
          {problem}
        </p>
      )}
      {editable && (
        <button type="button" className="button secondary small" onClick={() => onChange([...rows, envRow()])}>
          Add variable
        </button>
      )}
    </div>
  );
}
