import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { useMemo, useState } from 'react';

import { ForkBanner } from '../fork/ForkBanner';
import { NotFoundPage } from '../pages/NotFoundPage';
import { SettingsPage } from '../pages/settings/SettingsPage';
import { SignInPage } from '../pages/sign-in/SignInPage';
import { TownPage } from '../pages/town/TownPage';
import { TownListPage } from '../pages/towns/TownListPage';
import { identityOf, setToken, useToken, type Identity } from './auth';
import { describeError, errorCode } from './errors';
import { Link, parseRoute, usePathname } from './router';
import { SessionContext, useSession, type Session } from './session';
import { makeClient, TRPCProvider } from './trpc';

// Codes where asking again gives the same answer.
const FINAL = new Set(['BAD_REQUEST', 'UNAUTHORIZED', 'FORBIDDEN', 'NOT_FOUND', 'CONFLICT', 'PRECONDITION_FAILED']);

export function App() {
  const token = useToken();
  const [signedOutBecause, setSignedOutBecause] = useState<string | null>(null);
  const identity = token === null ? null : identityOf(token);

  function signOut(reason?: string): void {
    setSignedOutBecause(reason ?? null);
    setToken(null);
  }

  if (token === null || identity === null) {
    return (
      <SignInPage
        notice={identity === null && token !== null ? 'That token is not a Gastown token.' : signedOutBecause}
        onSignIn={(t) => {
          setSignedOutBecause(null);
          setToken(t);
        }}
      />
    );
  }
  // A new token is a new person: a fresh client and an empty cache.
  return <SignedIn key={token} identity={identity} signOut={signOut} />;
}

function SignedIn({ identity, signOut }: { identity: Identity; signOut: (reason?: string) => void }) {
  const [queryClient] = useState(() => {
    const onError = (error: unknown): void => {
      if (errorCode(error) === 'UNAUTHORIZED') signOut(describeError(error).title);
    };
    return new QueryClient({
      queryCache: new QueryCache({ onError }),
      mutationCache: new MutationCache({ onError }),
      defaultOptions: {
        queries: {
          retry: (failures, error) => failures < 1 && !FINAL.has(errorCode(error) ?? ''),
          refetchOnWindowFocus: false,
          staleTime: 5_000,
        },
      },
    });
  });
  const [trpcClient] = useState(makeClient);
  const session = useMemo<Session>(() => ({ identity, signOut }), [identity, signOut]);
  return (
    <QueryClientProvider client={queryClient}>
      <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
        <SessionContext.Provider value={session}>
          <Layout />
        </SessionContext.Provider>
      </TRPCProvider>
    </QueryClientProvider>
  );
}

function Layout() {
  const route = parseRoute(usePathname());
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <Header />
      <main id="main" className="main">
        <ForkBanner />
        {route.page === 'towns' && <TownListPage />}
        {route.page === 'town' && <TownPage key={route.townId} townId={route.townId} />}
        {route.page === 'settings' && <SettingsPage key={route.townId} townId={route.townId} />}
        {route.page === 'not-found' && <NotFoundPage path={route.path} />}
      </main>
    </>
  );
}

function Header() {
  const { identity, signOut } = useSession();
  return (
    <header className="top-bar">
      <Link to="/" className="brand">
        Gastown
      </Link>
      <div className="user">
        <span className="user-id">
          <span className="visually-hidden">Signed in as </span>
          {identity.userId}
        </span>
        <button type="button" className="button secondary small" onClick={() => signOut()}>
          Sign out
        </button>
      </div>
    </header>
  );
}
