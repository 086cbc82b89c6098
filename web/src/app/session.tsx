// Who is signed in, for every page: the identity the token claims and a way to sign out.
import { createContext, useContext } from 'react';

import type { Identity } from './auth';

export type Session = {
  identity: Identity;
  signOut: (reason?: string) => void;
};

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (session === null) throw new Error('useSession outside a signed-in page');
  return session;
}
