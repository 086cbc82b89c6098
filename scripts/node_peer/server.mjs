// The Node baseline for `scripts/bench_rpc.py --wrk`: the stock @trpc/server v11 standalone
// adapter serving `gastown.getTown` at /trpc, with the same bearer-token check as rpc/auth.py
// (HS256 over NEXTAUTH_SECRET; exp checked when present; kiloUserId required and non-empty;
// gastownAccess or isAdmin, else FORBIDDEN) and the same access rule as our server's for a
// personal town (the caller owns it, else NOT_FOUND). Towns are answered from memory.
//
//   NEXTAUTH_SECRET=… PEER_TOWNS_FILE=towns.json PORT=8788 node server.mjs
//
// PEER_TOWNS_FILE holds one town object or an array of them, as our getTown answers them.
import { readFileSync } from 'node:fs';
import { initTRPC, TRPCError } from '@trpc/server';
import { createHTTPServer } from '@trpc/server/adapters/standalone';
import { errors, jwtVerify } from 'jose';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`node_peer: ${name} is required`);
    process.exit(2);
  }
  return value;
}

const secret = new TextEncoder().encode(required('NEXTAUTH_SECRET'));
const loaded = JSON.parse(readFileSync(required('PEER_TOWNS_FILE'), 'utf8'));
const towns = new Map((Array.isArray(loaded) ? loaded : [loaded]).map((town) => [town.id, town]));

function bearerToken(header) {
  if (!header) return null;
  const [scheme, ...rest] = header.trim().split(' ');
  if (scheme.toLowerCase() !== 'bearer') return null;
  return rest.join(' ').trim() || null;
}

async function authenticate(token) {
  if (!token) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Missing bearer token' });
  let payload;
  try {
    ({ payload } = await jwtVerify(token, secret, { algorithms: ['HS256'], requiredClaims: ['kiloUserId'] }));
  } catch (err) {
    const expired = err instanceof errors.JWTExpired;
    throw new TRPCError({ code: 'UNAUTHORIZED', message: expired ? 'Token expired' : 'Invalid token' });
  }
  if (typeof payload.kiloUserId !== 'string') {
    throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Invalid token claims: kiloUserId must be a string' });
  }
  if (payload.kiloUserId === '') {
    throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Invalid token claims: empty kiloUserId' });
  }
  if (!(payload.gastownAccess === true || payload.isAdmin === true)) {
    throw new TRPCError({ code: 'FORBIDDEN', message: 'Gastown access required' });
  }
  return { userId: payload.kiloUserId, isAdmin: payload.isAdmin === true };
}

// isDev false: no `stack` in error shapes, as our server never sends one.
const t = initTRPC.context().create({ isDev: false });

// Like upstream: the context carries the request; the procedure middleware authenticates.
const gastownProcedure = t.procedure.use(async ({ ctx, next }) => {
  const caller = await authenticate(bearerToken(ctx.authorization));
  return next({ ctx: { caller } });
});

function townIdInput(raw) {
  if (typeof raw !== 'object' || raw === null || typeof raw.townId !== 'string') {
    throw new TRPCError({ code: 'BAD_REQUEST', message: 'Expected {townId: string}' });
  }
  return { townId: raw.townId };
}

const router = t.router({
  gastown: t.router({
    getTown: gastownProcedure.input(townIdInput).query(({ ctx, input }) => {
      const town = towns.get(input.townId);
      if (town === undefined || town.owner_user_id !== ctx.caller.userId) {
        throw new TRPCError({ code: 'NOT_FOUND', message: `Town ${input.townId} not found` });
      }
      return town;
    }),
  }),
});

const server = createHTTPServer({
  router,
  basePath: '/trpc/',
  createContext: ({ req }) => ({ authorization: req.headers.authorization }),
});
const host = process.env.HOST || '127.0.0.1';
server.listen(Number(process.env.PORT || 8788), host, () => {
  console.log(`node peer listening on http://${host}:${server.address().port} (${towns.size} towns)`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
