// A stand-in soccrd for tests that need no privileges: a SocketRepairService gRPC server in the test process, on
// a Unix socket, that keeps sessions in a map, records every call it receives (in its own list and in a
// log that several stand-ins can share, so that the order of calls across daemons can be checked), and
// fails on request. Its Checkpoint streams either the connections it is given or, for volume tests,
// frames generated on the fly from one shared block (memory stays flat whatever the size); its Restore
// checks the stream as the daemon would, keeping the queues or only hashing them.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import { AssembledConnection, CheckedConnection, FrameAssembler } from '../../protocol/assembler';
import { FrameMsg, QueueKind, RestoreOptionsMsg, SessionHeaderMsg } from '../../protocol/messages';
import { MAX_CHUNK, frameKind } from '../../protocol/frames';
import { SavedStreamedConnection, sessionFrames } from '../../protocol/session-frames';
import { addressToMsg } from '../../protocol/address';
import { encodeFrameDelimited, fileHeader } from '../../protocol/checkpoint-file';
import { SERVICE_NAME, loadPackageDefinition } from '../../protocol/proto';
import type { SavedConnection } from '../../protocol/saved-state';
import { stateToObject } from '../../protocol/state-codec';
import { savedConnection } from './states';

export const MiB = 1024 * 1024;

// ---- connections and checkpoint streams ------------------------------------------------------------

/** A saved connection (test/support/states.ts), with `overrides`. */
export function conn(overrides: Partial<SavedConnection> = {}): SavedConnection {
  return savedConnection(overrides);
}

export function withQueues(s: SavedConnection, recv: Buffer, send: Buffer, unsent = 0): SavedConnection {
  return { ...s, recvQueue: recv, sendQueue: send, inqLen: recv.length, outqLen: send.length, unsentLen: unsent };
}

export function header(count: number, sessionId = 'src-0001'): SessionHeaderMsg {
  return {
    sessionId,
    leaseExpiresUnixMs: Date.now() + 60000,
    connectionCount: count,
    pid: 4242,
    hostname: 'alpha',
    createdUnixMs: Date.now(),
    tuples: [],
    skipped: [],
  };
}

export function writeCheckpoint(file: string, h: SessionHeaderMsg, conns: SavedStreamedConnection[]): Buffer {
  const parts = [fileHeader()];
  for (const f of sessionFrames(h, conns)) parts.push(encodeFrameDelimited(f));
  const b = Buffer.concat(parts);
  writeFileSync(file, b);
  return b;
}

export const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The address a bulk connection has: 10.1.2.3:(40000 + index) to 192.168.200.7:443. */
export function bulkLocalPort(index: number): number {
  return 40000 + index;
}

/**
 * A checkpoint stream whose connection i carries `sizes[i]` bytes of receive queue, generated as it is
 * read from one 1 MiB block that is never modified: the stream holds no queue in memory. Its session
 * header carries no tuples (a stream from before the network lock).
 */
export function* bulkFrames(h: SessionHeaderMsg, sizes: readonly number[]): Generator<FrameMsg> {
  const block = randomBytes(MAX_CHUNK);
  yield { session: { ...h, connectionCount: sizes.length } };
  for (let index = 0; index < sizes.length; index++) {
    const len = sizes[index];
    const state = conn({ local: { family: 'ipv4', ip: '10.1.2.3', port: bulkLocalPort(index) }, inqLen: len });
    yield { connection: { index, id: `${10 + index}:${900 + index}`, fd: 10 + index, state: stateToObject(state) } };
    const hash = createHash('sha256');
    for (let off = 0; off < len; off += MAX_CHUNK) {
      const data = block.subarray(0, Math.min(MAX_CHUNK, len - off));
      hash.update(data);
      yield { chunk: { index, queue: QueueKind.RECV, offset: off, data } };
    }
    yield { end: { index, recvSha256: hash.digest(), sendSha256: createHash('sha256').digest() } };
  }
  yield { streamEnd: { connectionCount: sizes.length } };
}

// ---- the stand-in daemon ----------------------------------------------------------------------------

export interface SessionInfoPlain {
  sessionId: string;
  kind: number;
  state: number;
  pid: number;
  createdUnixMs: number;
  leaseExpiresUnixMs: number;
  connections: Array<{
    id: string;
    fd: number;
    local: unknown;
    remote: unknown;
    state: number;
    recvQueueLen: number;
    sendQueueLen: number;
    delivered: boolean;
  }>;
  netns: string;
  deliverUnixPath: string;
  reason: string;
  connectionCount: number;
  queueBytes: number;
}

/** An error the stand-in answers with: a status, its details and the soccr trailers. */
export interface Failure {
  code: grpc.status;
  details: string;
  kind?: string;
  errno?: string;
}

export type UnaryName = 'GetVersion' | 'ListSockets' | 'Resume' | 'Release' | 'Abort' | 'RenewLease' | 'ListSessions' | 'GetSession';

export interface CallRecord {
  method: string;
  sessionId?: string;
  request: unknown;
}

export interface CheckpointRequestPlain {
  pid: number;
  fds: number[];
  all: boolean;
  options: { leaseMs: number; noNetworkLock: boolean; stopOwner: boolean } | null;
}

export class StandInDaemon {
  readonly server = new grpc.Server();
  readonly sessions = new Map<string, SessionInfoPlain>();
  /** every call received, in order */
  readonly calls: CallRecord[] = [];
  /** what the last Restore received (the queues only when keepQueues) */
  restored: { options: RestoreOptionsMsg; header: SessionHeaderMsg; connections: AssembledConnection[]; queueBytes: number } | undefined;
  /** the connections the next Checkpoint streams */
  checkpointConns: SavedStreamedConnection[] = [];
  /** instead: connections with generated receive queues of these sizes (bulkFrames) */
  checkpointBulk: number[] | undefined;
  /** Checkpoint fails with this status once it has sent `afterFrames` frames */
  checkpointFailure: (Failure & { afterFrames: number }) | undefined;
  /** Checkpoint stops sending (and never ends) once it has sent this many frames */
  checkpointStallAfter: number | undefined;
  /** Restore fails with this status once it has read `afterFrames` frames after the options */
  restoreFailure: (Failure & { afterFrames: number }) | undefined;
  /** Restore keeps the queue bytes it received (false: hashes and drops them) */
  keepQueues = true;
  /** Restore reads a frame every this many ms, so that its client has to respect flow control */
  restoreDelayMs = 2;
  /** unary calls answered with an error: `times` times (absent: every time) */
  failUnary: Partial<Record<UnaryName, Failure & { times?: number }>> = {};
  /** Checkpoint calls and Restore calls the client cancelled */
  checkpointsCancelled = 0;
  restoresCancelled = 0;
  /** the frames the last Checkpoint call sent */
  checkpointFramesSent = 0;
  /** what GetVersion says this daemon writes and reads (empty: the answer of a daemon older than the list) */
  streamFormat = 1;
  streamFormatsRead: number[] = [];
  private restores = 0;

  /**
   * @param socketPath where to listen
   * @param name how the shared log names this daemon ("src", "dst")
   * @param log a log shared with other stand-ins: "NAME Method [session]" lines in the order the calls came
   */
  constructor(
    readonly socketPath: string,
    readonly name = 'daemon',
    readonly log: string[] = [],
  ) {
    const def = loadPackageDefinition()[SERVICE_NAME] as protoLoader.ServiceDefinition;
    const status = (f: Failure): Partial<grpc.StatusObject> => {
      const metadata = new grpc.Metadata();
      if (f.kind) metadata.set('soccr-kind', f.kind);
      if (f.errno) metadata.set('soccr-errno', f.errno);
      return { code: f.code, details: f.details, metadata };
    };
    const fail = (code: grpc.status, details: string, kind: string, errno?: string): Partial<grpc.StatusObject> => status({ code, details, kind, errno });
    const bySession = (id: string): SessionInfoPlain | Partial<grpc.StatusObject> =>
      this.sessions.get(id) ?? fail(grpc.status.NOT_FOUND, `no session ${id}`, 'NO_SUCH_SESSION');
    const unary =
      <Req>(name: UnaryName, fn: (req: Req) => object | Partial<grpc.StatusObject>) =>
      (call: grpc.ServerUnaryCall<Req, object>, cb: grpc.sendUnaryData<object>): void => {
        const sessionId = (call.request as { sessionId?: string }).sessionId;
        this.record(name, call.request, sessionId);
        const injected = this.failUnary[name];
        if (injected && (injected.times === undefined || injected.times > 0)) {
          if (injected.times !== undefined) injected.times--;
          cb(status(injected), null);
          return;
        }
        const r = fn(call.request);
        if ('code' in r && typeof r.code === 'number') cb(r, null);
        else cb(null, r);
      };
    const setState =
      (state: number) =>
      (req: { sessionId: string; deliverUnixPath?: string }): SessionInfoPlain | Partial<grpc.StatusObject> => {
        const s = bySession(req.sessionId);
        if (!('sessionId' in s)) return s;
        s.state = state;
        if (state !== 1 && state !== 2) s.leaseExpiresUnixMs = 0;
        if (req.deliverUnixPath) s.deliverUnixPath = req.deliverUnixPath;
        if (state === 3 && s.kind === 2) for (const c of s.connections) c.delivered = true;
        return s;
      };
    this.server.addService(def, {
      GetVersion: unary('GetVersion', () => ({
        version: '9.9.9-fake',
        kernelRelease: '6.1.0-test',
        streamFormat: this.streamFormat,
        streamFormatsRead: this.streamFormatsRead,
        features: { tcpRepair: true, repairWindow: true, pidfdGetfd: true, bufLock: false, rawSocket: true, networkLock: false },
      })),
      ListSockets: unary('ListSockets', (req: { pid: number }) =>
        req.pid === 999
          ? fail(grpc.status.NOT_FOUND, 'no process with pid 999', 'NO_SUCH_PROCESS', 'ESRCH')
          : {
              sockets: [
                {
                  fd: 3,
                  inode: 123456,
                  family: 1,
                  local: { family: 1, ip: '10.1.2.3', port: 80 },
                  remote: { family: 1, ip: '10.9.9.9', port: 5555 },
                  state: 1,
                  sendQueue: 10,
                  recvQueue: 20,
                },
                {
                  fd: 4,
                  inode: 123457,
                  family: 2,
                  local: { family: 2, ip: '::', port: 80 },
                  remote: { family: 2, ip: '::', port: 0 },
                  state: 10,
                  sendQueue: 0,
                  recvQueue: 0,
                },
              ],
            },
      ),
      Checkpoint: (call: grpc.ServerWritableStream<CheckpointRequestPlain, FrameMsg>): void => {
        this.record('Checkpoint', call.request);
        let cancelled = false;
        call.on('cancelled', () => {
          cancelled = true;
          this.checkpointsCancelled++;
        });
        void (async () => {
          const pid = call.request.pid;
          const h = header(this.checkpointBulk ? this.checkpointBulk.length : this.checkpointConns.length, `src-${pid}`);
          const frames = this.checkpointBulk
            ? bulkFrames(h, this.checkpointBulk)
            : sessionFrames(
                { ...h, tuples: this.checkpointConns.map((c) => ({ local: addressToMsg(c.state.local), remote: addressToMsg(c.state.remote) })) },
                this.checkpointConns,
              );
          this.sessions.set(h.sessionId, {
            sessionId: h.sessionId,
            kind: 1,
            state: 1,
            pid,
            createdUnixMs: h.createdUnixMs,
            leaseExpiresUnixMs: h.leaseExpiresUnixMs,
            connections: [],
            netns: '',
            deliverUnixPath: '',
            reason: '',
            connectionCount: 0,
            queueBytes: 0,
          });
          this.checkpointFramesSent = 0;
          for (const f of frames) {
            if (cancelled) return;
            const n = this.checkpointFramesSent;
            if (pid === 13 && n === 4) {
              // the owner went away mid-stream
              call.emit('error', fail(grpc.status.ABORTED, 'connection 0 changed while frozen', 'QUEUE_MISMATCH'));
              return;
            }
            if (n === this.checkpointFailure?.afterFrames) {
              call.emit('error', status(this.checkpointFailure));
              return;
            }
            if (this.checkpointStallAfter !== undefined && n === this.checkpointStallAfter) return;
            this.checkpointFramesSent++;
            if (!call.write(f)) {
              const ac = new AbortController();
              const until = (event: string): Promise<unknown> => once(call, event, { signal: ac.signal }).catch(() => undefined);
              await Promise.race([until('drain'), until('cancelled')]);
              ac.abort();
            }
          }
          if (!cancelled) call.end();
        })();
      },
      Restore: (call: grpc.ServerReadableStream<FrameMsg, object>, cb: grpc.sendUnaryData<object>): void => {
        const rec = this.record('Restore', undefined);
        let cancelled = false;
        call.on('cancelled', () => {
          cancelled = true;
          this.restoresCancelled++;
        });
        void (async () => {
          let options: RestoreOptionsMsg | undefined;
          const full = this.keepQueues ? new FrameAssembler() : undefined;
          const lean = this.keepQueues ? undefined : new FrameAssembler(undefined, { keepQueues: false });
          const asm = (full ?? lean) as FrameAssembler<boolean>;
          const connections: AssembledConnection[] = [];
          let frames = 0;
          try {
            for await (const f of call as AsyncIterable<FrameMsg>) {
              if (this.restoreDelayMs > 0) await new Promise((r) => setTimeout(r, this.restoreDelayMs));
              if (!options) {
                if (frameKind(f) !== 'restoreOptions') throw new Error('first frame is not RestoreOptions');
                options = f.restoreOptions as RestoreOptionsMsg;
                rec.request = options;
                continue;
              }
              if (frames === this.restoreFailure?.afterFrames) {
                cb(status(this.restoreFailure), null);
                return;
              }
              frames++;
              if (full) {
                const c = full.push(f);
                if (c) connections.push(c);
              } else {
                const c: CheckedConnection | undefined = (lean as FrameAssembler<false>).push(f);
                if (c && !c.verified) throw new Error(`connection ${c.index} (${c.id}): queue checksum mismatch`);
                if (c) connections.push({ index: c.index, id: c.id, fd: c.fd, state: c.state });
              }
            }
            if (cancelled) return;
            if (!asm.finished || !options) throw new Error('restore stream incomplete');
          } catch (err) {
            if (!cancelled) cb({ code: grpc.status.DATA_LOSS, details: err instanceof Error ? err.message : String(err) }, null);
            return;
          }
          this.restored = { options, header: asm.header as SessionHeaderMsg, connections, queueBytes: asm.queueBytes };
          const id = `rst-${++this.restores}`;
          const s: SessionInfoPlain = {
            sessionId: id,
            kind: 2,
            state: options.goLive ? 3 : 2,
            pid: (asm.header as SessionHeaderMsg).pid,
            createdUnixMs: Date.now(),
            leaseExpiresUnixMs: options.goLive ? 0 : Date.now() + 30000,
            connections: connections.map((c) => ({
              id: c.id,
              fd: 0,
              local: { family: 1, ip: c.state.local.ip, port: c.state.local.port },
              remote: { family: 1, ip: c.state.remote.ip, port: c.state.remote.port },
              state: c.state.state,
              recvQueueLen: c.state.inqLen,
              sendQueueLen: c.state.outqLen,
              delivered: options.goLive,
            })),
            netns: options.netns,
            deliverUnixPath: options.deliverUnixPath,
            reason: '',
            connectionCount: connections.length,
            queueBytes: asm.queueBytes,
          };
          this.sessions.set(id, s);
          cb(null, { session: s });
        })();
      },
      Resume: unary('Resume', setState(3)),
      Release: unary('Release', setState(4)),
      Abort: unary('Abort', setState(5)),
      RenewLease: unary('RenewLease', (req: { sessionId: string }) => {
        const s = bySession(req.sessionId);
        if ('sessionId' in s && (s.state === 1 || s.state === 2)) s.leaseExpiresUnixMs = Date.now() + 60000;
        return s;
      }),
      ListSessions: unary('ListSessions', () => ({ sessions: [...this.sessions.values()] })),
      GetSession: unary('GetSession', (req: { sessionId: string }) => bySession(req.sessionId)),
    });
  }

  get address(): string {
    return `unix://${this.socketPath}`;
  }

  /** The calls received, as "Method" or "Method session" strings (GetSession, RenewLease and GetVersion left out unless asked). */
  callNames(all = false): string[] {
    return this.calls
      .filter((c) => all || (c.method !== 'GetSession' && c.method !== 'RenewLease' && c.method !== 'GetVersion'))
      .map((c) => (c.sessionId ? `${c.method} ${c.sessionId}` : c.method));
  }

  /** Forgets the calls, sessions and injected failures of earlier tests. */
  reset(): void {
    this.calls.length = 0;
    this.sessions.clear();
    this.restored = undefined;
    this.checkpointConns = [];
    this.checkpointBulk = undefined;
    this.checkpointFailure = undefined;
    this.checkpointStallAfter = undefined;
    this.restoreFailure = undefined;
    this.keepQueues = true;
    this.restoreDelayMs = 2;
    this.failUnary = {};
    this.checkpointsCancelled = 0;
    this.restoresCancelled = 0;
    this.checkpointFramesSent = 0;
    this.streamFormat = 1;
    this.streamFormatsRead = [];
    this.restores = 0;
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) =>
      this.server.bindAsync(this.address, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      // calls left open (a stalled checkpoint) must not hold the shutdown
      const t = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 2000);
      this.server.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private record(method: string, request: unknown, sessionId?: string): CallRecord {
    const rec: CallRecord = { method, request, sessionId };
    this.calls.push(rec);
    this.log.push(`${this.name} ${method}${sessionId ? ` ${sessionId}` : ''}`);
    return rec;
  }
}
