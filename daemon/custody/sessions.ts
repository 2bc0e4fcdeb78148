// Sessions: what the daemon holds between calls. A source session holds sockets frozen at their owner
// until Resume (they go on there), Release (the daemon lets go; they stay silent) or the end of its lease
// (resumed). A restore session holds rebuilt sockets in repair mode until Resume makes them live and
// hands them over, or Abort / the end of its lease closes them silently.
//
// A call that works on a session across awaits marks it busy (Session.busy). While a Checkpoint stream
// reads a source session's sockets or a hand-over sends a restore session's fds, no other call may touch
// them: Resume, Release, Abort and RenewLease fail with SESSION_BUSY (FAILED_PRECONDITION), the lease
// waits, and shutdown waits for the hand-over (which it cuts short). A Restore stream holds no socket in
// use between two frames: Abort ends its session at once, and the stream stops at its next frame. A
// session that ended never becomes active again.
import { randomUUID } from 'node:crypto';
import { FrozenSocket, RestoredSocket, finishRestoredAll, resumeAll, silentCloseAll } from '../repair/engine';
import { thawSource } from './thaw';
import { SoccrError, errorMessage } from '../../protocol/errors';
import { deliver } from './delivery';
import { ANY_HANDOVER, HandoverRules } from './handover-target';
import { HANDOVER_MAX_MS } from '../../protocol/handover';
import type { Logger } from '../log';
import type { SocketAddress } from '../../protocol/address';
import { TcpState } from '../../protocol/saved-state';
import type { LockTuple, NetworkLock } from './netlock';
import type { ProcessHandle } from '../repair/acquire';
import type { Journal } from './journal';
import { sessionThawed } from '../metrics';
import type { Charge } from './budget';

export type SessionKind = 'source' | 'restore';
export type SessionState = 'FROZEN' | 'HELD' | 'RESUMED' | 'RELEASED' | 'ABORTED' | 'EXPIRED';
/**
 * What a call in flight does with a session: 'checkpoint' (its stream reads the frozen sockets) and
 * 'handover' (Resume or Restore with go_live sends the rebuilt sockets' fds) use the sockets across
 * awaits; 'restore' (the Restore stream adds sockets) uses none between two frames.
 */
export type SessionWork = 'checkpoint' | 'restore' | 'handover';

export interface ConnectionSummary {
  id: string;
  /** source: the fd in the owner process */
  fd: number;
  local: SocketAddress;
  remote: SocketAddress;
  state: TcpState;
  recvQueueLen: number;
  sendQueueLen: number;
  delivered: boolean;
}

interface HeldSocket {
  summary: ConnectionSummary;
  /** our descriptor: the pidfd_getfd duplicate (source) or the rebuilt socket (restore); -1 once let go */
  sock: FrozenSocket | RestoredSocket;
}

export class Session {
  readonly id: string;
  readonly createdAt = Date.now();
  state: SessionState;
  leaseExpiresAt: number;
  reason = '';
  readonly held: HeldSocket[] = [];
  timer: NodeJS.Timeout | undefined;
  /** set while a call works on the session across awaits: the lease cannot end it meanwhile (see the top) */
  busy: SessionWork | undefined;
  /**
   * the identity of the caller that created it (auth.ts Caller.id: uid:N, cert:NAME): only that identity
   * or an admin may use it, and it counts against that identity's quota. '' (a session recovered from a
   * journal without it): admins only.
   */
  createdBy = '';
  /** the network lock held for the connections (namespace key and tuples) */
  lock: { key: string; tuples: LockTuple[] } | undefined;
  /** source with stop_owner: the stopped owner, continued when the connections go on at the source */
  owner: ProcessHandle | undefined;
  /** restore: its rebuilt sockets' share of the daemon's kernel-memory budget (budget.ts), given back when it ends */
  charge: Charge | undefined;
  /** performance.now() when its connections froze (a checkpoint sets the moment of pause), for metrics */
  frozenAt = performance.now();

  constructor(
    readonly kind: SessionKind,
    readonly pid: number,
    readonly leaseMs: number,
    readonly netns = '',
    public deliverPath = '',
    id?: string,
  ) {
    this.id = id ?? randomUUID();
    this.state = 'FROZEN';
    this.leaseExpiresAt = Date.now() + leaseMs;
  }

  get active(): boolean {
    return this.state === 'FROZEN' || this.state === 'HELD';
  }
}

export interface SessionManagerOptions {
  defaultLeaseMs: number;
  maxLeaseMs: number;
  /** ended sessions stay visible to GetSession/ListSessions this long */
  retainEndedMs: number;
  /** after Release, the source keeps its network lock this long (stray packets get no RST) */
  lockGraceMs: number;
  /** undefined where the network lock does not work on this host */
  netlock: NetworkLock | undefined;
  log: Logger;
  /** the crash journal (journal.ts): source sessions' leases and ends, lifted locks */
  journal?: Journal;
}

export class SessionManager {
  private readonly sessions = new Map<string, Session>();
  private stopping = false;
  /** aborted at shutdown: hand-overs in flight stop at their next wait */
  private readonly stopSignal = new AbortController();

  /** work outside any session (a hand-off) that shutdown lets end first: it gives a stopped owner back */
  private readonly outside = new Set<Promise<unknown>>();

  constructor(private readonly opts: SessionManagerOptions) {}

  /**
   * Runs `work`, a call that holds no session but must not be cut off by shutdown (a hand-off, which
   * continues the owner it stopped if it fails): it is given the shutdown signal, and shutdown waits for
   * it as for a hand-over in flight. Refused once the daemon is stopping.
   */
  runOutside<T>(work: (stopping: AbortSignal) => Promise<T>): Promise<T> {
    if (this.stopping) throw new SoccrError('SESSION_STATE', 'the daemon is stopping');
    const p = work(this.stopSignal.signal);
    const tracked = p.then(
      () => undefined,
      () => undefined,
    );
    this.outside.add(tracked);
    void tracked.then(() => this.outside.delete(tracked));
    return p;
  }

  leaseFor(requestedMs: number): number {
    if (!requestedMs) return this.opts.defaultLeaseMs;
    if (requestedMs < 100 || requestedMs > this.opts.maxLeaseMs) {
      throw new SoccrError('BAD_REQUEST', `lease of ${requestedMs} ms is outside 100..${this.opts.maxLeaseMs} ms`);
    }
    return requestedMs;
  }

  private add(s: Session): Session {
    if (this.stopping) {
      throw new SoccrError('SESSION_STATE', 'the daemon is stopping');
    }
    this.sessions.set(s.id, s);
    this.arm(s);
    return s;
  }

  /** A source session holding `frozen` sockets of `pid` (its id chosen by the caller, who journaled it). */
  createSource(pid: number, leaseMs: number, conns: Array<{ sock: FrozenSocket; summary: ConnectionSummary }>, id?: string): Session {
    const s = new Session('source', pid, leaseMs, '', '', id);
    for (const c of conns) s.held.push({ sock: c.sock, summary: c.summary });
    return this.add(s);
  }

  /**
   * Recovery: a source session of an earlier run, taken over as it was (same id, FROZEN, its lease
   * ending when it was journaled to end), so that a caller may still Release or Resume it.
   */
  adoptSource(
    id: string,
    pid: number,
    leaseMs: number,
    leaseExpiresAt: number,
    conns: Array<{ sock: FrozenSocket; summary: ConnectionSummary }>,
    lock: Session['lock'],
    owner: ProcessHandle | undefined,
    createdBy = '',
  ): Session {
    const s = new Session('source', pid, leaseMs, '', '', id);
    s.createdBy = createdBy;
    for (const c of conns) s.held.push({ sock: c.sock, summary: c.summary });
    s.leaseExpiresAt = leaseExpiresAt;
    s.lock = lock;
    s.owner = owner;
    s.reason = 'recovered after a daemon restart';
    return this.add(s);
  }

  /** Runs a journal write that follows a step already done: a failure is logged, not thrown. */
  private note(what: string, fn: (j: Journal) => void): void {
    const j = this.opts.journal;
    if (!j) return;
    try {
      fn(j);
    } catch (err) {
      this.opts.log.error(`journal: ${what} not recorded`, { error: err });
    }
  }

  /** A restore session, FROZEN while it is being built. */
  createRestore(pid: number, leaseMs: number, netns: string, deliverPath: string): Session {
    return this.add(new Session('restore', pid, leaseMs, netns, deliverPath));
  }

  addRestored(s: Session, sock: RestoredSocket, summary: ConnectionSummary): void {
    s.held.push({ sock, summary });
  }

  get(id: string): Session {
    const s = this.sessions.get(id);
    if (!s) throw new SoccrError('NO_SUCH_SESSION', `no session ${id}`);
    return s;
  }

  list(): Session[] {
    return [...this.sessions.values()].sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Frozen and held sessions. */
  active(): Session[] {
    return this.list().filter((s) => s.active);
  }

  /** RenewLease: FAILED_PRECONDITION while a call uses the session's sockets (its lease cannot end then). */
  renew(s: Session): void {
    this.requireActive(s);
    this.extendLease(s);
  }

  /** The lease starts over (the calls that made the session busy do this when they finish with it). */
  private extendLease(s: Session): void {
    s.leaseExpiresAt = Date.now() + s.leaseMs;
    this.arm(s);
    if (s.kind === 'source') this.note('lease', (j) => j.lease(s.id, s.leaseExpiresAt));
  }

  private arm(s: Session): void {
    if (s.timer) clearTimeout(s.timer);
    s.timer = setTimeout(() => this.expire(s), Math.max(0, s.leaseExpiresAt - Date.now()));
  }

  private expire(s: Session): void {
    s.timer = undefined;
    if (!s.active) return;
    if (s.busy) {
      // A call is working on it (a stream still open): look again shortly.
      s.leaseExpiresAt = Date.now() + 1000;
      this.arm(s);
      return;
    }
    const log = this.opts.log.child({ session: s.id });
    try {
      if (s.kind === 'source') this.thaw(s, 'EXPIRED', 'lease ended without Release: resumed at the source');
      else this.closeSilently(s, 'EXPIRED', 'lease ended without Resume: closed silently');
      log.warn('session lease ended', { kind: s.kind, state: s.state });
    } catch (err) {
      log.error('ending an expired session failed', { error: err });
    }
  }

  private end(s: Session, state: SessionState, reason: string): void {
    // Its sockets are closed or their new owner's: the daemon no longer holds their memory.
    s.charge?.release();
    sessionThawed(s.kind, state, s.frozenAt);
    s.state = state;
    s.reason = reason;
    s.leaseExpiresAt = 0;
    if (s.timer) clearTimeout(s.timer);
    s.timer = setTimeout(() => this.sessions.delete(s.id), this.opts.retainEndedMs);
    s.timer.unref();
  }

  private requireActive(s: Session, kind?: SessionKind): void {
    if (kind && s.kind !== kind) throw new SoccrError('SESSION_STATE', `session ${s.id} is a ${s.kind} session`);
    if (!s.active) throw new SoccrError('SESSION_STATE', `session ${s.id} is ${s.state}${s.reason ? ` (${s.reason})` : ''}`);
    if (s.busy) throw busyError(s);
  }

  /** Lifts the session's network lock now, or after `delayMs`. */
  private unlock(s: Session, delayMs = 0): void {
    const lock = s.lock;
    const netlock = this.opts.netlock;
    s.lock = undefined;
    if (!lock || !netlock) return;
    const lift = (): void => {
      netlock.unlock(lock.key, lock.tuples);
      this.note('unlock', (j) => j.unlocked(s.id));
    };
    if (delayMs <= 0) lift();
    else setTimeout(lift, delayMs).unref();
  }

  /** Source: the connections go on at their owner (thaw.ts). Returns the sockets that failed to resume. */
  private thaw(s: Session, state: SessionState, reason: string): string[] {
    const { errors } = thawSource({ sockets: s.held.map((h) => h.sock), unlock: () => this.unlock(s), stoppedOwner: s.owner });
    s.owner = undefined;
    const failed = errors.flatMap((err, i) => (err ? [`${s.held[i].summary.id}: ${err.message}`] : []));
    this.end(s, state, failed.length ? `${reason}; failed: ${failed.join('; ')}` : reason);
    // Only now: a crash before this line makes the next daemon resume them (again: harmless).
    this.note('session end', (j) => j.ended(s.id, state === 'EXPIRED' ? 'EXPIRED' : state === 'ABORTED' ? 'ABORTED' : 'RESUMED'));
    return failed;
  }

  /** Our copies closed in repair mode; the lock lifted now or after a grace period. */
  private closeSilently(s: Session, state: SessionState, reason: string, unlockAfterMs = 0): void {
    silentCloseAll(s.held.filter((h) => h.sock.fd >= 0).map((h) => h.sock));
    for (const h of s.held) h.sock.fd = -1;
    this.unlock(s, unlockAfterMs);
    // A released owner stays stopped: it is about to be killed, and must not run on frozen sockets.
    s.owner?.close();
    s.owner = undefined;
    this.end(s, state, reason);
  }

  /**
   * Source: the connections go on at the source. Restore: make live and deliver, to a path and receiver
   * `rules` allow (the caller's: see server/policy.ts).
   */
  async resume(s: Session, deliverPath: string, rules: HandoverRules = ANY_HANDOVER): Promise<void> {
    this.requireActive(s);
    if (s.kind === 'source') {
      const failed = this.thaw(s, 'RESUMED', 'resumed at the source');
      if (failed.length) throw new SoccrError('KERNEL', `some sockets did not resume: ${failed.join('; ')}`);
      return;
    }
    await this.goLive(s, deliverPath || s.deliverPath, rules);
  }

  /**
   * Restore: hand every socket to the new owner, then make them live (see delivery.ts). The session is
   * busy meanwhile: nothing else closes the fds being sent. A failed hand-over leaves it HELD with its
   * lease started over, for a Resume with another path or an Abort.
   */
  async goLive(s: Session, path: string, rules: HandoverRules = ANY_HANDOVER): Promise<void> {
    this.requireActive(s, 'restore');
    if (s.state !== 'HELD') throw new SoccrError('SESSION_STATE', `session ${s.id} is still being restored`);
    if (!path) throw new SoccrError('BAD_REQUEST', `session ${s.id} has no delivery path: name one to resume it`);
    // What a held socket was built without (engine.ts: finishRestoredAll), written under the lock before
    // the hand-over starts, so that nothing reaches a receiver that cannot go live. A socket whose
    // go-live steps fail (a saved state whose FINs lead elsewhere, no memory for its send queue) never
    // can: the session is aborted rather than held for another Resume.
    const socks = s.held.map((h) => h.sock as RestoredSocket);
    const broken = finishRestoredAll(socks).find((err) => err !== undefined);
    if (broken) {
      this.closeSilently(s, 'ABORTED', `could not go live: ${errorMessage(broken)}`);
      throw broken;
    }
    s.busy = 'handover';
    let live = false;
    try {
      const items = s.held.map((h, index) => ({
        fd: h.sock.fd,
        meta: {
          id: h.summary.id,
          session: s.id,
          index,
          local: h.summary.local,
          remote: h.summary.remote,
          state: TcpState[h.summary.state] ?? String(h.summary.state),
        },
      }));
      await deliver(
        path,
        items,
        () => {
          this.unlock(s);
          const failed = resumeAll(socks).find((err) => err !== undefined);
          if (failed) throw failed;
          live = true;
        },
        { signal: this.stopSignal.signal, rules },
      );
    } catch (err) {
      s.busy = undefined;
      // Live, but the receiver was not told: the session is over all the same (its sockets are the new owner's).
      if (live) this.delivered(s, path, `live and delivered to ${path}, but ${errorMessage(err)}`);
      else if (s.active) this.extendLease(s);
      throw err;
    }
    s.busy = undefined;
    this.delivered(s, path, `live and delivered to ${path}`);
  }

  private delivered(s: Session, path: string, reason: string): void {
    s.deliverPath = path;
    // The new owner holds its own descriptors now.
    silentCloseAll(s.held.map((h) => h.sock));
    for (const h of s.held) {
      h.summary.delivered = true;
      h.sock.fd = -1;
    }
    this.end(s, 'RESUMED', reason);
  }

  /** Restore: the stream is complete, the session holds its sockets. Never revives a session that ended meanwhile. */
  markHeld(s: Session): void {
    if (s.state !== 'FROZEN') throw new SoccrError('SESSION_STATE', `session ${s.id} is ${s.state}${s.reason ? ` (${s.reason})` : ''}`);
    s.busy = undefined;
    s.state = 'HELD';
    this.extendLease(s);
  }

  /** Source: commit; the daemon lets go and the sockets stay frozen and silent at their owner. */
  release(s: Session): void {
    this.requireActive(s, 'source');
    // Before letting go: a daemon that crashes from here on must never resume these sockets.
    this.opts.journal?.ended(s.id, 'RELEASED', Date.now() + this.opts.lockGraceMs);
    this.closeSilently(s, 'RELEASED', 'released: the owner may be stopped without FIN or RST', this.opts.lockGraceMs);
  }

  /**
   * Restore: close silently. Source: as resume. FAILED_PRECONDITION (SESSION_BUSY) while a Checkpoint
   * stream or a hand-over uses the sockets; a restore still being streamed in ends at once (its stream
   * holds no socket between frames, and fails at its next one).
   */
  abort(s: Session, reason = 'aborted'): void {
    if (s.kind === 'source') {
      this.requireActive(s);
      this.thaw(s, 'RESUMED', `${reason}: resumed at the source`);
    } else {
      if (s.busy !== 'restore') this.requireActive(s);
      else if (!s.active) throw new SoccrError('SESSION_STATE', `session ${s.id} is ${s.state}${s.reason ? ` (${s.reason})` : ''}`);
      this.closeSilently(s, 'ABORTED', reason);
    }
  }

  /**
   * At shutdown: every frozen source goes on at its source, every unfinished restore vanishes. A hand-over
   * in flight is told to stop and waited for (it ends within HANDOVER_MAX_MS in any case); sockets a call
   * still uses after that are left to the process's exit rather than closed under it.
   */
  async shutdown(): Promise<void> {
    this.stopping = true;
    this.stopSignal.abort();
    // A Restore stream uses no socket between frames (see the top): only the other calls are waited for.
    const inUse = (s: Session): boolean => s.busy !== undefined && s.busy !== 'restore';
    const deadline = Date.now() + HANDOVER_MAX_MS + SHUTDOWN_SLACK_MS;
    while ((this.active().some(inUse) || this.outside.size > 0) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    for (const s of this.active()) {
      if (inUse(s)) {
        this.opts.log.error('session still busy at shutdown: left to the exit', { session: s.id, kind: s.kind, busy: s.busy });
        continue;
      }
      try {
        if (s.kind === 'source') this.thaw(s, 'RESUMED', 'daemon stopping: resumed at the source');
        else this.closeSilently(s, 'ABORTED', 'daemon stopping: closed silently');
        this.opts.log.info('session ended at shutdown', { session: s.id, kind: s.kind, state: s.state, reason: s.reason });
      } catch (err) {
        this.opts.log.error('ending a session at shutdown failed', { session: s.id, error: err });
      }
    }
    for (const s of this.sessions.values()) if (s.timer) clearTimeout(s.timer);
  }
}

/** How long shutdown waits beyond a hand-over's own bound for calls to let go of their sessions. */
const SHUTDOWN_SLACK_MS = 1000;

function busyError(s: Session): SoccrError {
  const what =
    s.busy === 'handover'
      ? 'a hand-over of its sockets is in flight'
      : s.busy === 'checkpoint'
        ? 'its Checkpoint stream is still open'
        : 'its Restore stream is still open';
  return new SoccrError('SESSION_BUSY', `session ${s.id} is busy: ${what}; ask again once that call has ended`);
}
