// Labelled inputs for the settings form; each takes its value and an onChange.
import { useId, useState, type ReactNode } from 'react';

import { isMasked } from './form';

type Common = { label: string; help?: ReactNode; problem?: string | undefined };

function Help({ id, help, problem }: { id: string; help?: ReactNode; problem?: string | undefined }) {
  if (problem !== undefined) {
    return (
      <p id={id} className="field-error">
        {problem}
      </p>
    );
  }
  return help === undefined ? null : (
    <p id={id} className="field-help">
      {help}
    </p>
  );
}

export function TextField({
  label,
  help,
  problem,
  value,
  onChange,
  type = 'text',
  placeholder,
  inputMode,
}: Common & {
  value: string;
  onChange: (value: string) => void;
  type?: 'text' | 'email' | 'url';
  placeholder?: string;
  inputMode?: 'numeric';
}) {
  const id = useId();
  const helpId = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        type={type}
        value={value}
        placeholder={placeholder}
        inputMode={inputMode}
        autoComplete="off"
        aria-invalid={problem !== undefined}
        aria-describedby={help !== undefined || problem !== undefined ? helpId : undefined}
        onChange={(e) => onChange(e.target.value)}
      />
      <Help id={helpId} help={help} problem={problem} />
    </div>
  );
}

/** A secret as the API gives it: masked (`****abcd`) for those who may not see it, the real
 * value (hidden until "Show") for those who may. */
export function SecretField({
  label,
  help,
  value,
  onChange,
  editable,
}: Common & { value: string; onChange: (value: string) => void; editable: boolean }) {
  const id = useId();
  const helpId = useId();
  const [shown, setShown] = useState(false);
  const masked = isMasked(value);
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <div className="secret">
        <input
          id={id}
          type={shown || masked || value === '' ? 'text' : 'password'}
          value={value}
          placeholder="Not set"
          autoComplete="off"
          spellCheck={false}
          aria-describedby={helpId}
          onChange={(e) => onChange(e.target.value)}
        />
        {editable && !masked && value !== '' && (
          <button
            type="button"
            className="button secondary small"
            aria-pressed={shown}
            aria-label={`${shown ? 'Hide' : 'Show'} ${label}`}
            onClick={() => setShown((s) => !s)}
          >
            {shown ? 'Hide' : 'Show'}
          </button>
        )}
      </div>
      <p id={helpId} className="field-help">
        {masked ? 'Masked: only the last characters are shown to you.' : (help ?? 'A secret: never copied by a fork.')}
      </p>
    </div>
  );
}

export function CheckField({
  label,
  help,
  checked,
  onChange,
}: Common & { checked: boolean; onChange: (checked: boolean) => void }) {
  const helpId = useId();
  return (
    <div className="field">
      <label className="check">
        <input
          type="checkbox"
          checked={checked}
          aria-describedby={help !== undefined ? helpId : undefined}
          onChange={(e) => onChange(e.target.checked)}
        />
        {label}
      </label>
      <Help id={helpId} help={help} />
    </div>
  );
}

export function ChoiceField<T extends string>({
  label,
  help,
  value,
  options,
  onChange,
}: Common & { value: T; options: readonly (readonly [T, string])[]; onChange: (value: T) => void }) {
  const name = useId();
  const helpId = useId();
  return (
    <fieldset className="field choice" aria-describedby={help !== undefined ? helpId : undefined}>
      <legend>{label}</legend>
      {options.map(([v, words]) => (
        <label key={v} className="check">
          <input type="radio" name={name} value={v} checked={value === v} onChange={() => onChange(v)} />
          {words}
        </label>
      ))}
      <Help id={helpId} help={help} />
    </fieldset>
  );
}

export function AreaField({
  label,
  help,
  problem,
  value,
  onChange,
  rows = 4,
}: Common & { value: string; onChange: (value: string) => void; rows?: number }) {
  const id = useId();
  const helpId = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <textarea
        id={id}
        rows={rows}
        value={value}
        aria-invalid={problem !== undefined}
        aria-describedby={help !== undefined || problem !== undefined ? helpId : undefined}
        onChange={(e) => onChange(e.target.value)}
      />
      <Help id={helpId} help={help} problem={problem} />
    </div>
  );
}
