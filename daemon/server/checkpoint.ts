// The Checkpoint RPC: a process's TCP connections frozen in place (the owner stopped if asked, the
// network locked, repair mode on), a source session holding them, and their saved state streamed out as
// frames (see checkpoint-stream.ts). A failure undoes what was done: step by step, each step having
// registered its undo (rollback.ts); once frozen, by thawing the whole source (custody/thaw.ts); once the
// session exists, by its abort.
import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Charge } from '../custody/budget';
import { crashPoint, netnsRef, socketInode } from '../custody/journal';
import type { LockTuple, NetworkLock } from '../custody/netlock';
import type { ConnectionSummary, Session } from '../custody/sessions';
import * as N from '../kernel/native';
import { NetnsHandle } from '../kernel/netns';
import { SocketDiag, diagnose } from '../kernel/sockdiag';
import type { Logger } from '../log';
import { callFinished } from '../metrics';
import { ProcessFacts, ProcessHandle, TcpSocketInfo, listMptcpConnections, listTcpSockets, refuseDaemons } from '../repair/acquire';
import { AcceptedConnection, acceptBacklogs, backlogReason } from '../repair/backlog';
import { FrozenSocket, capture, pauseAll, readQueues, reuseAddrs, silentCloseAll } from '../repair/engine';
import { md5Refusal, mptcpRefusal } from '../repair/uncarriable';
import { thawSource } from '../custody/thaw';
import { ErrorKind, SoccrError, errorMessage } from '../../protocol/errors';
import { CheckpointRequestMsg, DataTransferMsg, SkippedSocketMsg } from '../../protocol/messages';
import { LoadedConnection, StreamedConnection } from '../../protocol/session-frames';
import { SocketAddress, addressToMsg } from '../../protocol/address';
import { SUPPORTED_STATES, TcpState } from '../../protocol/saved-state';
import { Calls, ServiceOptions, logFailure, toStatus } from './calls';
import { CheckpointCall, streamOverCall, streamOverDataPath } from './checkpoint-stream';
import { DataSender, dataTransferParams } from './data-path';
import { Rollback } from './rollback';
import { summarize } from './session-info';

export function checkpointHandler(calls: Calls): (call: CheckpointCall) => void {
  return (call) => void checkpoint(calls, call);
}

async function checkpoint(calls: Calls, call: CheckpointCall): Promise<void> {
  const o = calls.options;
  const req = call.request;
  let log = calls.log('Checkpoint', { pid: req.pid });
  const started = Date.now();
  const startedAt = performance.now();
  const undo = new Rollback();
  let leave = (): void => undefined;
  let ownerNs: NetnsHandle | undefined;
  // The queues of the connection being streamed, read from its frozen socket and not yet sent.
  const buffered = o.budget?.charge('buffered', 'a Checkpoint stream');
  let sessionId: string | undefined; // once the session exists: named in the error's details
  try {
    const admitted = calls.admit(call, 'Checkpoint', log);
    ({ log, leave } = admitted);
    checkRequest(req);
    // The process is held by its pidfd first; everything decided about it is read after that and
    // confirmed against the pidfd, so a pid reused meanwhile cannot pass another process's checks.
    const proc = ProcessHandle.open(req.pid);
    undo.push('close the owner handle', () => proc.close());
    const facts = proc.facts();
    refuseDaemons(facts);
    calls.policyFor(admitted.caller).checkCheckpoint(req.pid, facts);
    calls.checkSessionQuota(admitted.caller);
    const netlock = calls.networkLock(req.options?.noNetworkLock);
    const leaseMs = o.sessions.leaseFor(req.options?.leaseMs ?? 0);
    const chosen = chooseFds(req, facts, proc);
    proc.confirm(); // the sockets listed are this process's
    // From here on, once the session exists, it undoes everything: its abort thaws the source, and the
    // data connection is the stream's (cut if the stream fails).
    const sessionTakesOver = undo.mark();
    // The data connection is made before anything freezes: its set-up is not freeze time, and an
    // endpoint that cannot be reached fails the call with nothing touched.
    const data = req.dataTransfer ? await connectDataPath(req.dataTransfer) : undefined;
    if (data) undo.push('close the data connection', () => data.destroy());
    const source = await freezeSource(o, req, proc, facts, chosen, netlock, leaseMs, undo, log, admitted.caller.id);
    ownerNs = source.netns;
    const { conns, summaries, diagnosed } = streamedConnections(o, req.pid, source.netns, chosen, source.frozen, source.accepted, buffered);
    const s = o.sessions.createSource(
      req.pid,
      leaseMs,
      source.frozen.map((sock, i) => ({ sock, summary: summaries[i] })),
      source.id,
    );
    sessionId = s.id;
    undo.handedOver(sessionTakesOver);
    undo.push('abort the session', (cause) => {
      s.busy = undefined;
      // An incomplete checkpoint is of no use: the connections go on at the source.
      if (s.active) o.sessions.abort(s, `checkpoint failed: ${errorMessage(cause)}`);
    });
    s.frozenAt = source.frozenAt;
    s.createdBy = admitted.caller.id;
    s.lock = source.lock;
    if (source.stopped) s.owner = source.proc;
    else source.proc.close();
    s.busy = 'checkpoint'; // the lease is renewed while the stream is open
    log.info('connections frozen', { session: s.id, connections: conns.length, diagnosed, freezeUs: Math.round(source.freezeUs) });
    const header = {
      sessionId: s.id,
      leaseExpiresUnixMs: s.leaseExpiresAt,
      connectionCount: conns.length,
      pid: req.pid,
      hostname: hostname(),
      createdUnixMs: s.createdAt,
      tuples: summaries.map((c) => ({ local: addressToMsg(c.local), remote: addressToMsg(c.remote) })),
      skipped: chosen.skipped,
    };
    if (data) await streamOverDataPath(call, data, header, conns);
    else await streamOverCall(call, header, conns);
    s.busy = undefined;
    o.sessions.renew(s);
    // Whole: a restarted daemon takes the session over until its lease ends (a caller may Release it).
    o.journal?.streamed(s.id, s.leaseExpiresAt);
    call.end();
    undo.release();
    callFinished('Checkpoint', grpc.status.OK, startedAt);
    crashPoint('checkpoint.after-stream');
    log.info('checkpoint streamed', { session: s.id, ms: Date.now() - started });
  } catch (err) {
    undo.run(err, log);
    const st = toStatus(err, { session: sessionId });
    logFailure(log, st, err);
    callFinished('Checkpoint', call.cancelled ? grpc.status.CANCELLED : st.code, startedAt);
    // grpc-js turns an 'error' event into the call's status (destroy() would drop it).
    if (!call.cancelled) call.emit('error', Object.assign(new Error(st.details), st));
  } finally {
    ownerNs?.close();
    buffered?.release();
    leave();
  }
}

/**
 * What chooseFds picked: the fds, their addresses, what procfs listed of the owner's sockets, and the
 * sockets left with the owner, with why (allow_partial's refusals are added when the sockets are taken).
 */
interface ChosenFds {
  fds: number[];
  tuples: LockTuple[];
  listed: Map<number, TcpSocketInfo>;
  skipped: SkippedSocketMsg[];
  /** take_backlog: the listeners whose accept queues are taken (each reported in `skipped` once taken) */
  listeners: TcpSocketInfo[];
}

/** The refusals allow_partial turns into skipped sockets: those about one socket, not the call or the process. */
const PARTIAL_KINDS: ReadonlySet<ErrorKind> = new Set<ErrorKind>(['NO_SUCH_FD', 'NOT_A_SOCKET', 'NOT_TCP', 'LISTENING', 'UNSUPPORTED_STATE', 'CANNOT_CARRY']);

/** The source, frozen: what the session takes over. */
interface TakenSource {
  id: string;
  proc: ProcessHandle;
  stopped: boolean;
  lock: Session['lock'];
  /** the owner's sockets (chosen.fds, in order), then the connections taken from accept queues */
  frozen: FrozenSocket[];
  /** the connections taken from the listeners' accept queues (take_backlog), the last of `frozen` */
  accepted: AcceptedConnection[];
  frozenAt: number;
  freezeUs: number;
  /** the owner's network namespace, opened once for the call (the journal, the lock, socket diagnostics) */
  netns: NetnsHandle;
}

/**
 * Takes the sockets from their owner and freezes them, each step registering its undo: the owner's
 * handle, our copies of its sockets, the crash journal's record, the stopped owner, the network lock;
 * once frozen, the thaw of the whole source (custody/thaw.ts).
 */
async function freezeSource(
  o: ServiceOptions,
  req: CheckpointRequestMsg,
  proc: ProcessHandle,
  facts: ProcessFacts,
  chosen: ChosenFds,
  netlock: NetworkLock | undefined,
  leaseMs: number,
  undo: Rollback,
  log: Logger,
  createdBy: string,
): Promise<TakenSource> {
  const id = randomUUID();
  const pid = req.pid;
  const stopOwner = req.options?.stopOwner === true;
  const journal = o.journal;
  const source = undo.mark();
  // Check and take every socket first, then freeze them together: a refusal leaves all untouched.
  const netns = proc.netns();
  undo.push("close the owner's namespace", () => netns.close());
  const copies = takeChosen(proc, chosen, req.options?.allowPartial === true, netns);
  undo.push('close our copies of the sockets', () => silentCloseAll(copies.map((fd) => ({ fd, reuseAddr: false }))));
  const { fds, tuples } = chosen;
  // take_backlog: new SYNs to the listeners are dropped from before their queues are read (their peers
  // retransmit), so no connection completes into a queue after it was taken.
  const synLocks: LockTuple[] = chosen.listeners.map((l) => ({ local: l.local, remote: l.remote }));
  // Before anything a restarted daemon would have to undo: which sockets (fd, inode, SO_REUSEADDR),
  // whose owner, which lock entries where.
  const reuse: Array<boolean | undefined> = [];
  const journalUndone = (): void => {
    journal?.unlocked(id);
    journal?.ended(id, 'ABORTED');
  };
  if (journal) {
    journal.beginSource({
      id,
      pid,
      startTime: facts.startTime,
      leaseMs,
      expires: Date.now() + leaseMs,
      stopOwner,
      createdBy,
      conns: reuseAddrs(copies).map((reuseAddr, i) => ({ fd: fds[i], inode: socketInode(copies[i]), reuseAddr: (reuse[i] = reuseAddr) })),
    });
    undo.push('journal the failed checkpoint as undone', journalUndone);
    if (netlock) journal.locked(id, 'source', netlock.table, netnsRef(netns, pid), [...tuples, ...synLocks]);
  }
  crashPoint('checkpoint.after-journal');
  if (stopOwner) {
    journal?.stopping(id);
    await proc.stop();
    undo.push('continue the owner', () => proc.cont());
  }
  // No packet may reach or leave the connections from before repair mode goes on.
  const locked = [...tuples, ...synLocks];
  const lock = netlock ? { key: netlock.lock(netns, locked), tuples: locked } : undefined;
  const unlock = lock && netlock ? (): void => netlock.unlock(lock.key, lock.tuples) : undefined;
  if (unlock) undo.push('lift the network lock', unlock);
  crashPoint('checkpoint.after-lock');
  const accepted = takeBacklogs(proc, netns, chosen, undo);
  if (accepted.length && lock && netlock) {
    const more = accepted.map((a) => ({ local: a.local, remote: a.remote }));
    journal?.locked(id, 'source', netlock.table, netnsRef(netns, pid), more);
    netlock.lock(netns, more);
    lock.tuples.push(...more);
  }
  const freezeStart = process.hrtime.bigint();
  const frozenAt = performance.now();
  const frozen = pauseAll([...copies, ...accepted.map((a) => a.fd)], reuse);
  const freezeUs = Number(process.hrtime.bigint() - freezeStart) / 1000;
  // Frozen: from now on the source is given back as a whole, in thaw.ts's order, and only then
  // journaled as undone (a daemon that crashes in between must still find it, to resume it).
  undo.handedOver(source);
  if (journal) undo.push('journal the failed checkpoint as undone', journalUndone);
  undo.push('thaw the frozen source', () => {
    const thawed = thawSource({ sockets: frozen, unlock, stoppedOwner: stopOwner ? proc : undefined });
    thawed.errors.forEach((err, i) => {
      if (err) log.error('resuming after a failed checkpoint failed', { fd: fds[i], error: err });
    });
    proc.close();
  });
  crashPoint('checkpoint.after-freeze');
  return { id, proc, stopped: stopOwner, lock, frozen, accepted, frozenAt, freezeUs, netns };
}

/**
 * take_backlog: the connections waiting in the chosen listeners' accept queues, accepted on the owner's
 * behalf (repair/backlog.ts), each listener reported in `chosen.skipped` with how many it gave. Until
 * they are frozen, a failure closes them (they cannot go back into a queue).
 */
function takeBacklogs(proc: ProcessHandle, netns: NetnsHandle, chosen: ChosenFds, undo: Rollback): AcceptedConnection[] {
  const accepted: AcceptedConnection[] = [];
  if (!chosen.listeners.length) return accepted;
  undo.push('close the connections taken from accept queues', () => {
    for (const a of accepted) N.closeQuietly(a.fd);
  });
  const found = acceptBacklogs(proc, netns, chosen.listeners, accepted);
  for (const b of found) chosen.skipped.push({ fd: b.listener.fd, kind: 'LISTENING', reason: backlogReason(b) });
  if (!chosen.fds.length && !accepted.length) {
    throw new SoccrError('NO_SUCH_FD', `pid ${proc.pid} holds no TCP connection that can be checkpointed, and no connection waits in its listeners' queues`);
  }
  return accepted;
}

/**
 * The connections as the stream sends them. Every socket is frozen, so its state no longer changes: each
 * one is saved when its turn in the stream comes, and the destination rebuilds one connection while this
 * side saves the next. A socket procfs did not list (another namespace's) is saved now, for its addresses.
 */
function streamedConnections(
  o: ServiceOptions,
  pid: number,
  netns: NetnsHandle,
  { fds, listed }: ChosenFds,
  frozen: FrozenSocket[],
  accepted: readonly AcceptedConnection[],
  buffered: Charge | undefined,
): { conns: StreamedConnection[]; summaries: ConnectionSummary[]; diagnosed: number } {
  let budget = o.eagerSessionBytes;
  const diags = diagnoseFrozen(netns, [...fds.map((fd) => listed.get(fd)), ...accepted]);
  // A connection taken from an accept queue has no fd in the owner: it is named by its listener's.
  const what = (i: number): string =>
    i < fds.length ? `fd ${fds[i]} of pid ${pid}` : `a connection from the queue of fd ${accepted[i - fds.length].listenerFd} of pid ${pid}`;
  // TCP-MD5 keys show only here (uncarriable.ts): such a checkpoint fails now, and its source is thawed.
  // A socket diagnostics did not answer for (another namespace's, or no diagnostics) is not checked.
  diags.forEach((d, i) => {
    if (d?.md5Keys) throw md5Refusal(what(i));
  });
  const save = (i: number): LoadedConnection => {
    // Small queues come with the state (within a budget for the session); larger ones are read
    // on their own as their chunks are written. Either way one connection's queues at a time.
    const c = capture(frozen[i], Math.min(o.eagerQueueBytes, budget), diags[i]);
    if (!c.queuesPending) budget -= c.state.inqLen + c.state.outqLen;
    // This connection's queues replace the previous one's in memory (one at a time); past the daemon's
    // budget the stream fails before the larger queues are read, and the source is thawed.
    buffered?.set(c.state.inqLen + c.state.outqLen, `${what(i)} (${c.state.inqLen + c.state.outqLen} queue bytes)`);
    return { state: c.state, queues: c.queuesPending ? () => readQueues(frozen[i], c.state.inqLen, c.state.outqLen) : undefined };
  };
  const summaries: ConnectionSummary[] = [];
  const conns: StreamedConnection[] = fds.map((fd, i) => {
    const id = `${pid}:${fd}`;
    const e = listed.get(fd);
    if (!e) {
      const loaded = save(i);
      summaries.push(summarize(id, fd, loaded.state));
      return { id, fd, ...loaded };
    }
    const summary = summarize(id, fd, { local: e.local, remote: e.remote, state: e.state, inqLen: e.recvQueue, outqLen: e.sendQueue });
    summaries.push(summary);
    const load = (): LoadedConnection => {
      const loaded = save(i);
      Object.assign(summary, summarize(id, fd, loaded.state));
      return loaded;
    };
    return { id, fd, load };
  });
  accepted.forEach((a, j) => {
    // Saved now (its addresses and queues are not in the owner's listing): a request or two, small.
    const id = `${pid}:${a.listenerFd}:queued${j}`;
    const loaded = save(fds.length + j);
    summaries.push(summarize(id, a.listenerFd, loaded.state));
    conns.push({ id, fd: a.listenerFd, ...loaded });
  });
  return { conns, summaries, diagnosed: diags.filter((d) => d !== undefined).length };
}

/**
 * Takes the chosen sockets from their owner. Without allow_partial the first refusal fails the call with
 * nothing taken. With it, the sockets are taken in one batch when none is refused, else one by one: each
 * refused one is left with its owner and added to `chosen.skipped`, and `chosen` keeps the others only.
 * TCP-MD5 keys, which only socket diagnostics show, are looked for now on this path (before the freeze);
 * without allow_partial they are found right after it (streamedConnections).
 */
function takeChosen(proc: ProcessHandle, chosen: ChosenFds, allowPartial: boolean, netns: NetnsHandle): number[] {
  if (!allowPartial) return proc.takeTcpSockets(chosen.fds);
  let kept: Array<{ fd: number; copy: number }>;
  try {
    const copies = proc.takeTcpSockets(chosen.fds);
    kept = chosen.fds.map((fd, i) => ({ fd, copy: copies[i] }));
  } catch (err) {
    if (!(err instanceof SoccrError)) throw err;
    kept = [];
    for (const fd of chosen.fds) {
      try {
        kept.push({ fd, copy: proc.takeTcpSocket(fd, chosen.listed.get(fd)?.inode) });
      } catch (e) {
        if (!(e instanceof SoccrError) || !PARTIAL_KINDS.has(e.kind)) {
          silentCloseAll(kept.map((k) => ({ fd: k.copy, reuseAddr: false })));
          throw e;
        }
        chosen.skipped.push({ fd, kind: e.kind, reason: e.message });
      }
    }
  }
  const diags = diagnose(
    netns,
    kept.map((k) => chosen.listed.get(k.fd)),
  );
  kept = kept.filter((k, i) => {
    if (!diags[i]?.md5Keys) return true;
    N.closeQuietly(k.copy);
    chosen.skipped.push({ fd: k.fd, kind: 'CANNOT_CARRY', reason: md5Refusal(`fd ${k.fd} of pid ${proc.pid}`).message });
    return false;
  });
  if (!kept.length && !chosen.listeners.length)
    throw new SoccrError('NO_SUCH_FD', `pid ${proc.pid}: nothing left to checkpoint (${chosen.skipped.map((s) => `fd ${s.fd}: ${s.kind}`).join('; ')})`);
  chosen.fds = kept.map((k) => k.fd);
  chosen.tuples = tuplesOf(chosen.fds, chosen.listed);
  return kept.map((k) => k.copy);
}

/** The addresses of the fds procfs listed (an fd it did not list is another namespace's: not locked). */
function tuplesOf(fds: readonly number[], listed: Map<number, TcpSocketInfo>): LockTuple[] {
  return fds.flatMap((fd) => {
    const e = listed.get(fd);
    return e ? [{ local: e.local, remote: e.remote }] : [];
  });
}

/** Why `--all` leaves a listed TCP socket with its owner (a listener whose queue is taken is reported once it is). */
function notTaken(s: TcpSocketInfo): SkippedSocketMsg {
  if (s.state === TcpState.LISTEN) {
    const queued = s.recvQueue ? `; ${s.recvQueue} queued connection(s) left in its accept queue (take_backlog, --backlog, takes them)` : '';
    return {
      fd: s.fd,
      kind: 'LISTENING',
      reason: `listener stays: a checkpoint moves connections (on one host, soccrctl handoff --listeners moves listeners)${queued}`,
    };
  }
  if (s.remote.port === 0) return { fd: s.fd, kind: 'UNSUPPORTED_STATE', reason: 'a TCP socket that was never connected' };
  return { fd: s.fd, kind: 'UNSUPPORTED_STATE', reason: `in state ${s.stateName}, which cannot be checkpointed` };
}

function checkRequest(req: CheckpointRequestMsg): void {
  if (!Number.isInteger(req.pid) || req.pid <= 0) throw new SoccrError('BAD_REQUEST', 'pid is required');
  if (req.all && req.fds.length) throw new SoccrError('BAD_REQUEST', 'give fds or all, not both');
  if (req.options?.takeBacklog && !req.all) throw new SoccrError('BAD_REQUEST', 'take_backlog goes with all');
  if (!req.all && !req.fds.length) throw new SoccrError('BAD_REQUEST', 'give the fds to checkpoint, or all');
}

/** Which fds a checkpoint takes (those named, or every connection the engine supports), with their addresses. */
function chooseFds(req: CheckpointRequestMsg, facts: ProcessFacts, proc: ProcessHandle): ChosenFds {
  const listed = new Map(listTcpSockets(req.pid, facts.sockets).map((s) => [s.fd, s]));
  const movable = (s: TcpSocketInfo): boolean => SUPPORTED_STATES.has(s.state) && s.remote.port !== 0;
  const fds = req.all ? [...listed.values()].filter(movable).map((s) => s.fd) : [...new Set(req.fds)];
  const backlog = req.all && req.options?.takeBacklog === true;
  const listeners = backlog ? [...listed.values()].filter((s) => s.state === TcpState.LISTEN) : [];
  // "all" means all: every TCP socket it leaves with the owner is reported, with why.
  const skipped = req.all ? [...listed.values()].filter((s) => !movable(s) && !listeners.includes(s)).map(notTaken) : [];
  if (req.all) {
    // Connections a TCP listing does not show (MPTCP) must not be left behind without a word either.
    const mptcp = listMptcpConnections(req.pid);
    if (mptcp.length && req.options?.allowPartial !== true) {
      throw mptcpRefusal(`the connection${mptcp.length > 1 ? 's' : ''} on fd ${mptcp.join(', ')} of pid ${req.pid}`, mptcp.length);
    }
    for (const fd of mptcp) skipped.push({ fd, kind: 'CANNOT_CARRY', reason: mptcpRefusal(`fd ${fd} of pid ${req.pid}`).message });
    // Nor a connection in CLOSE that still holds unread bytes: no longer in any TCP table, but its data is
    // the owner's (saved, and restored in CLOSE with its queue, as the engine does for a named fd).
    fds.push(...proc.closedWithData(facts.sockets, new Set([...listed.values()].map((s) => s.inode))));
  }
  // With take_backlog, connections waiting in a queue are enough (takeBacklogs checks what it found).
  if (!fds.length && !listeners.some((l) => l.recvQueue > 0))
    throw new SoccrError('NO_SUCH_FD', `pid ${req.pid} holds no TCP connection that can be checkpointed`);
  // An fd procfs does not show as TCP gets its precise refusal from takeTcpSocket.
  return { fds, tuples: tuplesOf(fds, listed), listed, skipped, listeners };
}

/**
 * Socket diagnostics for the frozen sockets procfs listed, looked up in the owner's namespace by their
 * addresses: each answer is used only if it names the same socket (inode). Missing ones are read call
 * by call.
 */
function diagnoseFrozen(
  ns: NetnsHandle,
  entries: ReadonlyArray<{ local: SocketAddress; remote: SocketAddress; inode: number } | undefined>,
): Array<SocketDiag | undefined> {
  try {
    const found = diagnose(ns, entries);
    return found.map((d, i) => (d && entries[i] && d.inode === entries[i]?.inode ? d : undefined));
  } catch {
    return [];
  }
}

async function connectDataPath(t: DataTransferMsg): Promise<DataSender> {
  if (!t.endpoint) throw new SoccrError('BAD_REQUEST', "a checkpoint's data transfer needs the destination's endpoint");
  const { transferId, key, timeoutMs } = dataTransferParams(t);
  return DataSender.connect(t.endpoint, transferId, key, timeoutMs);
}
