// Paging of the list calls and of a session's connections (AIP-158): page sizes with a default and a
// cap, and page tokens. A token is opaque to callers; here it is base64url JSON naming what it pages
// (its list and the pid or session it belongs to) and where the next page starts, so that a token
// given for one list, pid or session is refused for another (INVALID_ARGUMENT) rather than misread.
import { SoccrError } from '../../protocol/errors';

/** A page's size and cap, per list. */
export const PAGE = {
  sockets: { default: 1000, max: 10_000 },
  sessions: { default: 100, max: 1000 },
  connections: { default: 1000, max: 10_000 },
} as const;

/**
 * How many sessions' connections one ListSessions page carries at most (each session its first page):
 * 10000 connections are about 1 MiB, well inside gRPC's default 4 MiB message.
 */
export const LIST_SESSIONS_CONNECTION_BUDGET = 10_000;

export type PagedList = keyof typeof PAGE;

/** The size of a page: 0 takes the list's default, more than its cap takes the cap, negative is refused. */
export function pageSize(list: PagedList, requested: number): number {
  if (!Number.isInteger(requested) || requested < 0) throw new SoccrError('BAD_REQUEST', `page size ${requested}: give 0 (the default) or more`);
  return requested === 0 ? PAGE[list].default : Math.min(requested, PAGE[list].max);
}

interface TokenBody {
  /** the list */
  l: PagedList;
  /** its scope: the pid, the session id, or '' for the list of sessions */
  s: string;
  /** where the next page starts: after this fd, at this connection index, after this session (created, id) */
  a: number | [number, string];
}

/** The token of the page that starts at `after` of `list` within `scope`. */
export function pageToken(list: PagedList, scope: string | number, after: TokenBody['a']): string {
  const body: TokenBody = { l: list, s: String(scope), a: after };
  return Buffer.from(JSON.stringify(body)).toString('base64url');
}

/**
 * Where the page a token names starts; undefined for an empty token (the first page). BAD_REQUEST for a
 * token this daemon did not give for `list` within `scope`.
 */
export function readPageToken(list: 'sockets', scope: number, token: string): number | undefined;
export function readPageToken(list: 'connections', scope: string, token: string): number | undefined;
export function readPageToken(list: 'sessions', scope: '', token: string): [number, string] | undefined;
export function readPageToken(list: PagedList, scope: string | number, token: string): TokenBody['a'] | undefined {
  if (token === '') return undefined;
  const refuse = (): never => {
    throw new SoccrError(
      'BAD_REQUEST',
      `page token ${JSON.stringify(token.slice(0, 80))} is not one this daemon gave for this ${list === 'sessions' ? 'list' : list === 'sockets' ? 'pid' : 'session'}`,
    );
  };
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    return refuse();
  }
  const b = body as Partial<TokenBody> | null;
  if (typeof b !== 'object' || b?.l !== list || b.s !== String(scope)) return refuse();
  const a = b.a;
  if (list === 'sessions') {
    if (Array.isArray(a) && a.length === 2 && Number.isSafeInteger(a[0]) && typeof a[1] === 'string') return [a[0], a[1]];
    return refuse();
  }
  if (typeof a === 'number' && Number.isSafeInteger(a) && a >= 0) return a;
  return refuse();
}
