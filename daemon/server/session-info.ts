// How the service describes a session and its connections to callers (SessionInfo).
import type { ConnectionSummary, Session } from '../custody/sessions';
import { SESSION_KIND, SESSION_STATE, SessionInfoMsg } from '../../protocol/messages';
import { addressToMsg } from '../../protocol/address';
import type { TcpState } from '../../protocol/saved-state';
import { PAGE, pageToken } from './paging';

/** Which of a session's connections a SessionInfo carries: from index `offset`, at most `size`. */
export interface ConnectionsPage {
  offset: number;
  size: number;
}

/** The first page: what every call but a paging GetSession answers with. */
export const FIRST_PAGE: ConnectionsPage = { offset: 0, size: PAGE.connections.default };

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

export function sessionToMsg(s: Session, page: ConnectionsPage = FIRST_PAGE): SessionInfoMsg {
  const end = Math.min(s.held.length, page.offset + page.size);
  return {
    sessionId: s.id,
    kind: SESSION_KIND[s.kind],
    state: SESSION_STATE[s.state],
    pid: s.pid,
    createdUnixMs: s.createdAt,
    leaseExpiresUnixMs: s.leaseExpiresAt,
    connections: s.held.slice(page.offset, end).map((h) => summaryToMsg(h.summary)),
    netns: s.netns,
    deliverUnixPath: s.deliverPath,
    reason: s.reason,
    nextConnectionsPageToken: end < s.held.length ? pageToken('connections', s.id, end) : '',
    connectionCount: s.held.length,
    queueBytes: s.held.reduce((n, h) => n + h.summary.recvQueueLen + h.summary.sendQueueLen, 0),
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
