// The RPCs on a session the daemon holds: Resume, Release, Abort, RenewLease, GetSession, ListSessions.
// What each does to the session is custody's (sessions.ts); these name the session, check that the caller
// may use it (its creator's identity, or an admin) and answer with it.
import type * as grpc from '@grpc/grpc-js';
import type { ListSessionsResponseMsg, ResumeRequestMsg, SessionRequestMsg } from '../../protocol/messages';
import type { Session } from '../custody/sessions';
import type { Caller } from './auth';
import type { Calls } from './calls';
import { sessionToMsg } from './session-info';

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
    GetSession: calls.unary('GetSession', (req: SessionRequestMsg, _log, caller) => sessionToMsg(owned(req.sessionId, caller))),
    ListSessions: calls.unary('ListSessions', (_req, _log, caller): ListSessionsResponseMsg => ({
      sessions: calls.visibleTo(caller, sessions.list()).map(sessionToMsg),
    })),
  };
}
