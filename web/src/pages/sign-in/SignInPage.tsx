import { useId, useState, type FormEvent } from 'react';

import { identityOf } from '../../app/auth';
import { PageTitle } from '../../components/PageTitle';

type Props = { notice: string | null; onSignIn: (token: string) => void };

export function SignInPage({ notice, onSignIn }: Props) {
  const [token, setToken] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const ids = { token: useId(), help: useId() };

  function submit(event: FormEvent): void {
    event.preventDefault();
    const value = token.trim().replace(/^Bearer\s+/i, '');
    if (value === '') {
      setProblem('Paste a token first.');
      return;
    }
    if (identityOf(value) === null) {
      setProblem('This is not a Gastown token: it should be a JWT (three parts separated by dots) naming a user.');
      return;
    }
    onSignIn(value);
  }

  return (
    <main id="main" className="main sign-in">
      <PageTitle title="Sign in to Gastown" />
      {notice !== null && (
        <p className="notice" role="alert">
          {notice}
        </p>
      )}
      <form onSubmit={submit} noValidate className="card">
        <div className="field">
          <label htmlFor={ids.token}>Bearer token</label>
          <input
            id={ids.token}
            type="password"
            autoComplete="off"
            spellCheck={false}
            value={token}
            aria-invalid={problem !== null}
            aria-describedby={ids.help}
            onChange={(e) => {
              setToken(e.target.value);
              setProblem(null);
            }}
          />
          <p id={ids.help} className={problem !== null ? 'field-error' : 'field-help'}>
            {problem ??
              'The token stays in this browser tab only (session storage) and is sent to this server alone.'}
          </p>
        </div>
        <button type="submit" className="button primary">
          Sign in
        </button>
      </form>
      <section className="hint">
        <h2>Where to get a token</h2>
        <p>
          In dev mode <code>scripts/serve</code> prints a sign-in link, <code>http://127.0.0.1:8787/#token=…</code>: open
          it and you are signed in. It also prints <code>export TOKEN=…</code>; paste that value here.
        </p>
      </section>
    </main>
  );
}
