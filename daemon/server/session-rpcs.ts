// The RPCs on a session the daemon holds: Resume, Release, Abort, RenewLease, GetSession, ListSessions.
// What each does to the session is custody's (sessions.ts); these name the session, check that the caller
// may use it (its creator's identity, or an admin) and answer with it.
import type * as grpc from '@grpc/grpc-js';
import type {
  GetSessionRequestMsg,
  ListSessionsRequestMsg,
  ListSessionsResponseMsg,
  ResumeRequestMsg,
  SessionInfoMsg,
  SessionRequestMsg,
} from '../../protocol/messages';
import type { Session } from '../custody/sessions';
import type { Caller } from './auth';
import type { Calls } from './calls';
import { LIST_SESSIONS_CONNECTION_BUDGET, pageSize, pageToken, readPageToken } from './paging';
import { FIRST_PAGE, sessionToMsg } from './session-info';

export function sessionHandlers(calls: Calls): grpc.UntypedServiceImplementation {
  const sessions = calls.options.sessions;
  const owned = (id: string, caller: Caller): Session => {
    const s = sessions.get(id);
    calls.checkOwner(s, caller);
    return s;
  };
  return {
    Resume: calls.unary('Resume', async (req: ResumeRequestMsg, log, caller) => {
      const s = owned(req.sessionId, caller);
      const policy = calls.policyFor(caller);
      if (req.deliverUnixPath) policy.checkHandoverPath(req.deliverUnixPath);
      // Checked again by the hand-over itself, on the socket file it opens and the receiver it reaches.
      await sessions.resume(s, req.deliverUnixPath, policy.handoverRules());
      log.info('session resumed', { session: s.id, kind: s.kind });
      return sessionToMsg(s);
    }),
    Release: calls.unary('Release', (req: SessionRequestMsg, log, caller) => {
      const s = owned(req.sessionId, caller);
      sessions.release(s);
      log.info('session released', { session: s.id });
      return sessionToMsg(s);
    }),
    Abort: calls.unary('Abort', (req: SessionRequestMsg, log, caller) => {
      const s = owned(req.sessionId, caller);
      sessions.abort(s, 'aborted by the caller');
      log.info('session aborted', { session: s.id, kind: s.kind });
      return sessionToMsg(s);
    }),
    RenewLease: calls.unary('RenewLease', (req: SessionRequestMsg, _log, caller) => {
      const s = owned(req.sessionId, caller);
      sessions.renew(s);
      return sessionToMsg(s);
    }),
    GetSession: calls.unary('GetSession', (req: GetSessionRequestMsg, _log, caller): SessionInfoMsg => {
      const s = owned(req.sessionId, caller);
      const size = pageSize('connections', req.connectionsPageSize);
      const offset = readPageToken('connections', s.id, req.connectionsPageToken) ?? 0;
      return sessionToMsg(s, { offset, size });
    }),
    ListSessions: calls.unary('ListSessions', (req: ListSessionsRequestMsg, _log, caller): ListSessionsResponseMsg => {
      const size = pageSize('sessions', req.pageSize);
      const after = readPageToken('sessions', '', req.pageToken);
      // Oldest first, ties by id: a session keeps its place between pages whatever else comes or goes.
      const ordered = calls.visibleTo(caller, sessions.list()).sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const rest = after ? ordered.filter((s) => s.createdAt > after[0] || (s.createdAt === after[0] && s.id > after[1])) : ordered;
      const page: SessionInfoMsg[] = [];
      let connections = 0;
      for (const s of rest) {
        const carried = Math.min(s.held.length, FIRST_PAGE.size);
        if (page.length === size || (page.length > 0 && connections + carried > LIST_SESSIONS_CONNECTION_BUDGET)) break;
        page.push(sessionToMsg(s));
        connections += carried;
      }
      const last = page.length < rest.length ? rest[page.length - 1] : undefined;
      return { sessions: page, nextPageToken: last ? pageToken('sessions', '', [last.createdAt, last.id]) : '' };
    }),
  };
}
