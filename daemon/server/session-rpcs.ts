// The RPCs on a session the daemon holds: Resume, Release, Abort, RenewLease, GetSession, ListSessions.
// What each does to the session is custody's (sessions.ts); these name the session and answer with it.
import type * as grpc from '@grpc/grpc-js';
import type { ListSessionsResponseMsg, ResumeRequestMsg, SessionRequestMsg } from '../../protocol/messages';
import type { Calls } from './calls';
import { OPEN_POLICY, handoverRules } from './policy';
import { sessionToMsg } from './session-info';

export function sessionHandlers(calls: Calls): grpc.UntypedServiceImplementation {
  const sessions = calls.options.sessions;
  return {
    Resume: calls.unary('Resume', async (req: ResumeRequestMsg, log) => {
      const s = sessions.get(req.sessionId);
      await sessions.resume(s, req.deliverUnixPath, handoverRules(calls.options.policy ?? OPEN_POLICY));
      log.info('session resumed', { session: s.id, kind: s.kind });
      return sessionToMsg(s);
    }),
    Release: calls.unary('Release', (req: SessionRequestMsg, log) => {
      const s = sessions.get(req.sessionId);
      sessions.release(s);
      log.info('session released', { session: s.id });
      return sessionToMsg(s);
    }),
    Abort: calls.unary('Abort', (req: SessionRequestMsg, log) => {
      const s = sessions.get(req.sessionId);
      sessions.abort(s, 'aborted by the caller');
      log.info('session aborted', { session: s.id, kind: s.kind });
      return sessionToMsg(s);
    }),
    RenewLease: calls.unary('RenewLease', (req: SessionRequestMsg) => {
      const s = sessions.get(req.sessionId);
      sessions.renew(s);
      return sessionToMsg(s);
    }),
    GetSession: calls.unary('GetSession', (req: SessionRequestMsg) => sessionToMsg(sessions.get(req.sessionId))),
    ListSessions: calls.unary('ListSessions', (): ListSessionsResponseMsg => ({ sessions: sessions.list().map(sessionToMsg) })),
  };
}
