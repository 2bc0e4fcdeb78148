// The soccr.v1 client: typed promise methods over grpc-js for every SocketRepair call, checkpoint files
// written and read incrementally, and an offline decoder and verifier for those files.
import { createHash, Hash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import { SoccrError } from '../daemon/errors';
import {
  ConnectionEndMsg,
  ConnectionHeaderMsg,
  FILE_HEADER_LEN,
  FrameAssembler,
  FrameMsg,
  QueueChunkMsg,
  QueueKind,
  RestoreOptionsMsg,
  STREAM_FORMAT,
  SessionHeaderMsg,
  StreamEndMsg,
  checkFileHeader,
  decodeFramesDelimited,
  encodeFrameDelimited,
  fileHeader,
  formatAddressMsg,
  frameKind,
  loadPackageDefinition,
  tcpStateName,
} from '../daemon/protocol';
import type { AddressMsg } from '../daemon/protocol';
import type { RepairWindow, UserSocketOptions } from '../daemon/state';
import { stateFromObject } from '../daemon/wire';

export type { AddressMsg, FrameMsg, RestoreOptionsMsg, SessionHeaderMsg } from '../daemon/protocol';

/** Where soccrd listens unless told otherwise. */
export const DEFAULT_ADDRESS = 'unix:///run/soccrd/soccrd.sock';
/** Deadline of unary calls, and how long a streaming call may wait for a connection, by default. */
export const DEFAULT_TIMEOUT_MS = 5000;

const SERVICE = 'soccr.v1.SocketRepair';

// ---- response shapes (proto-loader with keepCase: false, longs: Number, enums: Number, defaults: true,
// oneofs: true: every scalar present, absent messages null) ----------------------------------------

/** soccr.v1.SessionKind */
export enum SessionKind {
  UNSPECIFIED = 0,
  SOURCE = 1,
  RESTORE = 2,
}

/** soccr.v1.SessionState */
export enum SessionState {
  UNSPECIFIED = 0,
  FROZEN = 1,
  HELD = 2,
  RESUMED = 3,
  RELEASED = 4,
  ABORTED = 5,
  EXPIRED = 6,
}

/** soccr.v1.AddressFamily */
export enum AddressFamily {
  UNSPECIFIED = 0,
  IPV4 = 1,
  IPV6 = 2,
}

export interface FeaturesMsg {
  tcpRepair: boolean;
  repairWindow: boolean;
  pidfdGetfd: boolean;
  bufLock: boolean;
  rawSocket: boolean;
  networkLock: boolean;
}

export interface GetVersionResponseMsg {
  version: string;
  kernelRelease: string;
  streamFormat: number;
  features: FeaturesMsg | null;
}

export interface SocketEntryMsg {
  fd: number;
  inode: number;
  family: AddressFamily;
  local: AddressMsg | null;
  remote: AddressMsg | null;
  /** soccr.v1.TcpState (tcpStateName() names it) */
  state: number;
  sendQueue: number;
  recvQueue: number;
}

export interface SessionConnectionMsg {
  id: string;
  fd: number;
  local: AddressMsg | null;
  remote: AddressMsg | null;
  state: number;
  recvQueueLen: number;
  sendQueueLen: number;
  delivered: boolean;
}

export interface SessionInfoMsg {
  sessionId: string;
  kind: SessionKind;
  state: SessionState;
  pid: number;
  createdUnixMs: number;
  leaseExpiresUnixMs: number;
  connections: SessionConnectionMsg[];
  netns: string;
  deliverUnixPath: string;
  reason: string;
}

interface ListSocketsResponseMsg {
  sockets: SocketEntryMsg[];
}
interface ListSessionsResponseMsg {
  sessions: SessionInfoMsg[];
}
interface RestoreResponseMsg {
  session: SessionInfoMsg | null;
}
interface CheckpointRequestMsg {
  pid: number;
  fds: number[];
  all: boolean;
  options: { leaseMs: number };
}

export function sessionKindName(k: number): string {
  return SessionKind[k] ?? `KIND_${k}`;
}

export function sessionStateName(s: number): string {
  return SessionState[s] ?? `STATE_${s}`;
}

// ---- options and results ------------------------------------------------------------------------

export interface SoccrClientOptions {
  /** Channel credentials; insecure by default (a Unix socket, or a trusted network). */
  credentials?: grpc.ChannelCredentials;
  /** Deadline of unary calls in ms (0: none). Default 5000. */
  timeoutMs?: number;
  /** How long Checkpoint and Restore wait for a connection to the daemon, in ms (0: no limit). Default: timeoutMs. */
  connectTimeoutMs?: number;
  /** Extra grpc-js channel options. */
  channelOptions?: grpc.ChannelOptions;
}

export interface CheckpointOptions {
  /** fds of the process to checkpoint */
  fds?: readonly number[];
  /** every connection the engine supports (with no fds) */
  all?: boolean;
  /** lease of the source session in ms; 0 or absent: the daemon's default */
  leaseMs?: number;
}

/** RestoreOptions; absent fields take the proto defaults (empty, false, 0). */
export type RestoreOptions = Partial<RestoreOptionsMsg>;

export interface TransferProgress {
  /** bytes of the checkpoint file written (checkpoint) or consumed (restore) so far */
  bytes: number;
  /** size of the input file (restore); unknown while checkpointing */
  totalBytes?: number;
  /** connections completely transferred */
  connections: number;
  /** from the session header, once it arrived */
  totalConnections?: number;
}

export type ProgressCallback = (p: TransferProgress) => void;

export interface CheckpointFileResult {
  file: string;
  header: SessionHeaderMsg;
  connections: number;
  /** queue bytes the connections carried */
  queueBytes: number;
  /** size of the checkpoint file */
  fileBytes: number;
}

// ---- errors -------------------------------------------------------------------------------------

export function isServiceError(err: unknown): err is grpc.ServiceError {
  return (
    err instanceof Error &&
    typeof (err as Partial<grpc.ServiceError>).code === 'number' &&
    typeof (err as Partial<grpc.ServiceError>).details === 'string' &&
    (err as Partial<grpc.ServiceError>).metadata instanceof grpc.Metadata
  );
}

function serviceError(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), { code, details, metadata: new grpc.Metadata() });
}

function oneLine(s: string): string {
  // grpc-js ends some UNAVAILABLE details with an empty "Resolution note:"
  return s
    .replace(/\s*\n\s*/g, ' ')
    .replace(/\s*Resolution note:\s*$/, '')
    .trim();
}

/**
 * One line saying why a call failed: "NOT_FOUND: no process with pid 123 (errno ESRCH)" for a gRPC
 * status (its code name, details and the `soccr-errno` trailer), "KIND: message" for a SoccrError, the
 * message for anything else.
 */
export function describeError(err: unknown): string {
  if (isServiceError(err)) {
    const name = grpc.status[err.code] ?? `STATUS_${err.code}`;
    let text = `${name}: ${oneLine(err.details || err.message)}`;
    const errno = err.metadata.get('soccr-errno')[0];
    if (errno !== undefined) {
      const e = String(errno);
      if (!new RegExp(`\\b${e.replace(/[^A-Za-z0-9_]/g, '')}\\b`).test(text)) text += ` (errno ${e})`;
    }
    return text;
  }
  if (err instanceof SoccrError) return oneLine(`${err.kind}: ${err.message}`);
  if (err instanceof Error) return oneLine(err.message);
  return oneLine(String(err));
}

// ---- addresses ----------------------------------------------------------------------------------

/** unix:///abs, unix:/abs, a bare absolute path, or host:port, in the form grpc-js takes. */
export function normalizeAddress(address: string): string {
  if (address.startsWith('/')) return `unix://${address}`;
  return address;
}

// ---- the client ---------------------------------------------------------------------------------

let packageDefinition: protoLoader.PackageDefinition | undefined;

function serviceDefinition(): protoLoader.ServiceDefinition {
  packageDefinition ??= loadPackageDefinition();
  return packageDefinition[SERVICE] as protoLoader.ServiceDefinition;
}

type MethodName =
  | 'GetVersion'
  | 'ListSockets'
  | 'Checkpoint'
  | 'Restore'
  | 'Resume'
  | 'Release'
  | 'Abort'
  | 'RenewLease'
  | 'ListSessions'
  | 'GetSession';

interface Method<Req, Res> {
  path: string;
  serialize: (value: Req) => Buffer;
  deserialize: (value: Buffer) => Res;
}

function u32(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${name} must be an integer in 0..4294967295, not ${v}`);
  return v;
}

export class SoccrClient {
  readonly address: string;
  private readonly client: grpc.Client;
  private readonly timeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly service = serviceDefinition();

  constructor(address: string = DEFAULT_ADDRESS, options: SoccrClientOptions = {}) {
    this.address = normalizeAddress(address);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.connectTimeoutMs = options.connectTimeoutMs ?? this.timeoutMs;
    this.client = new grpc.Client(this.address, options.credentials ?? grpc.credentials.createInsecure(), options.channelOptions);
  }

  // -- unary calls --

  getVersion(): Promise<GetVersionResponseMsg> {
    return this.unary<object, GetVersionResponseMsg>('GetVersion', {});
  }

  async listSockets(pid: number): Promise<SocketEntryMsg[]> {
    const r = await this.unary<{ pid: number }, ListSocketsResponseMsg>('ListSockets', { pid: u32('pid', pid) });
    return r.sockets;
  }

  /** Source session: thaw. Held restore session: go live and deliver (to `deliverUnixPath` if given). */
  resume(sessionId: string, deliverUnixPath?: string): Promise<SessionInfoMsg> {
    return this.unary('Resume', { sessionId, deliverUnixPath: deliverUnixPath ?? '' });
  }

  /** Source session: commit (the daemon drops its copies; the sockets stay frozen and silent). */
  release(sessionId: string): Promise<SessionInfoMsg> {
    return this.unary('Release', { sessionId });
  }

  abort(sessionId: string): Promise<SessionInfoMsg> {
    return this.unary('Abort', { sessionId });
  }

  renewLease(sessionId: string): Promise<SessionInfoMsg> {
    return this.unary('RenewLease', { sessionId });
  }

  async listSessions(): Promise<SessionInfoMsg[]> {
    const r = await this.unary<object, ListSessionsResponseMsg>('ListSessions', {});
    return r.sessions;
  }

  getSession(sessionId: string): Promise<SessionInfoMsg> {
    return this.unary('GetSession', { sessionId });
  }

  close(): void {
    this.client.close();
  }

  // -- Checkpoint --

  /**
   * Starts a Checkpoint call. The frames come as a grpc readable stream (async iterable; cancel() ends the
   * call early). A failed call ends the iteration with the grpc ServiceError, provided the iteration (or an
   * 'error' listener) was in place when it failed: like every grpc-js stream, it reports the failure as an
   * 'error' event once, right after ending.
   */
  checkpoint(pid: number, opts: CheckpointOptions = {}): grpc.ClientReadableStream<FrameMsg> {
    const req: CheckpointRequestMsg = {
      pid: u32('pid', pid),
      fds: (opts.fds ?? []).map((fd) => u32('fd', fd)),
      all: opts.all ?? false,
      options: { leaseMs: u32('leaseMs', opts.leaseMs ?? 0) },
    };
    const m = this.method<CheckpointRequestMsg, FrameMsg>('Checkpoint');
    const call = this.client.makeServerStreamRequest(m.path, m.serialize, m.deserialize, req, new grpc.Metadata(), {});
    const watchdog = this.connectWatchdog(() => call.cancel());
    call.prependListener('error', (err: grpc.ServiceError) => {
      if (watchdog.fired) this.rewriteAsConnectTimeout(err);
    });
    call.once('metadata', watchdog.clear);
    call.once('status', watchdog.clear);
    return call;
  }

  /**
   * Checkpoints into a file: the file header, then every frame length-delimited. The stream is checked
   * as it arrives (order, lengths, checksums) without holding queues in memory; the file appears under
   * its name only once complete (written beside it, then renamed). A local failure cancels the call.
   */
  async checkpointToFile(pid: number, opts: CheckpointOptions, file: string, onProgress?: ProgressCallback): Promise<CheckpointFileResult> {
    const target = path.resolve(file);
    const existing = await fsp.stat(target).catch(() => undefined);
    const atomic = existing === undefined || existing.isFile();
    const tmp = atomic ? path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.partial`) : target;
    const call = this.checkpoint(pid, opts);
    // grpc-js ends the stream, then emits its error: one that comes before the loop below starts
    // reading would end that loop as if the stream were complete.
    let failure: unknown;
    call.on('error', (err: unknown) => {
      failure ??= err;
    });
    const fh = await fsp.open(tmp, atomic ? 'wx' : 'w', 0o600).catch((err: unknown) => {
      call.cancel();
      throw err;
    });
    const checker = new StreamChecker();
    const out = new BatchWriter(fh);
    let header: SessionHeaderMsg | undefined;
    let ok = false;
    try {
      await out.write(fileHeader());
      for await (const frame of call as AsyncIterable<FrameMsg>) {
        const done = checker.push(frame);
        if (done && !done.verified) throw new SoccrError('DATA_LOSS', `connection ${done.index} (${done.id}): queue checksum mismatch in the checkpoint stream`);
        await out.write(encodeFrameDelimited(frame));
        onProgress?.({ bytes: out.bytes, connections: checker.completed, totalConnections: checker.header?.connectionCount });
      }
      if (failure !== undefined) throw failure;
      if (!checker.finished || !checker.header) throw new SoccrError('INVALID_STATE', 'checkpoint stream ended without its end frame');
      header = checker.header;
      await out.flush();
      await fh.sync();
      ok = true;
    } catch (err) {
      call.cancel();
      throw err;
    } finally {
      await fh.close().catch(() => undefined);
      if (!ok && atomic) await fsp.unlink(tmp).catch(() => undefined);
    }
    if (atomic) await fsp.rename(tmp, target);
    return { file: target, header: header as SessionHeaderMsg, connections: checker.completed, queueBytes: checker.queueBytes, fileBytes: out.bytes };
  }

  // -- Restore --

  /**
   * Restores a checkpoint stream: RestoreOptions first, then every frame, respecting flow control (a
   * write that fills the call's buffer waits for 'drain'). If the daemon ends the call early, its status
   * wins; if `frames` throws, the call is cancelled and that error is thrown.
   */
  async restore(options: RestoreOptions, frames: AsyncIterable<FrameMsg> | Iterable<FrameMsg>): Promise<SessionInfoMsg> {
    const restoreOptions: RestoreOptionsMsg = {
      netns: options.netns ?? '',
      deliverUnixPath: options.deliverUnixPath ?? '',
      goLive: options.goLive ?? false,
      transparent: options.transparent ?? false,
      leaseMs: u32('leaseMs', options.leaseMs ?? 0),
    };
    const m = this.method<FrameMsg, RestoreResponseMsg>('Restore');
    let ended = false;
    let call: grpc.ClientWritableStream<FrameMsg> | undefined;
    let watchdog: { fired: boolean; clear: () => void } | undefined;
    const result = new Promise<SessionInfoMsg>((resolve, reject) => {
      call = this.client.makeClientStreamRequest(m.path, m.serialize, m.deserialize, new grpc.Metadata(), {}, (err, res) => {
        ended = true;
        watchdog?.clear();
        if (err) {
          if (watchdog?.fired) this.rewriteAsConnectTimeout(err);
          reject(err);
        } else if (!res?.session) reject(serviceError(grpc.status.INTERNAL, 'Restore answered without a session'));
        else resolve(res.session);
      });
    });
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    const c = call as grpc.ClientWritableStream<FrameMsg>;
    watchdog = this.connectWatchdog(() => c.cancel());
    c.once('metadata', watchdog.clear);
    // A write after the call ended may fail; the call's status is what matters then.
    c.on('error', () => undefined);

    const write = async (f: FrameMsg): Promise<void> => {
      if (c.write(f)) return;
      const ac = new AbortController();
      const drained = once(c, 'drain', { signal: ac.signal }).then(
        () => undefined,
        () => undefined,
      );
      await Promise.race([drained, settled]);
      ac.abort();
    };
    try {
      await write({ restoreOptions });
      for await (const f of frames) {
        if (ended) break;
        if (frameKind(f) === 'restoreOptions') throw new SoccrError('BAD_REQUEST', 'restore input carries its own restore options frame');
        await write(f);
      }
      if (!ended) c.end();
    } catch (err) {
      if (!ended) {
        c.cancel();
        throw err;
      }
    }
    return result;
  }

  /** Restores a checkpoint file, read in chunks and decoded frame by frame (memory: about one frame). */
  async restoreFromFile(file: string, options: RestoreOptions, onProgress?: ProgressCallback): Promise<SessionInfoMsg> {
    const size = (await fsp.stat(file)).size;
    let header: SessionHeaderMsg | undefined;
    let connections = 0;
    async function* frames(): AsyncGenerator<FrameMsg> {
      for await (const { frame, offset } of readFileFrames(file)) {
        const kind = frameKind(frame);
        if (kind === 'session') header = frame.session ?? undefined;
        yield frame;
        if (kind === 'end') connections++;
        onProgress?.({ bytes: offset, totalBytes: size, connections, totalConnections: header?.connectionCount });
      }
    }
    return this.restore(options, frames());
  }

  // -- plumbing --

  private method<Req, Res>(name: MethodName): Method<Req, Res> {
    const def = this.service[name];
    if (!def) throw new Error(`${SERVICE}/${name} missing from the proto`);
    return {
      path: def.path,
      serialize: def.requestSerialize as (value: Req) => Buffer,
      deserialize: (b: Buffer) => def.responseDeserialize(b) as Res,
    };
  }

  private unary<Req, Res>(name: MethodName, req: Req): Promise<Res> {
    const m = this.method<Req, Res>(name);
    const options: grpc.CallOptions = this.timeoutMs > 0 ? { deadline: Date.now() + this.timeoutMs } : {};
    return new Promise<Res>((resolve, reject) => {
      this.client.makeUnaryRequest(m.path, m.serialize, m.deserialize, req, new grpc.Metadata(), options, (err, res) => {
        if (err) {
          // a deadline that passed before the daemon was even reached says so plainly
          if (err.code === grpc.status.DEADLINE_EXCEEDED && this.client.getChannel().getConnectivityState(false) !== grpc.connectivityState.READY) {
            this.rewriteAsConnectTimeout(err, this.timeoutMs);
          }
          reject(err);
        }
        else if (res === undefined) reject(serviceError(grpc.status.INTERNAL, `${name} answered without a message`));
        else resolve(res);
      });
    });
  }

  /**
   * Streaming calls carry no deadline (a transfer takes what it takes), but one that still has no
   * connection to the daemon after connectTimeoutMs is cancelled. grpc-js itself fails a call at once
   * when the daemon refuses connections; this covers a host that does not answer at all.
   */
  private connectWatchdog(cancel: () => void): { fired: boolean; clear: () => void } {
    const w = { fired: false, clear: (): void => undefined };
    if (this.connectTimeoutMs <= 0) return w;
    const t = setTimeout(() => {
      if (this.client.getChannel().getConnectivityState(false) !== grpc.connectivityState.READY) {
        w.fired = true;
        cancel();
      }
    }, this.connectTimeoutMs);
    w.clear = (): void => clearTimeout(t);
    return w;
  }

  private rewriteAsConnectTimeout(err: grpc.ServiceError, ms = this.connectTimeoutMs): void {
    const e = serviceError(grpc.status.UNAVAILABLE, `no connection to the daemon at ${this.address} within ${ms} ms`);
    err.code = e.code;
    err.details = e.details;
    err.message = e.message;
  }
}

/** Collects small writes into batches of up to 1 MiB. */
class BatchWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  bytes = 0;
  constructor(private readonly fh: fsp.FileHandle) {}
  async write(b: Buffer): Promise<void> {
    this.pending.push(b);
    this.pendingBytes += b.length;
    this.bytes += b.length;
    if (this.pendingBytes >= 1 << 20) await this.flush();
  }
  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const bufs = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    await this.fh.writev(bufs);
  }
}

// ---- checking a frame stream without holding its queues ----------------------------------------

/** A connection as StreamChecker saw it: the header, and expected and actual checksums. */
interface CheckedConnection {
  index: number;
  id: string;
  fd: number;
  header: ConnectionHeaderMsg;
  recvSha256: Buffer | undefined;
  sendSha256: Buffer | undefined;
  actualRecvSha256: Buffer | undefined;
  actualSendSha256: Buffer | undefined;
  /** end frame seen */
  complete: boolean;
  /** complete, and both checksums match */
  verified: boolean;
}

/**
 * Follows a frame stream's structure and hashes the queues as they pass, so that a checksum mismatch is
 * reported per connection and the stream can be followed past it. Structural errors throw INVALID_STATE.
 */
class StreamChecker {
  header: SessionHeaderMsg | undefined;
  finished = false;
  completed = 0;
  queueBytes = 0;
  current: (CheckedConnection & { recvLen: number; sendLen: number; recvAt: number; sendAt: number; recv: Hash; send: Hash }) | undefined;

  push(f: FrameMsg): CheckedConnection | undefined {
    const bad = (msg: string): never => {
      throw new SoccrError('INVALID_STATE', `invalid checkpoint stream: ${msg}`);
    };
    const kind = frameKind(f);
    if (this.finished) bad(`${kind || 'a frame'} after the end of the stream`);
    switch (kind) {
      case 'session':
        if (this.header) bad('a second session header');
        this.header = f.session as SessionHeaderMsg;
        return undefined;
      case 'connection': {
        if (!this.header) bad('a connection before the session header');
        if (this.current) bad(`connection ${this.current.index} has no end frame`);
        const c = f.connection as ConnectionHeaderMsg;
        if (c.index !== this.completed) bad(`connection index ${c.index}, expected ${this.completed}`);
        const s = stateFromObject(c.state);
        this.current = {
          index: c.index,
          id: c.id,
          fd: c.fd,
          header: c,
          recvSha256: undefined,
          sendSha256: undefined,
          actualRecvSha256: undefined,
          actualSendSha256: undefined,
          complete: false,
          verified: false,
          recvLen: s.inqLen,
          sendLen: s.outqLen,
          recvAt: 0,
          sendAt: 0,
          recv: createHash('sha256'),
          send: createHash('sha256'),
        };
        return undefined;
      }
      case 'chunk': {
        const ch = f.chunk as QueueChunkMsg;
        const cur = this.current ?? bad('a queue chunk outside a connection');
        if (ch.index !== cur.index) bad(`chunk for connection ${ch.index} inside connection ${cur.index}`);
        if (ch.queue === QueueKind.RECV) {
          if (ch.offset !== cur.recvAt || cur.recvAt + ch.data.length > cur.recvLen) bad(`receive queue chunk of connection ${cur.index} at ${ch.offset} out of place`);
          cur.recv.update(ch.data);
          cur.recvAt += ch.data.length;
        } else if (ch.queue === QueueKind.SEND) {
          if (ch.offset !== cur.sendAt || cur.sendAt + ch.data.length > cur.sendLen) bad(`send queue chunk of connection ${cur.index} at ${ch.offset} out of place`);
          cur.send.update(ch.data);
          cur.sendAt += ch.data.length;
        } else {
          bad(`chunk of unknown queue ${ch.queue}`);
        }
        this.queueBytes += ch.data.length;
        return undefined;
      }
      case 'end': {
        const e = f.end as ConnectionEndMsg;
        const cur = this.current ?? bad('an end frame outside a connection');
        if (e.index !== cur.index) bad(`end of connection ${e.index} inside connection ${cur.index}`);
        if (cur.recvAt !== cur.recvLen || cur.sendAt !== cur.sendLen) bad(`connection ${cur.index} ended with queue bytes missing`);
        const done: CheckedConnection = {
          index: cur.index,
          id: cur.id,
          fd: cur.fd,
          header: cur.header,
          recvSha256: e.recvSha256,
          sendSha256: e.sendSha256,
          actualRecvSha256: cur.recv.digest(),
          actualSendSha256: cur.send.digest(),
          complete: true,
          verified: false,
        };
        done.verified = (done.actualRecvSha256 as Buffer).equals(e.recvSha256) && (done.actualSendSha256 as Buffer).equals(e.sendSha256);
        this.current = undefined;
        this.completed++;
        return done;
      }
      case 'streamEnd': {
        const se = f.streamEnd as StreamEndMsg;
        if (this.current) bad(`stream ended inside connection ${this.current.index}`);
        if (!this.header) bad('stream ended before the session header');
        const announced = (this.header as SessionHeaderMsg).connectionCount;
        if (se.connectionCount !== this.completed || this.completed !== announced) {
          bad(`stream carried ${this.completed} connections; header said ${announced}, end said ${se.connectionCount}`);
        }
        this.finished = true;
        return undefined;
      }
      case 'restoreOptions':
        return bad('restore options in a checkpoint stream');
      default:
        return bad('an empty frame');
    }
  }
}

// ---- checkpoint files ---------------------------------------------------------------------------

const READ_CHUNK = 1 << 20;

/** Frames of a checkpoint file with the file offset reached once each was decoded. */
async function* readFileFrames(file: string): AsyncGenerator<{ frame: FrameMsg; offset: number }> {
  const stream = createReadStream(file, { highWaterMark: READ_CHUNK });
  let rest: Buffer = Buffer.alloc(0);
  let offset = 0;
  let sawHeader = false;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      rest = rest.length === 0 ? chunk : Buffer.concat([rest, chunk]);
      if (!sawHeader) {
        if (rest.length < FILE_HEADER_LEN) continue;
        checkFileHeader(rest.subarray(0, FILE_HEADER_LEN));
        rest = rest.subarray(FILE_HEADER_LEN);
        offset = FILE_HEADER_LEN;
        sawHeader = true;
      }
      const { frames, used } = decodeFramesDelimited(rest);
      rest = rest.subarray(used);
      offset += used;
      for (const frame of frames) yield { frame, offset };
    }
    if (!sawHeader) checkFileHeader(rest);
    if (rest.length > 0) throw new SoccrError('INVALID_STATE', `invalid checkpoint stream: file truncated (${rest.length} bytes of an incomplete frame at byte ${offset})`);
  } finally {
    stream.destroy();
  }
}

/**
 * The frames of a checkpoint file, decoded as the file is read in chunks: memory holds about one frame,
 * whatever the file's size. Checks the file header and that the file does not end inside a frame; the
 * frames' order and checksums are the consumer's business (FrameAssembler, or the daemon on Restore).
 */
export async function* readCheckpointFile(file: string): AsyncGenerator<FrameMsg> {
  for await (const { frame } of readFileFrames(file)) yield frame;
}

export interface ConnectionDescription {
  index: number;
  id: string;
  /** fd in the source process */
  fd: number;
  /** TCP state name (ESTABLISHED, ...) */
  state: string;
  socketFamily: 'ipv4' | 'ipv6';
  /** "ip:port" or "[ip6]:port" */
  local: string;
  remote: string;
  recvQueueLen: number;
  sendQueueLen: number;
  /** never-sent tail of the send queue */
  unsentLen: number;
  /** SHA-256 the file states for each queue (hex); null when the connection's end frame is missing */
  recvSha256: string | null;
  sendSha256: string | null;
  /** SHA-256 of the queue bytes actually in the file (hex) */
  actualRecvSha256: string | null;
  actualSendSha256: string | null;
  /** both checksums match */
  verified: boolean;
  /** the rest of the saved state */
  tcp: {
    inqSeq: number;
    outqSeq: number;
    mssClamp: number;
    tcpOptions: number;
    sndWscale: number;
    rcvWscale: number;
    timestamp: number;
    window: RepairWindow | null;
  };
  options: UserSocketOptions;
}

export interface CheckpointFileDescription {
  file: string;
  fileBytes: number;
  format: number;
  session: SessionHeaderMsg | null;
  connections: ConnectionDescription[];
  queueBytes: number;
  /** the stream's end frame was reached and the connection counts agree */
  complete: boolean;
  /** complete, well formed and every checksum verified (FrameAssembler accepted the whole file) */
  verified: boolean;
  /** the first problem found, one line ("DATA_LOSS: connection 0 ...") */
  error: string | null;
}

function describeConnection(c: CheckedConnection): ConnectionDescription {
  const s = stateFromObject(c.header.state);
  const hex = (b: Buffer | undefined): string | null => (b ? b.toString('hex') : null);
  const addr = (a: { family: 'ipv4' | 'ipv6'; ip: string; port: number }): string => formatAddressMsg({ family: a.family === 'ipv6' ? 2 : 1, ip: a.ip, port: a.port });
  return {
    index: c.index,
    id: c.id,
    fd: c.fd,
    state: tcpStateName(s.state),
    socketFamily: s.socketFamily,
    local: addr(s.local),
    remote: addr(s.remote),
    recvQueueLen: s.inqLen,
    sendQueueLen: s.outqLen,
    unsentLen: s.unsentLen,
    recvSha256: hex(c.recvSha256),
    sendSha256: hex(c.sendSha256),
    actualRecvSha256: hex(c.actualRecvSha256),
    actualSendSha256: hex(c.actualSendSha256),
    verified: c.verified,
    tcp: {
      inqSeq: s.inqSeq,
      outqSeq: s.outqSeq,
      mssClamp: s.mssClamp,
      tcpOptions: s.tcpOptions,
      sndWscale: s.sndWscale,
      rcvWscale: s.rcvWscale,
      timestamp: s.timestamp,
      window: s.window ?? null,
    },
    options: s.options,
  };
}

/**
 * Decodes and verifies a checkpoint file offline (like CRIU's crit show). FrameAssembler, the same
 * check the daemon runs on Restore, decides `verified`; alongside, each queue is hashed so that every
 * connection gets its own verdict, and listing goes on past a checksum mismatch. Structural damage stops
 * the listing there. Throws only when the file cannot be opened or is not a checkpoint file.
 */
export async function describeCheckpointFile(file: string): Promise<CheckpointFileDescription> {
  const fileBytes = (await fsp.stat(file)).size;
  const assembler = new FrameAssembler();
  const checker = new StreamChecker();
  const connections: ConnectionDescription[] = [];
  let assemblerFailed = false;
  let error: unknown;
  const frames = readFileFrames(file);
  // The file header is checked on the first read: a file that is not a checkpoint throws here.
  let next = await frames.next();
  try {
    while (!next.done) {
      const { frame } = next.value;
      if (!assemblerFailed) {
        try {
          assembler.push(frame);
        } catch (err) {
          assemblerFailed = true;
          error ??= err;
          if (!(err instanceof SoccrError && err.kind === 'DATA_LOSS')) break;
        }
      }
      const done = checker.push(frame);
      if (done) {
        connections.push(describeConnection(done));
        if (!done.verified && !error) {
          error = new SoccrError('DATA_LOSS', `connection ${done.index} (${done.id}): queue checksum mismatch, the file was corrupted`);
        }
      }
      next = await frames.next();
    }
  } catch (err) {
    error ??= err;
  } finally {
    await frames.return(undefined);
  }
  const cur = checker.current;
  if (cur) {
    // cut short inside a connection: list what its header says
    connections.push(describeConnection({ ...cur, complete: false, verified: false }));
  }
  const complete = checker.finished;
  if (!error && !complete) error = new SoccrError('INVALID_STATE', 'invalid checkpoint stream: the file ends without the stream end frame (truncated?)');
  return {
    file: path.resolve(file),
    fileBytes,
    format: STREAM_FORMAT,
    session: checker.header ?? null,
    connections,
    queueBytes: checker.queueBytes,
    complete,
    verified: !error && assembler.finished,
    error: error === undefined ? null : describeError(error),
  };
}
