import { useMutation } from '@tanstack/react-query';
import { useId, useState, type FormEvent } from 'react';

import { orgLabel, workingOrgs } from '../../app/auth';
import { navigate, townPath } from '../../app/router';
import { useSession } from '../../app/session';
import { useTRPCClient } from '../../app/trpc';
import { ErrorBox } from '../../components/ErrorBox';
import { checkName } from '../../fork/ForkDialog';

export function CreateTownForm() {
  const { identity } = useSession();
  const client = useTRPCClient();
  const [name, setName] = useState('');
  const [owner, setOwner] = useState('personal');
  const [touched, setTouched] = useState(false);
  const ids = { name: useId(), owner: useId(), help: useId() };
  const orgs = workingOrgs(identity);
  const check = checkName(name);

  const create = useMutation({
    mutationFn: async () => {
      if (owner === 'personal') return client.gastown.createTown.mutate({ name: check.name });
      return client.gastown.createOrgTown.mutate({ organizationId: owner, name: check.name });
    },
    onSuccess: (town) => navigate(townPath(town.id)),
  });

  function submit(event: FormEvent): void {
    event.preventDefault();
    setTouched(true);
    if (check.problem === null) create.mutate();
  }

  const showProblem = touched && check.problem !== null;
  return (
    <form className="create-town card" onSubmit={submit} noValidate aria-labelledby="create-town-title">
      <h2 id="create-town-title">Create a town</h2>
      <div className="row">
        <div className="field grow">
          <label htmlFor={ids.name}>Name</label>
          <input
            id={ids.name}
            value={name}
            autoComplete="off"
            aria-invalid={showProblem}
            aria-describedby={ids.help}
            onChange={(e) => {
              setName(e.target.value);
              setTouched(true);
            }}
          />
        </div>
        {orgs.length > 0 && (
          <div className="field">
            <label htmlFor={ids.owner}>Owner</label>
            <select id={ids.owner} value={owner} onChange={(e) => setOwner(e.target.value)}>
              <option value="personal">Me (personal)</option>
              {orgs.map((m) => (
                <option key={m.orgId} value={m.orgId}>
                  {orgLabel(m.orgId)}
                </option>
              ))}
            </select>
          </div>
        )}
        <button type="submit" className="button primary" disabled={create.isPending}>
          {create.isPending ? 'Creating…' : 'Create'}
        </button>
      </div>
      <p id={ids.help} className={showProblem ? 'field-error' : 'field-help'} aria-live="polite">
        {showProblem ? check.problem : 'Up to 64 characters.'}
      </p>
      {create.isError && <ErrorBox error={create.error} what="The town was not created." />}
    </form>
  );
}
