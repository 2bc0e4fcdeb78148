// How the service describes a session and its connections to callers (SessionInfo).
import type { ConnectionSummary, Session } from '../custody/sessions';
import { SESSION_KIND, SESSION_STATE, SessionInfoMsg } from '../../protocol/messages';
import { addressToMsg } from '../../protocol/address';
import type { TcpState } from '../../protocol/saved-state';

function summaryToMsg(c: ConnectionSummary): SessionInfoMsg['connections'][number] {
  return {
    id: c.id,
    fd: c.fd,
    local: addressToMsg(c.local),
    remote: addressToMsg(c.remote),
    state: c.state,
    recvQueueLen: c.recvQueueLen,
    sendQueueLen: c.sendQueueLen,
    delivered: c.delivered,
  };
}

export function sessionToMsg(s: Session): SessionInfoMsg {
  return {
    sessionId: s.id,
    kind: SESSION_KIND[s.kind],
    state: SESSION_STATE[s.state],
    pid: s.pid,
    createdUnixMs: s.createdAt,
    leaseExpiresUnixMs: s.leaseExpiresAt,
    connections: s.held.map((h) => summaryToMsg(h.summary)),
    netns: s.netns,
    deliverUnixPath: s.deliverPath,
    reason: s.reason,
  };
}

/** A connection's summary from its saved state (or what procfs listed of it). */
export function summarize(
  id: string,
  fd: number,
  s: { local: ConnectionSummary['local']; remote: ConnectionSummary['remote']; state: TcpState; inqLen: number; outqLen: number },
): ConnectionSummary {
  return { id, fd, local: s.local, remote: s.remote, state: s.state, recvQueueLen: s.inqLen, sendQueueLen: s.outqLen, delivered: false };
}
