// The gRPC service soccr.v1.SocketRepair: requests in, engine and sessions at work, frames and status
// codes out. Every failure becomes a status code with a one-line message and, where a kernel call was
// the cause, its errno name in the `soccr-errno` trailer.
import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { Stats, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { hostname, release } from 'node:os';
import { ProcessHandle, TcpSocketInfo, listTcpSockets } from '../repair/acquire';
import { Journal, crashPoint, netnsOfPath, netnsOfPid, processStartTime, socketInode } from '../custody/journal';
import type { LockTuple, NetworkLock } from '../custody/netlock';
import { CallerGate, OPEN_POLICY, TargetPolicy, checkCheckpointTarget, checkRestoreTarget } from './policy';
import { stateFromObject } from '../../protocol/state-codec';
import { FrozenSocket, capture, pauseAll, readQueues, restore as restoreConnection, resume, reuseAddrs, silentClose } from '../repair/engine';
import { NetnsHandle, inNetns } from '../kernel/netns';
import { SocketDiag, diagnose } from '../kernel/sockdiag';
import { DEFAULT_DATA_TIMEOUT_MS, DataListener, DataSender } from './data-path';
import { SoccrError } from '../../protocol/errors';
import { errorStatus } from '../../protocol/error-status';
import type { Logger } from '../log';
import { callFinished, checkpointChunkSent, countSyscallFailure, queuesRestored } from '../metrics';
import { AssemblyLimits, FrameAssembler } from '../../protocol/assembler';
import { CheckpointRequestMsg, FeaturesMsg, FrameMsg, GetVersionResponseMsg, ListSessionsResponseMsg, ListSocketsRequestMsg, ListSocketsResponseMsg, RestoreOptionsMsg, RestoreResponseMsg, ResumeRequestMsg, SESSION_KIND, SESSION_STATE, SessionInfoMsg, SessionRequestMsg, ConnectionHeaderMsg, DataTransferMsg, SessionHeaderMsg } from '../../protocol/messages';
import { STREAM_FORMAT, frameKind, batchFrames, unpackFrames } from '../../protocol/frames';
import { LoadedConnection, StreamedConnection, sessionFrames } from '../../protocol/session-frames';
import { WIRE_FAMILY, addressFromMsg, addressToMsg } from '../../protocol/address';
import { ConnectionSummary, Session, SessionManager } from '../custody/sessions';
import { SUPPORTED_STATES, TcpState } from '../../protocol/saved-state';

export interface ServiceOptions {
  version: string;
  features: FeaturesMsg;
  sessions: SessionManager;
  log: Logger;
  limits: AssemblyLimits;
  /** Queues of a connection up to this many bytes are read at checkpoint time; larger ones while streaming. */
  eagerQueueBytes: number;
  /** ... and at most this many queue bytes of one session in all */
  eagerSessionBytes: number;
  /** undefined where the network lock does not work on this host */
  netlock: NetworkLock | undefined;
  /**
   * Checks the caller of every call before anything else happens; throws SoccrError UNAUTHENTICATED or
   * FORBIDDEN. Returns a name for the caller, used in logs. Absent: every caller is allowed.
   */
  authorize?: (call: AuthorizableCall, method: string) => string;
  /** the crash journal: written before each step a restarted daemon would have to undo */
  journal?: Journal;
  /** which processes may be checkpointed and which namespaces restored into; absent: any */
  policy?: TargetPolicy;
  /** per-caller limits on running calls and active sessions; absent: none */
  gate?: CallerGate;
  /** where direct transfers from other daemons come in (--data-listen); absent: none */
  dataListener?: DataListener;
}

/** What authorization may look at: the transport peer, the auth context and the metadata. */
export type AuthorizableCall = Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getPeer' | 'getAuthContext' | 'metadata'>;

/** Turns any error into a gRPC status error carrying the daemon's kind and the errno name. */
export function toStatus(err: unknown): Partial<grpc.StatusObject> {
  countSyscallFailure(err);
  return errorStatus(err);
}

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

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void;

export class SocketRepairService {
  private nextCall = 1;
  constructor(private readonly o: ServiceOptions) {}

  private callLog(method: string, extra: Record<string, unknown> = {}): Logger {
    return this.o.log.child({ method, call: this.nextCall++, ...extra });
  }

  /** Wraps a unary handler: logs, maps errors to status codes, never throws into grpc-js. */
  private unary<Req, Res>(method: string, fn: (req: Req, log: Logger) => Res | Promise<Res>): Unary<Req, Res> {
    return (call, callback) => {
      let log = this.callLog(method);
      let leave = (): void => undefined;
      const started = Date.now();
      const startedAt = performance.now();
      Promise.resolve()
        .then(() => {
          const a = this.admit(call, method, log);
          log = a.log;
          leave = a.leave;
          return fn(call.request, log);
        })
        .then(
          (res) => {
            leave();
            log.info('call done', { ms: Date.now() - started });
            callFinished(method, grpc.status.OK, startedAt);
            callback(null, res);
          },
          (err: unknown) => {
            leave();
            const st = toStatus(err);
            log.warn('call failed', { code: grpc.status[st.code ?? 2], error: st.details });
            callFinished(method, st.code, startedAt);
            callback(st, null);
          },
        );
    };
  }

  handlers(): grpc.UntypedServiceImplementation {
    return {
      GetVersion: this.unary('GetVersion', (): GetVersionResponseMsg => ({
        version: this.o.version,
        kernelRelease: release(),
        streamFormat: STREAM_FORMAT,
        features: this.o.features,
        dataEndpoint: this.o.dataListener?.endpoint ?? '',
      })),
      ListSockets: this.unary('ListSockets', (req: ListSocketsRequestMsg): ListSocketsResponseMsg => ({
        sockets: listTcpSockets(req.pid).map((s) => ({
          fd: s.fd,
          inode: s.inode,
          family: WIRE_FAMILY[s.family],
          local: addressToMsg(s.local),
          remote: addressToMsg(s.remote),
          state: s.state,
          sendQueue: s.sendQueue,
          recvQueue: s.recvQueue,
        })),
      })),
      Checkpoint: (call: grpc.ServerWritableStream<CheckpointRequestMsg, FrameMsg>) => void this.checkpoint(call),
      Restore: (call: grpc.ServerReadableStream<FrameMsg, RestoreResponseMsg>, cb: grpc.sendUnaryData<RestoreResponseMsg>) => void this.restore(call, cb),
      Resume: this.unary('Resume', async (req: ResumeRequestMsg, log) => {
        const s = this.o.sessions.get(req.sessionId);
        await this.o.sessions.resume(s, req.deliverUnixPath);
        log.info('session resumed', { session: s.id, kind: s.kind });
        return sessionToMsg(s);
      }),
      Release: this.unary('Release', (req: SessionRequestMsg, log) => {
        const s = this.o.sessions.get(req.sessionId);
        this.o.sessions.release(s);
        log.info('session released', { session: s.id });
        return sessionToMsg(s);
      }),
      Abort: this.unary('Abort', (req: SessionRequestMsg, log) => {
        const s = this.o.sessions.get(req.sessionId);
        this.o.sessions.abort(s, 'aborted by the caller');
        log.info('session aborted', { session: s.id, kind: s.kind });
        return sessionToMsg(s);
      }),
      RenewLease: this.unary('RenewLease', (req: SessionRequestMsg) => {
        const s = this.o.sessions.get(req.sessionId);
        this.o.sessions.renew(s);
        return sessionToMsg(s);
      }),
      GetSession: this.unary('GetSession', (req: SessionRequestMsg) => sessionToMsg(this.o.sessions.get(req.sessionId))),
      ListSessions: this.unary('ListSessions', (): ListSessionsResponseMsg => ({ sessions: this.o.sessions.list().map(sessionToMsg) })),
    };
  }

  /**
   * Lets a call in: the authorization hook names the caller (or refuses it), and the caller takes one of
   * its call slots. Returns the call's logger with the caller's name, and the function that gives the
   * slot back.
   */
  private admit(call: AuthorizableCall, method: string, log: Logger): { log: Logger; caller: string; leave: () => void } {
    const caller = this.o.authorize ? this.o.authorize(call, method) : 'anyone';
    const leave = this.o.gate ? this.o.gate.enter(caller) : (): void => undefined;
    return { log: this.o.authorize ? log.child({ caller }) : log, caller, leave };
  }

  /** RESOURCE_EXHAUSTED when the caller already holds as many active sessions as it may. */
  private checkSessionQuota(caller: string): void {
    this.o.gate?.checkSessions(caller, this.o.sessions.active().filter((s) => s.caller === caller).length);
  }

  /** Which fds a checkpoint takes (those named, or every connection the engine supports), with their addresses. */
  private chooseFds(req: CheckpointRequestMsg): { fds: number[]; tuples: LockTuple[]; listed: Map<number, TcpSocketInfo> } {
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
  private diagnoseFrozen(pid: number, fds: readonly number[], listed: Map<number, TcpSocketInfo>): Array<SocketDiag | undefined> {
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

  private lockingWanted(optOut: boolean | undefined): NetworkLock | undefined {
    if (optOut) return undefined;
    if (!this.o.netlock) {
      throw new SoccrError('SESSION_STATE', 'the network lock does not work on this host (is nft installed?); lock the network yourself and pass no_network_lock');
    }
    return this.o.netlock;
  }

  private async checkpoint(call: grpc.ServerWritableStream<CheckpointRequestMsg, FrameMsg>): Promise<void> {
    const req = call.request;
    let log = this.callLog('Checkpoint', { pid: req.pid });
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
      ({ log, leave, caller } = this.admit(call, 'Checkpoint', log));
      checkCheckpointTarget(this.o.policy ?? OPEN_POLICY, req.pid);
      this.checkSessionQuota(caller);
      netlock = this.lockingWanted(req.options?.noNetworkLock);
      const leaseMs = this.o.sessions.leaseFor(req.options?.leaseMs ?? 0);
      const { fds, tuples, listed } = this.chooseFds(req);
      // The data connection is made before anything freezes: its set-up is not freeze time, and an
      // endpoint that cannot be reached fails the call with nothing touched.
      if (req.dataTransfer) data = await connectDataPath(req.dataTransfer);
      // Check and take every socket first, then freeze them together: a refusal leaves all untouched.
      proc = ProcessHandle.open(req.pid);
      dups.push(...proc.takeTcpSockets(fds));
      // Before anything a restarted daemon would have to undo: which sockets (fd, inode, SO_REUSEADDR),
      // whose owner, which lock entries where.
      const journal = this.o.journal;
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
      let budget = this.o.eagerSessionBytes;
      const diags = this.diagnoseFrozen(req.pid, fds, listed);
      const save = (i: number): LoadedConnection => {
        // Small queues come with the state (within a budget for the session); larger ones are read
        // on their own as their chunks are written. Either way one connection's queues at a time.
        const c = capture(frozen[i], Math.min(this.o.eagerQueueBytes, budget), diags[i]);
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
      session = this.o.sessions.createSource(
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
      this.o.sessions.renew(s);
      // Whole: a restarted daemon takes the session over until its lease ends (a caller may Release it).
      this.o.journal?.streamed(s.id, s.leaseExpiresAt);
      call.end();
      callFinished('Checkpoint', grpc.status.OK, startedAt);
      crashPoint('checkpoint.after-stream');
      log.info('checkpoint streamed', { session: s.id, ms: Date.now() - started });
    } catch (err) {
      data?.destroy();
      if (session) {
        session.busy = undefined;
        // An incomplete checkpoint is of no use: the connections go on at the source.
        if (session.active) this.o.sessions.abort(session, `checkpoint failed: ${err instanceof Error ? err.message : String(err)}`);
      } else {
        for (const f of frozen) {
          try {
            resume(f);
          } catch (e) {
            log.error('resuming after a failed checkpoint failed', { error: String(e) });
          }
        }
        for (const d of dups) silentClose({ fd: d, reuseAddr: false });
        if (lock && netlock) netlock.unlock(lock.key, lock.tuples);
        if (stopped) proc?.cont();
        proc?.close();
        if (journaled) {
          try {
            this.o.journal?.unlocked(id);
            this.o.journal?.ended(id, 'ABORTED');
          } catch (e) {
            log.error('journal: the failed checkpoint not recorded as undone', { error: String(e) });
          }
        }
      }
      const st = toStatus(err);
      log.warn('call failed', { code: grpc.status[st.code ?? 2], error: st.details });
      callFinished('Checkpoint', call.cancelled ? grpc.status.CANCELLED : st.code, startedAt);
      // grpc-js turns an 'error' event into the call's status (destroy() would drop it).
      if (!call.cancelled) call.emit('error', Object.assign(new Error(st.details), st));
    } finally {
      leave();
    }
  }

  /** The frames of a Restore that takes them from a direct data connection (RestoreOptions.data_transfer). */
  private dataPathFrames(t: DataTransferMsg, signal: AbortSignal): AsyncGenerator<FrameMsg> {
    if (!this.o.dataListener) throw new SoccrError('SESSION_STATE', 'this daemon takes no direct transfers (start it with --data-listen)');
    if (t.endpoint) throw new SoccrError('BAD_REQUEST', "a restore's data transfer names no endpoint (the source connects to this daemon's)");
    const { transferId, key, timeoutMs } = dataTransferParams(t);
    return this.o.dataListener.receive(transferId, key, timeoutMs, signal);
  }

  private async restore(call: grpc.ServerReadableStream<FrameMsg, RestoreResponseMsg>, callback: grpc.sendUnaryData<RestoreResponseMsg>): Promise<void> {
    let log = this.callLog('Restore');
    const startedAt = performance.now();
    let session: Session | undefined;
    let leave = (): void => undefined;
    let caller = '';
    let netns: NetnsHandle | undefined;
    try {
      ({ log, leave, caller } = this.admit(call, 'Restore', log));
      this.checkSessionQuota(caller);
      const assembler = new FrameAssembler(this.o.limits);
      const input = (call as AsyncIterable<FrameMsg>)[Symbol.asyncIterator]();
      const first = await input.next();
      if (first.done) throw new SoccrError('BAD_REQUEST', 'empty Restore stream');
      if (frameKind(first.value) !== 'restoreOptions') throw new SoccrError('BAD_REQUEST', 'the first frame of a Restore must carry its options');
      const options = checkRestoreOptions(first.value.restoreOptions as RestoreOptionsMsg);
      checkRestoreTarget(this.o.policy ?? OPEN_POLICY, options.netns);
      const netlock = this.lockingWanted(options.noNetworkLock);
      // Held open for every socket of the stream (and not entered at all if it is the daemon's own).
      if (options.netns) netns = NetnsHandle.open(options.netns);
      const cancelled = new AbortController();
      call.on('cancelled', () => cancelled.abort());
      const frames = options.dataTransfer ? this.dataPathFrames(options.dataTransfer, cancelled.signal) : callFrames(input);
      for await (const frame of frames) {
        // An Abort may have ended the session between two frames: nothing more is built for it.
        if (session && !session.active) throw endedMidStream(session);
        const done = assembler.push(frame);
        if (!session && assembler.header) {
          const h = assembler.header;
          session = this.o.sessions.createRestore(h.pid, this.o.sessions.leaseFor(options.leaseMs), options.netns, options.deliverUnixPath);
          session.busy = 'restore';
          session.caller = caller;
          log = log.child({ session: session.id, source: h.sessionId });
          // Every connection is locked before the first socket exists (one transaction), when the
          // header names them; a stream without tuples is locked connection by connection.
          const tuples = (h.tuples ?? []).map((t) => ({ local: addressFromMsg(t.local), remote: addressFromMsg(t.remote) }));
          if (netlock && tuples.length) {
            // Journaled first: a restarted daemon removes what this run left in that namespace.
            this.o.journal?.locked(session.id, 'restore', netlock.table, netnsOfPath(options.netns || undefined), tuples);
            session.lock = { key: netlock.lock(options.netns || undefined, tuples), tuples };
            crashPoint('restore.after-lock');
          }
        }
        if (frameKind(frame) === 'connection' && netlock && session && !assembler.header?.tuples?.length) {
          const st = stateFromObject((frame.connection as ConnectionHeaderMsg).state);
          const t = { local: st.local, remote: st.remote };
          this.o.journal?.locked(session.id, 'restore', netlock.table, netnsOfPath(options.netns || undefined), [t]);
          const key = netlock.lock(options.netns || undefined, [t]);
          session.lock = { key, tuples: [...(session.lock?.tuples ?? []), t] };
          crashPoint('restore.after-lock');
        }
        if (done && session) {
          // Verified (checksums by the assembler, the state by restore) before its socket exists;
          // rebuilt in repair mode, not live.
          const r = restoreConnection(done.state, { netnsHandle: netns, transparent: options.transparent });
          this.o.sessions.addRestored(session, r, summarize(done.id, 0, done.state));
          queuesRestored(done.state.inqLen, done.state.outqLen);
          if (session.held.length === 1) crashPoint('restore.after-first-socket');
        }
      }
      if (session && !session.active) throw endedMidStream(session);
      if (!assembler.finished || !session) throw new SoccrError('INVALID_STATE', 'invalid checkpoint stream: it ended before its end frame');
      this.o.sessions.markHeld(session);
      log.info('connections rebuilt', { connections: session.held.length, goLive: options.goLive });
      crashPoint('restore.held');
      if (options.goLive) await this.o.sessions.goLive(session, options.deliverUnixPath);
      callFinished('Restore', grpc.status.OK, startedAt);
      callback(null, { session: sessionToMsg(session) });
    } catch (err) {
      if (session) {
        session.busy = undefined;
        // Nothing goes live from a stream that failed: whatever was rebuilt vanishes silently.
        if (session.active && session.state !== 'HELD') this.o.sessions.abort(session, `restore failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      const st = toStatus(err);
      if (session?.state === 'HELD') st.details = `${st.details}; session ${session.id} holds the rebuilt sockets: Resume it with another delivery path, or Abort it`;
      log.warn('call failed', { code: grpc.status[st.code ?? 2], error: st.details });
      callFinished('Restore', st.code, startedAt);
      callback(st, null);
    } finally {
      netns?.close();
      leave();
    }
  }
}

function endedMidStream(s: Session): SoccrError {
  return new SoccrError('SESSION_STATE', `session ${s.id} is ${s.state} (${s.reason}): its Restore stream is not taken further`);
}

/** The frames a Restore stream carries after its options, a batch's one by one. */
async function* callFrames(input: AsyncIterator<FrameMsg>): AsyncGenerator<FrameMsg> {
  for (;;) {
    const r = await input.next();
    if (r.done) return;
    yield* unpackFrames(r.value);
  }
}

/** Longest a Checkpoint stream goes on saving sockets without letting its written frames leave, ms. */
const FLUSH_EVERY_MS = 2;

type CheckpointCall = grpc.ServerWritableStream<CheckpointRequestMsg, FrameMsg>;

const callerGone = (): SoccrError => new SoccrError('SESSION_STATE', 'the caller went away mid-stream');

/** The session's frames on the Checkpoint stream itself, batched, honouring its flow control. */
async function streamOverCall(call: CheckpointCall, header: SessionHeaderMsg, conns: readonly StreamedConnection[]): Promise<void> {
  let frames = 0;
  let lastFlush = performance.now();
  for (const frame of batchFrames(sessionFrames(header, conns))) {
    if (call.cancelled) throw callerGone();
    if (!call.write(frame)) {
      await Promise.race([once(call, 'drain'), once(call, 'cancelled')]);
      lastFlush = performance.now();
    } else if (frames === 0 || performance.now() - lastFlush > FLUSH_EVERY_MS) {
      // Written frames leave only when the event loop runs: let them go now and then (the header
      // at once), so that the destination locks and rebuilds while this side saves the rest.
      await new Promise<void>((resolve) => setImmediate(resolve));
      lastFlush = performance.now();
    }
    for (const f of unpackFrames(frame)) if (f.chunk) checkpointChunkSent(f.chunk);
    if (frames++ === 0) crashPoint('checkpoint.mid-stream');
  }
}

/**
 * The session's frames on a direct data connection; the Checkpoint stream carries the session header
 * (the orchestrator learns the session at once) and, once the data connection took every byte, the
 * stream end.
 */
async function streamOverDataPath(call: CheckpointCall, data: DataSender, header: SessionHeaderMsg, conns: readonly StreamedConnection[]): Promise<void> {
  let frames = 0;
  let lastFlush = performance.now();
  for (const frame of sessionFrames(header, conns)) {
    if (call.cancelled) throw callerGone();
    const more = data.push(frame);
    if (frame.streamEnd) {
      await data.finish();
      call.write(frame);
      return;
    }
    if (frame.session) {
      // Sealed and sent at once, so that the destination locks every connection while this side saves.
      data.flush();
      call.write(frame);
      await new Promise<void>((resolve) => setImmediate(resolve));
      lastFlush = performance.now();
    } else if (performance.now() - lastFlush > FLUSH_EVERY_MS) {
      data.flush();
      lastFlush = performance.now();
    }
    if (!more) await data.drained();
    if (frame.chunk) checkpointChunkSent(frame.chunk);
    if (frames++ === 0) crashPoint('checkpoint.mid-stream');
  }
}

/** The transfer's id, key and timeout as the data path takes them (checkTransferKeys there checks their sizes). */
function dataTransferParams(t: DataTransferMsg): { transferId: Buffer; key: Buffer; timeoutMs: number } {
  return { transferId: Buffer.from(t.transferId ?? []), key: Buffer.from(t.key ?? []), timeoutMs: t.timeoutMs || DEFAULT_DATA_TIMEOUT_MS };
}

async function connectDataPath(t: DataTransferMsg): Promise<DataSender> {
  if (!t.endpoint) throw new SoccrError('BAD_REQUEST', "a checkpoint's data transfer needs the destination's endpoint");
  const { transferId, key, timeoutMs } = dataTransferParams(t);
  return DataSender.connect(t.endpoint, transferId, key, timeoutMs);
}

function summarize(id: string, fd: number, s: { local: ConnectionSummary['local']; remote: ConnectionSummary['remote']; state: TcpState; inqLen: number; outqLen: number }): ConnectionSummary {
  return { id, fd, local: s.local, remote: s.remote, state: s.state, recvQueueLen: s.inqLen, sendQueueLen: s.outqLen, delivered: false };
}

function checkRestoreOptions(o: RestoreOptionsMsg): RestoreOptionsMsg {
  if (o.netns) checkNetns(o.netns);
  if (o.goLive && !o.deliverUnixPath) throw new SoccrError('BAD_REQUEST', 'going live at once needs a delivery path');
  if (o.deliverUnixPath && Buffer.byteLength(o.deliverUnixPath) > 107) throw new SoccrError('BAD_REQUEST', 'delivery path longer than a Unix socket path can be');
  return o;
}

/**
 * That `p` names a network namespace (/proc/PID/ns/net, /run/netns/NAME): a file of nsfs (which stat shows
 * as a regular file) that setns takes as a network namespace. Anything else would fail later as a kernel
 * error (setns, nsenter), or block the daemon for good (opening a FIFO).
 */
function checkNetns(p: string): void {
  const refuse = (why: string, cause?: unknown): never => {
    throw new SoccrError('BAD_REQUEST', `network namespace ${p}: ${why}`, cause);
  };
  if (!isAbsolute(p)) refuse('not an absolute path');
  let st: Stats | undefined;
  try {
    st = statSync(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    refuse(code === 'ENOENT' ? 'does not exist' : (code ?? String(err)), err);
  }
  if (!st?.isFile() || st.dev !== statSync('/proc/self/ns/net').dev) refuse('not a namespace');
  try {
    inNetns(p, () => undefined);
  } catch (err) {
    refuse(`not a network namespace (${err instanceof Error ? err.message : String(err)})`, err);
  }
}
