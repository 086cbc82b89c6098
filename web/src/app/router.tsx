// Client-side routes on the History API (the server answers index.html for any page path).
import { useSyncExternalStore, type AnchorHTMLAttributes, type MouseEvent, type ReactNode, type Ref } from 'react';

export type Route =
  | { page: 'towns' }
  | { page: 'town'; townId: string }
  | { page: 'settings'; townId: string }
  | { page: 'not-found'; path: string };

export function townPath(townId: string): string {
  return `/towns/${encodeURIComponent(townId)}`;
}

export function settingsPath(townId: string): string {
  return `${townPath(townId)}/settings`;
}

export function parseRoute(pathname: string): Route {
  const path = pathname.replace(/\/+$/, '') || '/';
  if (path === '/' || path === '/towns') return { page: 'towns' };
  const town = /^\/towns\/([^/]+)(\/settings)?$/.exec(path);
  if (town !== null && town[1] !== undefined) {
    const townId = decodeURIComponent(town[1]);
    return town[2] ? { page: 'settings', townId } : { page: 'town', townId };
  }
  return { page: 'not-found', path };
}

const listeners = new Set<() => void>();

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  window.addEventListener('popstate', listener);
  return () => {
    listeners.delete(listener);
    window.removeEventListener('popstate', listener);
  };
}

function pathname(): string {
  return window.location.pathname;
}

export function usePathname(): string {
  return useSyncExternalStore(subscribe, pathname, () => '/');
}

export function navigate(to: string): void {
  if (to === window.location.pathname) return;
  window.history.pushState(null, '', to);
  window.scrollTo(0, 0);
  for (const listener of listeners) listener();
}

type LinkProps = Omit<AnchorHTMLAttributes<HTMLAnchorElement>, 'href'> & {
  to: string;
  children: ReactNode;
  ref?: Ref<HTMLAnchorElement>;
};

export function Link({ to, onClick, children, ...rest }: LinkProps) {
  function follow(event: MouseEvent<HTMLAnchorElement>): void {
    onClick?.(event);
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(to);
  }
  return (
    <a href={to} onClick={follow} {...rest}>
      {children}
    </a>
  );
}
