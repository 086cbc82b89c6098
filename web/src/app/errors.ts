// Errors in words: what the person reading the page can understand and do, never raw JSON.
import { TRPCClientError } from '@trpc/client';

export type Described = {
  title: string;
  detail: string | null;
  /** UNAUTHORIZED: the token is no good, signing in again is the way out. */
  signIn: boolean;
  /** No answer from the server at all (the request may or may not have been done). */
  network: boolean;
};

const TITLES: Record<string, string> = {
  BAD_REQUEST: 'Some of what was sent was not accepted.',
  UNAUTHORIZED: 'Your sign-in was not accepted: the token is invalid or has expired. Sign in again.',
  FORBIDDEN: 'You do not have permission to do this.',
  NOT_FOUND: 'Not found: it does not exist (any more), or you do not have access to it.',
  CONFLICT: 'This conflicts with an earlier request.',
  PRECONDITION_FAILED: 'This cannot be done on this server.',
  PAYLOAD_TOO_LARGE: 'What was sent is too large.',
  TOO_MANY_REQUESTS: 'Too many requests: wait a moment and try again.',
  TIMEOUT: 'The server took too long to answer. Try again.',
  CLIENT_CLOSED_REQUEST: 'The request was cancelled before it finished.',
  INTERNAL_SERVER_ERROR: 'The server hit an internal error. Try again; if it keeps happening, report the request id below.',
};

function codeOf(error: TRPCClientError<never>): string | null {
  const data: unknown = error.data;
  if (typeof data === 'object' && data !== null && 'code' in data) {
    const code = (data as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return null;
}

/** The server's own message, when it is prose (it always is) and not a JSON dump. */
function proseOf(message: string): string | null {
  const text = message.trim();
  if (text === '' || text.startsWith('{') || text.startsWith('[') || text.startsWith('<')) return null;
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

export function describeError(error: unknown): Described {
  if (error instanceof TRPCClientError) {
    const code = codeOf(error);
    if (code === null) {
      // No tRPC error body: the request never got an answer we can read.
      return {
        title: 'Cannot reach the server. Check that it is running and that you are online, then try again.',
        detail: null,
        signIn: false,
        network: true,
      };
    }
    const title = TITLES[code] ?? 'The request failed.';
    const detail = proseOf(error.message);
    return { title, detail: detail === title ? null : detail, signIn: code === 'UNAUTHORIZED', network: false };
  }
  if (error instanceof Error) {
    return { title: 'Something went wrong in the page.', detail: proseOf(error.message), signIn: false, network: false };
  }
  return { title: 'Something went wrong.', detail: null, signIn: false, network: false };
}

export function errorCode(error: unknown): string | null {
  return error instanceof TRPCClientError ? codeOf(error) : null;
}
