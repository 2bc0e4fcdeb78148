// The Checkpoint RPC: a process's TCP connections frozen in place (the owner stopped if asked, the
// network locked, repair mode on), a source session holding them, and their saved state streamed out as
// frames (see checkpoint-stream.ts); any failure before the session exists undoes what was done.
import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { crashPoint, netnsOfPid, processStartTime, socketInode } from '../custody/journal';
import type { LockTuple, NetworkLock } from '../custody/netlock';
import type { ConnectionSummary, Session } from '../custody/sessions';
import { NetnsHandle } from '../kernel/netns';
import { SocketDiag, diagnose } from '../kernel/sockdiag';
import { callFinished } from '../metrics';
import { ProcessHandle, TcpSocketInfo, listTcpSockets } from '../repair/acquire';
import { FrozenSocket, capture, pauseAll, readQueues, resume, reuseAddrs, silentClose } from '../repair/engine';
import { SoccrError, errorMessage } from '../../protocol/errors';
import { CheckpointRequestMsg, DataTransferMsg, LoadedConnection, StreamedConnection, addressToMsg } from '../../protocol/protocol';
import { SUPPORTED_STATES } from '../../protocol/saved-state';
import { Calls, logFailure, toStatus } from './calls';
import { CheckpointCall, streamOverCall, streamOverDataPath } from './checkpoint-stream';
import { DataSender, dataTransferParams } from './data-path';
import { OPEN_POLICY, checkCheckpointTarget } from './policy';
import { summarize } from './session-info';

export function checkpointHandler(calls: Calls): (call: CheckpointCall) => void {
  return (call) => void checkpoint(calls, call);
}

async function checkpoint(calls: Calls, call: CheckpointCall): Promise<void> {
  const o = calls.o;
  const req = call.request;
  let log = calls.log('Checkpoint', { pid: req.pid });
  const started = Date.now();
  const startedAt = performance.now();
  let session: Session | undefined;
  const frozen: FrozenSocket[] = [];
  const dups: number[] = [];
  let proc: ProcessHandle | undefined;
  let stopped = false;
  let lock: { key: string; tuples: LockTuple[] } | undefined;
  let netlock: NetworkLock | undefined;
  const id = randomUUID();
  let journaled = false;
  let leave = (): void => undefined;
  let caller = '';
  let data: DataSender | undefined;
  try {
    ({ log, leave, caller } = calls.admit(call, 'Checkpoint', log));
    checkCheckpointTarget(o.policy ?? OPEN_POLICY, req.pid);
    calls.checkSessionQuota(caller);
    netlock = calls.networkLock(req.options?.noNetworkLock);
    const leaseMs = o.sessions.leaseFor(req.options?.leaseMs ?? 0);
    const { fds, tuples, listed } = chooseFds(req);
    // The data connection is made before anything freezes: its set-up is not freeze time, and an
    // endpoint that cannot be reached fails the call with nothing touched.
    if (req.dataTransfer) data = await connectDataPath(req.dataTransfer);
    // Check and take every socket first, then freeze them together: a refusal leaves all untouched.
    proc = ProcessHandle.open(req.pid);
    dups.push(...proc.takeTcpSockets(fds));
    // Before anything a restarted daemon would have to undo: which sockets (fd, inode, SO_REUSEADDR),
    // whose owner, which lock entries where.
    const journal = o.journal;
    const reuse: Array<boolean | undefined> = [];
    if (journal) {
      journal.beginSource({
        id,
        pid: req.pid,
        startTime: processStartTime(req.pid),
        leaseMs,
        expires: Date.now() + leaseMs,
        stopOwner: req.options?.stopOwner === true,
        conns: reuseAddrs(dups).map((reuseAddr, i) => ({ fd: fds[i], inode: socketInode(dups[i]), reuseAddr: (reuse[i] = reuseAddr) })),
      });
      journaled = true;
      if (netlock) journal.locked(id, 'source', netlock.table, netnsOfPid(req.pid), tuples);
    }
    crashPoint('checkpoint.after-journal');
    if (req.options?.stopOwner) {
      journal?.stopping(id);
      await proc.stop();
      stopped = true;
    }
    // No packet may reach or leave the connections from before repair mode goes on.
    if (netlock) lock = { key: netlock.lock(`/proc/${req.pid}/ns/net`, tuples), tuples };
    crashPoint('checkpoint.after-lock');
    const freezeStart = process.hrtime.bigint();
    const frozenAt = performance.now();
    frozen.push(...pauseAll(dups, reuse));
    const freezeUs = Number(process.hrtime.bigint() - freezeStart) / 1000;
    crashPoint('checkpoint.after-freeze');
    // Every socket is frozen, so its state no longer changes: each one is saved when its turn in the
    // stream comes, and the destination rebuilds one connection while this side saves the next. A
    // socket procfs did not list (another namespace's) is saved now, for its addresses.
    let budget = o.eagerSessionBytes;
    const diags = diagnoseFrozen(req.pid, fds, listed);
    const save = (i: number): LoadedConnection => {
      // Small queues come with the state (within a budget for the session); larger ones are read
      // on their own as their chunks are written. Either way one connection's queues at a time.
      const c = capture(frozen[i], Math.min(o.eagerQueueBytes, budget), diags[i]);
      if (!c.queuesPending) budget -= c.state.inqLen + c.state.outqLen;
      return { state: c.state, queues: c.queuesPending ? () => readQueues(frozen[i], c.state.inqLen, c.state.outqLen) : undefined };
    };
    const summaries: ConnectionSummary[] = [];
    const conns: StreamedConnection[] = fds.map((fd, i) => {
      const id = `${req.pid}:${fd}`;
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
    session = o.sessions.createSource(
      req.pid,
      leaseMs,
      frozen.map((sock, i) => ({ sock, summary: summaries[i] })),
      id,
    );
    const s = session;
    s.frozenAt = frozenAt;
    s.caller = caller;
    s.lock = lock;
    lock = undefined;
    if (stopped) s.owner = proc;
    else proc.close();
    proc = undefined;
    s.busy = 'checkpoint'; // the lease is renewed while the stream is open
    log.info('connections frozen', { session: s.id, connections: conns.length, diagnosed: diags.filter((d) => d !== undefined).length, freezeUs: Math.round(freezeUs) });
    const header = {
      sessionId: s.id,
      leaseExpiresUnixMs: s.leaseExpiresAt,
      connectionCount: conns.length,
      pid: req.pid,
      hostname: hostname(),
      createdUnixMs: s.createdAt,
      tuples: summaries.map((c) => ({ local: addressToMsg(c.local), remote: addressToMsg(c.remote) })),
    };
    if (data) await streamOverDataPath(call, data, header, conns);
    else await streamOverCall(call, header, conns);
    data = undefined;
    s.busy = undefined;
    o.sessions.renew(s);
    // Whole: a restarted daemon takes the session over until its lease ends (a caller may Release it).
    o.journal?.streamed(s.id, s.leaseExpiresAt);
    call.end();
    callFinished('Checkpoint', grpc.status.OK, startedAt);
    crashPoint('checkpoint.after-stream');
    log.info('checkpoint streamed', { session: s.id, ms: Date.now() - started });
  } catch (err) {
    data?.destroy();
    if (session) {
      session.busy = undefined;
      // An incomplete checkpoint is of no use: the connections go on at the source.
      if (session.active) o.sessions.abort(session, `checkpoint failed: ${errorMessage(err)}`);
    } else {
      for (const f of frozen) {
        try {
          resume(f);
        } catch (e) {
          log.error('resuming after a failed checkpoint failed', { error: e });
        }
      }
      for (const d of dups) silentClose({ fd: d, reuseAddr: false });
      if (lock && netlock) netlock.unlock(lock.key, lock.tuples);
      if (stopped) proc?.cont();
      proc?.close();
      if (journaled) {
        try {
          o.journal?.unlocked(id);
          o.journal?.ended(id, 'ABORTED');
        } catch (e) {
          log.error('journal: the failed checkpoint not recorded as undone', { error: e });
        }
      }
    }
    const st = toStatus(err);
    logFailure(log, st, err);
    callFinished('Checkpoint', call.cancelled ? grpc.status.CANCELLED : st.code, startedAt);
    // grpc-js turns an 'error' event into the call's status (destroy() would drop it).
    if (!call.cancelled) call.emit('error', Object.assign(new Error(st.details), st));
  } finally {
    leave();
  }
}

/** Which fds a checkpoint takes (those named, or every connection the engine supports), with their addresses. */
function chooseFds(req: CheckpointRequestMsg): { fds: number[]; tuples: LockTuple[]; listed: Map<number, TcpSocketInfo> } {
  if (!Number.isInteger(req.pid) || req.pid <= 0) throw new SoccrError('BAD_REQUEST', 'pid is required');
  if (req.all && req.fds.length) throw new SoccrError('BAD_REQUEST', 'give fds or all, not both');
  if (!req.all && !req.fds.length) throw new SoccrError('BAD_REQUEST', 'give the fds to checkpoint, or all');
  const listed = new Map(listTcpSockets(req.pid).map((s) => [s.fd, s]));
  const fds = req.all
    ? [...listed.values()].filter((s) => SUPPORTED_STATES.has(s.state) && s.remote.port !== 0).map((s) => s.fd)
    : [...new Set(req.fds)];
  if (!fds.length) throw new SoccrError('NO_SUCH_FD', `pid ${req.pid} holds no TCP connection that can be checkpointed`);
  // An fd procfs does not show as TCP gets its precise refusal from takeTcpSocket.
  const tuples = fds.flatMap((fd) => {
    const e = listed.get(fd);
    return e ? [{ local: e.local, remote: e.remote }] : [];
  });
  return { fds, tuples, listed };
}

/**
 * Socket diagnostics for the frozen sockets procfs listed, looked up in the owner's namespace by their
 * addresses: each answer is used only if it names the same socket (inode). Missing ones are read call
 * by call.
 */
function diagnoseFrozen(pid: number, fds: readonly number[], listed: Map<number, TcpSocketInfo>): Array<SocketDiag | undefined> {
  const entries = fds.map((fd) => listed.get(fd));
  let ns: NetnsHandle | undefined;
  try {
    ns = NetnsHandle.open(`/proc/${pid}/ns/net`);
    const found = diagnose(ns, entries);
    return found.map((d, i) => (d && entries[i] && d.inode === entries[i]?.inode ? d : undefined));
  } catch {
    return [];
  } finally {
    ns?.close();
  }
}

async function connectDataPath(t: DataTransferMsg): Promise<DataSender> {
  if (!t.endpoint) throw new SoccrError('BAD_REQUEST', "a checkpoint's data transfer needs the destination's endpoint");
  const { transferId, key, timeoutMs } = dataTransferParams(t);
  return DataSender.connect(t.endpoint, transferId, key, timeoutMs);
}
