// The soccr.v1 client: typed promise methods over grpc-js for every SocketRepairService call, checkpoint files
// written and read incrementally, and an offline decoder and verifier for those files.
import { once } from 'node:events';
import { createReadStream, promises as fsp, readFileSync } from 'node:fs';
import { checkServerIdentity } from 'node:tls';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import { SoccrError, errorMessage } from '../protocol/errors';
import type { ErrorKind } from '../protocol/errors';
import { isServiceError, soccrErrorOf, statusTrailers } from '../protocol/error-status';
import { DEFAULT_LIMITS, FrameAssembler, checksumMismatch } from '../protocol/assembler';
import { FILE_HEADER_LEN, checkFileHeader, decodeFramesDelimited, encodeFrameDelimited, fileHeader } from '../protocol/checkpoint-file';
import { RESUME_DEADLINE_MS } from '../protocol/handover';
import { STREAM_FORMAT, encodedFrameKind, frameKind, unpackFrames } from '../protocol/frames';
import { SessionKind, SessionState, enumName } from '../protocol/messages';
import { formatAddress } from '../protocol/address';
import { SERVICE_NAME, loadPackageDefinition } from '../protocol/proto';
import { stateName } from '../protocol/saved-state';
import { warmFrameCodecs } from '../protocol/session-frames';
import type { AssemblyLimits, CheckedConnection } from '../protocol/assembler';
import type {
  CheckpointRequestMsg,
  DataTransferMsg,
  FrameMsg,
  GetVersionResponseMsg,
  HandoffRequestMsg,
  HandoffResponseMsg,
  ListSessionsResponseMsg,
  ListSocketsResponseMsg,
  RestoreOptionsMsg,
  RestoreResponseMsg,
  SessionHeaderMsg,
  SessionInfoMsg,
  SocketEntryMsg,
} from '../protocol/messages';
import type { RepairWindow, UserSocketOptions } from '../protocol/saved-state';

// The message shapes are protocol/messages.ts's (proto-loader with keepCase: false, longs: Number,
// enums: Number, defaults: true, oneofs: true: every scalar present, absent messages null).
export { AddressFamily, SessionKind, SessionState } from '../protocol/messages';
export { isServiceError } from '../protocol/error-status';
export type {
  AddressMsg,
  FeaturesMsg,
  FrameMsg,
  GetVersionResponseMsg,
  HandoffResponseMsg,
  RestoreOptionsMsg,
  SessionConnectionMsg,
  SessionHeaderMsg,
  SessionInfoMsg,
  SocketEntryMsg,
} from '../protocol/messages';

/** Where soccrd listens unless told otherwise. */
export const DEFAULT_ADDRESS = 'unix:///run/soccrd/soccrd.sock';
/** Deadline of unary calls, and how long a streaming call may wait for a connection, by default. */
export const DEFAULT_TIMEOUT_MS = 5000;

const CALL_ENDED: unique symbol = Symbol('call ended');

export function sessionKindName(k: number): string {
  return enumName(SessionKind, k, 'KIND');
}

export function sessionStateName(s: number): string {
  return enumName(SessionState, s, 'STATE');
}

// ---- options and results ------------------------------------------------------------------------

export interface SoccrClientOptions {
  /** Channel credentials; insecure by default (a Unix socket, or a trusted network). */
  credentials?: grpc.ChannelCredentials;
  /**
   * Deadline of unary calls in ms (0: none). Default 5000. Resume waits at least RESUME_DEADLINE_MS
   * (15 s): longer than the daemon's bound on a hand-over, so that its answer is not cut off.
   */
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
  /** do not lock the network (nftables) around the frozen connections: the caller keeps packets away */
  noNetworkLock?: boolean;
  /** stop the owner (SIGSTOP) before freezing; continued on Resume, Abort or lease end, left stopped after Release */
  stopOwner?: boolean;
  /** move what can be moved: sockets that cannot be checkpointed are left with their owner and listed in the header's `skipped` */
  allowPartial?: boolean;
  /**
   * with all: the connections waiting in the process's listeners' accept queues are accepted on the
   * owner's behalf and checkpointed with the others (the listeners stay; see take_backlog in the proto)
   */
  takeBacklog?: boolean;
  /**
   * Send the frames straight to another daemon's data endpoint (see DataTransfer in the proto); the
   * stream then carries only the session header and the stream end.
   */
  dataTransfer?: DataTransfer;
}

/**
 * A same-host hand-off (Handoff): the old owner's sockets themselves go to the new owner. The old owner
 * is stopped while it runs; on failure it is continued and keeps every socket; on success it stays
 * stopped (kill it) or is killed (killOld).
 */
export interface HandoffOptions {
  /** fds of the old owner to hand off */
  fds?: readonly number[];
  /** every connected TCP socket (with no fds) */
  all?: boolean;
  /** with all: listening sockets too, with the connections waiting in their accept queues */
  listeners?: boolean;
  /** SIGKILL the old owner once the new one acknowledged (default: leave it stopped) */
  killOld?: boolean;
  /** refused (TARGET_STATE) before anything is touched unless the old owner is in this network namespace */
  expectNetns?: string;
  /** sockets per sendmsg of the hand-over (1..16; absent: 16); 1 for receivers whose control buffer takes one fd */
  fdsPerMessage?: number;
}

/** A direct daemon-to-daemon transfer: the same id and key go to the Checkpoint and to the Restore. */
export interface DataTransfer {
  /** Checkpoint: the destination's data endpoint (GetVersion's dataEndpoint); Restore: absent */
  endpoint?: string;
  /** 16 random bytes */
  transferId: Buffer;
  /** 32 random bytes */
  key: Buffer;
  /** connect / wait timeout in ms; absent: the daemon's default (10 s) */
  timeoutMs?: number;
}

/** The request field for a transfer, absent without one (as the message was before the data path). */
function dataTransferMsg(t: DataTransfer | undefined): DataTransferMsg | null {
  if (!t) return null;
  return { endpoint: t.endpoint ?? '', transferId: t.transferId, key: t.key, timeoutMs: u32('timeoutMs', t.timeoutMs ?? 0) };
}

/** RestoreOptions; absent fields take the proto defaults (empty, false, 0). */
export type RestoreOptions = Partial<Omit<RestoreOptionsMsg, 'dataTransfer'>> & {
  /** take the frames from a direct data connection (see CheckpointOptions.dataTransfer) */
  dataTransfer?: DataTransfer;
};

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
 * status (its code name, details and errno: the daemon's answer rebuilt as a SoccrError, or grpc-js's
 * own status), "KIND: message" for a SoccrError raised here, the message for anything else.
 */
export function describeError(err: unknown): string {
  const typed = soccrErrorOf(err);
  if (typed?.grpcCode !== undefined) return statusLine(typed.grpcCode, typed.message, typed.errno);
  if (isServiceError(err)) return statusLine(err.code, err.details || err.message, statusTrailers(err).errno);
  if (typed) return oneLine(`${typed.kind}: ${typed.message}`);
  return oneLine(errorMessage(err));
}

/** "CODE_NAME: details", and the errno unless the details name it already. */
function statusLine(code: number, details: string, errno: string | undefined): string {
  const name = (grpc.status as Record<number, string | undefined>)[code] ?? `STATUS_${code}`;
  let text = `${name}: ${oneLine(details)}`;
  if (errno !== undefined && !new RegExp(`\\b${errno.replace(/[^A-Za-z0-9_]/g, '')}\\b`).test(text)) text += ` (errno ${errno})`;
  return text;
}

// ---- addresses ----------------------------------------------------------------------------------

/** PEM files for calling a TCP daemon over TLS with a client certificate (mTLS). */
export interface TlsClientFiles {
  /** CA certificates that sign the daemon's certificate; absent: the system's roots */
  ca?: string;
  /** the client certificate chain and its key: both or neither (the daemon refuses clients without one) */
  cert?: string;
  key?: string;
  /** the name the daemon's certificate must carry, when it is not the host of the address */
  serverName?: string;
}

/** Channel credentials for a TCP daemon with mTLS (SoccrClientOptions.credentials, MigrateOptions.credentials). */
export function tlsCredentials(files: TlsClientFiles): grpc.ChannelCredentials {
  if ((files.cert === undefined) !== (files.key === undefined)) throw new Error('TLS: give the client certificate and its key together');
  const read = (what: string, f: string | undefined): Buffer | null => {
    if (f === undefined) return null;
    try {
      return readFileSync(f);
    } catch (err) {
      throw new Error(`${what} ${f}: ${errorMessage(err)}`, { cause: err });
    }
  };
  const name = files.serverName;
  return grpc.credentials.createSsl(
    read('TLS CA', files.ca),
    read('TLS key', files.key),
    read('TLS certificate', files.cert),
    name ? { checkServerIdentity: (_host, cert) => checkServerIdentity(name, cert) } : {},
  );
}

/** unix:///abs, unix:/abs, a bare absolute path, or host:port, in the form grpc-js takes. */
export function normalizeAddress(address: string): string {
  if (address.startsWith('/')) return `unix://${address}`;
  return address;
}

// ---- the client ---------------------------------------------------------------------------------

let packageDefinition: protoLoader.PackageDefinition | undefined;

function serviceDefinition(): protoLoader.ServiceDefinition {
  packageDefinition ??= loadPackageDefinition();
  return packageDefinition[SERVICE_NAME] as protoLoader.ServiceDefinition;
}

let codecsWarm = false;
/** Generates the frame codecs now (once per process) rather than during a first freeze (migrate). */
export function warmCodecs(): void {
  if (codecsWarm) return;
  serviceDefinition();
  warmFrameCodecs(packageDefinition);
  codecsWarm = true;
}

type MethodName =
  'GetVersion' | 'ListSockets' | 'Checkpoint' | 'Restore' | 'Resume' | 'Release' | 'Abort' | 'RenewLease' | 'ListSessions' | 'GetSession' | 'Handoff';

interface Method<Req, Res> {
  path: string;
  serialize: (value: Req) => Buffer;
  deserialize: (value: Buffer) => Res;
}

function u32(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${name} must be an integer in 0..4294967295, not ${v}`);
  return v;
}

/**
 * What checkpointToFile checks a stream against: its order, lengths and checksums, but no size limits
 * (a checkpoint larger than a daemon accepts may still go to a daemon configured for it).
 */
/** Connections per GetSession page the client asks for: the daemon's cap (about 1 MiB a page). */
const SESSION_PAGE_SIZE = 10_000;
/** Pages of one paged call at most (10000 pages of sessions or sockets is far beyond any host). */
const MAX_PAGES = 10_000;

const NO_LIMITS: AssemblyLimits = { maxQueueBytes: Infinity, maxConnections: Infinity, maxTotalBytes: Infinity };

/**
 * Calls that change nothing are retried on UNAVAILABLE (a daemon restarting under systemd drops the
 * connection a call was just sent on); the others are not, so that no step runs twice.
 */
const RETRY_SERVICE_CONFIG = JSON.stringify({
  methodConfig: [
    {
      name: ['GetVersion', 'ListSockets', 'ListSessions', 'GetSession', 'RenewLease'].map((method) => ({ service: SERVICE_NAME, method })),
      retryPolicy: { maxAttempts: 4, initialBackoff: '0.05s', maxBackoff: '0.5s', backoffMultiplier: 2, retryableStatusCodes: ['UNAVAILABLE'] },
    },
  ],
});

/** A plain iterable with an async face: nothing to await, the items are already there. */
// eslint-disable-next-line @typescript-eslint/require-await
async function* asAsync<T>(items: Iterable<T>): AsyncGenerator<T> {
  yield* items;
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
    this.client = new grpc.Client(this.address, options.credentials ?? grpc.credentials.createInsecure(), {
      'grpc.service_config': RETRY_SERVICE_CONFIG,
      ...options.channelOptions,
    });
  }

  /**
   * Waits until the channel to the daemon is connected (at most connectTimeoutMs), so that a call made
   * next starts at once: an orchestrator connects before it freezes anything.
   */
  connect(): Promise<void> {
    const ms = this.connectTimeoutMs > 0 ? this.connectTimeoutMs : DEFAULT_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      this.client.waitForReady(Date.now() + ms, (err) => {
        if (err) reject(serviceError(grpc.status.UNAVAILABLE, `no connection to the daemon at ${this.address} within ${ms} ms`));
        else resolve();
      });
    });
  }

  // -- unary calls --

  getVersion(): Promise<GetVersionResponseMsg> {
    return this.unary<object, GetVersionResponseMsg>('GetVersion', {});
  }

  /** Every TCP socket of `pid`, in fd order (page after page). */
  async listSockets(pid: number): Promise<SocketEntryMsg[]> {
    return this.allPages('ListSockets', (pageToken) =>
      this.unary<{ pid: number; pageToken: string }, ListSocketsResponseMsg>('ListSockets', { pid: u32('pid', pid), pageToken }).then((r) => ({
        items: r.sockets,
        next: r.nextPageToken,
      })),
    );
  }

  /**
   * Source session: thaw. Held restore session: go live and deliver (to `deliverUnixPath` if given).
   * Its deadline outlasts the daemon's hand-over (RESUME_DEADLINE_MS at least).
   */
  resume(sessionId: string, deliverUnixPath?: string): Promise<SessionInfoMsg> {
    return this.unary('Resume', { sessionId, deliverUnixPath: deliverUnixPath ?? '' }, this.timeoutMs > 0 ? Math.max(this.timeoutMs, RESUME_DEADLINE_MS) : 0);
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

  /** Every session this caller may see, oldest first, each with the first page of its connections (see getSession). */
  async listSessions(): Promise<SessionInfoMsg[]> {
    return this.allPages('ListSessions', (pageToken) =>
      this.unary<{ pageToken: string }, ListSessionsResponseMsg>('ListSessions', { pageToken }).then((r) => ({ items: r.sessions, next: r.nextPageToken })),
    );
  }

  /** A session with every one of its connections (page after page: the daemon sends at most 10000 at a time). */
  async getSession(sessionId: string): Promise<SessionInfoMsg> {
    let first: SessionInfoMsg | undefined;
    const connections = await this.allPages('GetSession', async (token) => {
      const page = await this.getSessionPage(sessionId, { pageSize: SESSION_PAGE_SIZE, pageToken: token });
      first ??= page;
      return { items: page.connections, next: page.nextConnectionsPageToken };
    });
    if (!first) throw new Error(`GetSession ${sessionId}: no page`); // allPages asks at least once
    return { ...first, connections, nextConnectionsPageToken: '' };
  }

  /** One page of a session's connections (GetSession's paging as it is: pageSize 0 takes the daemon's default). */
  getSessionPage(sessionId: string, page: { pageSize?: number; pageToken?: string } = {}): Promise<SessionInfoMsg> {
    return this.unary('GetSession', { sessionId, connectionsPageSize: page.pageSize ?? 0, connectionsPageToken: page.pageToken ?? '' });
  }

  /**
   * The items of every page of a paged call, from the first (empty token) to the one with no next token;
   * bounded: a daemon that keeps giving tokens (MAX_PAGES of them) fails the call.
   */
  private async allPages<T>(what: string, page: (token: string) => Promise<{ items: T[]; next: string }>): Promise<T[]> {
    const items: T[] = [];
    let token = '';
    for (let n = 0; n < MAX_PAGES; n++) {
      const p = await page(token);
      items.push(...p.items);
      if (p.next === '') return items;
      if (p.next === token) throw new Error(`${what}: the daemon gave the same page token twice`);
      token = p.next;
    }
    throw new Error(`${what}: more than ${MAX_PAGES} pages`);
  }

  /**
   * Hands the live sockets of `pid` to the new owner's receiver on `deliverUnixPath` (same host: see
   * HandoffOptions). Its deadline outlasts the daemon's hand-over (RESUME_DEADLINE_MS at least).
   */
  handoff(pid: number, deliverUnixPath: string, opts: HandoffOptions = {}): Promise<HandoffResponseMsg> {
    const req: HandoffRequestMsg = {
      pid: u32('pid', pid),
      fds: (opts.fds ?? []).map((fd) => u32('fd', fd)),
      all: opts.all ?? false,
      listeners: opts.listeners ?? false,
      deliverUnixPath,
      killOld: opts.killOld ?? false,
      expectNetns: opts.expectNetns ?? '',
      fdsPerMessage: opts.fdsPerMessage ?? 0,
    };
    return this.unary('Handoff', req, this.timeoutMs > 0 ? Math.max(this.timeoutMs, RESUME_DEADLINE_MS) : 0);
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
    const m = this.method<CheckpointRequestMsg, FrameMsg>('Checkpoint');
    return this.startCheckpoint(pid, opts, m.deserialize);
  }

  /**
   * checkpoint() whose frames stay encoded (Buffers), for a relay into another daemon's Restore, which
   * takes them as they are: queue bytes are then neither decoded nor encoded again on the way.
   * encodedFrameKind and decodeFrame (protocol/frames.ts) read them.
   */
  checkpointEncoded(pid: number, opts: CheckpointOptions = {}): grpc.ClientReadableStream<Buffer> {
    return this.startCheckpoint(pid, opts, (b: Buffer) => b);
  }

  private startCheckpoint<T>(pid: number, opts: CheckpointOptions, deserialize: (b: Buffer) => T): grpc.ClientReadableStream<T> {
    const req: CheckpointRequestMsg = {
      pid: u32('pid', pid),
      fds: (opts.fds ?? []).map((fd) => u32('fd', fd)),
      all: opts.all ?? false,
      options: {
        leaseMs: u32('leaseMs', opts.leaseMs ?? 0),
        noNetworkLock: opts.noNetworkLock ?? false,
        stopOwner: opts.stopOwner ?? false,
        allowPartial: opts.allowPartial ?? false,
        takeBacklog: opts.takeBacklog ?? false,
      },
      dataTransfer: dataTransferMsg(opts.dataTransfer),
    };
    const m = this.method<CheckpointRequestMsg, FrameMsg>('Checkpoint');
    const call = this.client.makeServerStreamRequest(m.path, m.serialize, deserialize, req, new grpc.Metadata(), {});
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
    let failure: Error | undefined;
    call.on('error', (err: Error) => {
      failure ??= err;
    });
    const fh = await fsp.open(tmp, atomic ? 'wx' : 'w', 0o600).catch((err: unknown) => {
      call.cancel();
      throw err;
    });
    const checker = new FrameAssembler(NO_LIMITS, { keepQueues: false });
    const out = new BatchWriter(fh);
    let header: SessionHeaderMsg | undefined;
    let ok = false;
    try {
      await out.write(fileHeader());
      for await (const message of call as AsyncIterable<FrameMsg>) {
        // The file holds frames one by one, whatever batches the daemon packed them in.
        for (const frame of unpackFrames(message)) {
          const done = checker.push(frame);
          if (done && !done.verified)
            throw new SoccrError('DATA_LOSS', `connection ${done.index} (${done.id}): queue checksum mismatch in the checkpoint stream`);
          await out.write(encodeFrameDelimited(frame));
        }
        onProgress?.({ bytes: out.bytes, connections: checker.connections, totalConnections: checker.header?.connectionCount });
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
    return { file: target, header, connections: checker.connections, queueBytes: checker.queueBytes, fileBytes: out.bytes };
  }

  // -- Restore --

  /**
   * Restores a checkpoint stream: RestoreOptions first, then every frame, respecting flow control (a
   * write that fills the call's buffer waits for 'drain'). If the daemon ends the call early, its status
   * wins; if `frames` throws, the call is cancelled and that error is thrown. A frame may also be a
   * Buffer holding an encoded Frame (as checkpointEncoded yields them): it is sent as it is. With
   * options.dataTransfer the frames come over the data connection: give none. `signal` cancels the call.
   */
  async restore(
    options: RestoreOptions,
    frames: AsyncIterable<FrameMsg | Buffer> | Iterable<FrameMsg | Buffer>,
    signal?: AbortSignal,
  ): Promise<SessionInfoMsg> {
    const restoreOptions: RestoreOptionsMsg = {
      netns: options.netns ?? '',
      deliverUnixPath: options.deliverUnixPath ?? '',
      goLive: options.goLive ?? false,
      transparent: options.transparent ?? false,
      leaseMs: u32('leaseMs', options.leaseMs ?? 0),
      noNetworkLock: options.noNetworkLock ?? false,
      dataTransfer: dataTransferMsg(options.dataTransfer),
    };
    const m = this.method<FrameMsg, RestoreResponseMsg>('Restore');
    const serialize = (f: FrameMsg | Buffer): Buffer => (Buffer.isBuffer(f) ? f : m.serialize(f));
    let ended = false;
    let call: grpc.ClientWritableStream<FrameMsg | Buffer> | undefined;
    // Cancels the call if the daemon has not answered its headers in time (started before the call exists).
    const watchdog = this.connectWatchdog(() => call?.cancel());
    const result = new Promise<SessionInfoMsg>((resolve, reject) => {
      call = this.client.makeClientStreamRequest(m.path, serialize, m.deserialize, new grpc.Metadata(), {}, (err, res) => {
        ended = true;
        watchdog.clear();
        if (err) {
          if (watchdog.fired) this.rewriteAsConnectTimeout(err);
          reject(err);
        } else if (!res?.session) reject(serviceError(grpc.status.INTERNAL, 'Restore answered without a session'));
        else resolve(res.session);
      });
    });
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    const c = call as grpc.ClientWritableStream<FrameMsg | Buffer>;
    c.once('metadata', watchdog.clear);
    if (signal?.aborted) c.cancel();
    else signal?.addEventListener('abort', () => c.cancel(), { once: true });
    // A write after the call ended may fail; the call's status is what matters then.
    c.on('error', () => undefined);

    // p, or CALL_ENDED as soon as the call ends. (Not Promise.race with `settled`: every race would add a
    // reaction to it that keeps the race's promise, and so the frame it resolved with, until the call ends.)
    const wakers = new Set<() => void>();
    void settled.then(() => {
      for (const wake of wakers) wake();
      wakers.clear();
    });
    const orEnded = <T>(p: Promise<T>): Promise<T | typeof CALL_ENDED> =>
      new Promise((resolve, reject) => {
        const wake = (): void => resolve(CALL_ENDED);
        wakers.add(wake);
        p.finally(() => wakers.delete(wake)).then(resolve, reject);
      });
    const write = async (f: FrameMsg | Buffer): Promise<void> => {
      if (c.write(f)) return;
      const ac = new AbortController();
      const drained = once(c, 'drain', { signal: ac.signal }).then(
        () => undefined,
        () => undefined,
      );
      await orEnded(drained);
      ac.abort();
    };
    // The call may end (the daemon refused) while the next frame is awaited from a slow producer, such as
    // another daemon's Checkpoint: that wait is abandoned and the producer told to stop (return()).
    const it: AsyncIterator<FrameMsg | Buffer> = Symbol.asyncIterator in frames ? frames[Symbol.asyncIterator]() : asAsync(frames);
    let exhausted = false;
    try {
      await write({ restoreOptions });
      while (!ended) {
        let r: IteratorResult<FrameMsg | Buffer> | typeof CALL_ENDED;
        try {
          r = await orEnded(it.next());
        } catch (err) {
          exhausted = true;
          throw err;
        }
        if (r === CALL_ENDED) break;
        if (r.done) {
          exhausted = true;
          break;
        }
        if ((Buffer.isBuffer(r.value) ? encodedFrameKind(r.value) : frameKind(r.value)) === 'restoreOptions')
          throw new SoccrError('BAD_REQUEST', 'restore input carries its own restore options frame');
        await write(r.value);
      }
      if (!ended) c.end();
    } catch (err) {
      if (!ended) {
        c.cancel();
        throw err;
      }
    } finally {
      if (!exhausted) void Promise.resolve(it.return?.()).catch(() => undefined);
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
    if (!def) throw new Error(`${SERVICE_NAME}/${name} missing from the proto`);
    return {
      path: def.path,
      serialize: def.requestSerialize as (value: Req) => Buffer,
      deserialize: (b: Buffer) => def.responseDeserialize(b) as Res,
    };
  }

  // Req is named by each caller so that its request literal is checked against the message type.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
  private unary<Req, Res>(name: MethodName, req: Req, timeoutMs = this.timeoutMs): Promise<Res> {
    const m = this.method<Req, Res>(name);
    const options: grpc.CallOptions = timeoutMs > 0 ? { deadline: Date.now() + timeoutMs } : {};
    return new Promise<Res>((resolve, reject) => {
      this.client.makeUnaryRequest(m.path, m.serialize, m.deserialize, req, new grpc.Metadata(), options, (err, res) => {
        if (err) {
          // a deadline that passed before the daemon was even reached says so plainly
          if (err.code === grpc.status.DEADLINE_EXCEEDED && this.client.getChannel().getConnectivityState(false) !== grpc.connectivityState.READY) {
            this.rewriteAsConnectTimeout(err, timeoutMs);
          }
          reject(err);
        } else if (res === undefined) reject(serviceError(grpc.status.INTERNAL, `${name} answered without a message`));
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
      for (const frame of frames) for (const f of unpackFrames(frame)) yield { frame: f, offset };
    }
    if (!sawHeader) checkFileHeader(rest);
    if (rest.length > 0)
      throw new SoccrError('INVALID_STATE', `invalid checkpoint stream: file truncated (${rest.length} bytes of an incomplete frame at byte ${offset})`);
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
  /** its kind (DATA_LOSS, INVALID_STATE, ...), when it has one */
  errorKind: ErrorKind | null;
}

/** A connection the assembler completed, or (without checksums) one it was inside of when the file ended. */
function describeConnection(c: Pick<CheckedConnection, 'index' | 'id' | 'fd' | 'state'> & Partial<CheckedConnection>): ConnectionDescription {
  const s = c.state;
  const hex = (b: Buffer | undefined): string | null => (b ? b.toString('hex') : null);
  return {
    index: c.index,
    id: c.id,
    fd: c.fd,
    state: stateName(s.state),
    socketFamily: s.socketFamily,
    local: formatAddress(s.local),
    remote: formatAddress(s.remote),
    recvQueueLen: s.inqLen,
    sendQueueLen: s.outqLen,
    unsentLen: s.unsentLen,
    recvSha256: hex(c.recvSha256),
    sendSha256: hex(c.sendSha256),
    actualRecvSha256: hex(c.actualRecvSha256),
    actualSendSha256: hex(c.actualSendSha256),
    verified: c.verified ?? false,
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
 * Decodes and verifies a checkpoint file offline (like CRIU's crit show) with FrameAssembler, the same
 * check the daemon runs on Restore, here hashing the queues instead of holding them: every connection
 * gets its own verdict, and listing goes on past a checksum mismatch. Structural damage stops the
 * listing there. Throws only when the file cannot be opened or is not a checkpoint file.
 */
export async function describeCheckpointFile(file: string): Promise<CheckpointFileDescription> {
  const fileBytes = (await fsp.stat(file)).size;
  const assembler = new FrameAssembler(DEFAULT_LIMITS, { keepQueues: false });
  const connections: ConnectionDescription[] = [];
  let error: unknown;
  const frames = readFileFrames(file);
  // The file header is checked on the first read: a file that is not a checkpoint throws here.
  let next = await frames.next();
  try {
    while (!next.done) {
      const done = assembler.push(next.value.frame);
      if (done) {
        connections.push(describeConnection(done));
        if (!done.verified) error ??= checksumMismatch(done);
      }
      next = await frames.next();
    }
  } catch (err) {
    error ??= err;
  } finally {
    await frames.return(undefined);
  }
  const cur = assembler.inProgress;
  // cut short inside a connection: list what its header says
  if (cur) connections.push(describeConnection(cur));
  const complete = assembler.finished;
  if (!error && !complete) error = new SoccrError('INVALID_STATE', 'invalid checkpoint stream: the file ends without the stream end frame (truncated?)');
  return {
    file: path.resolve(file),
    fileBytes,
    format: STREAM_FORMAT,
    session: assembler.header ?? null,
    connections,
    queueBytes: assembler.queueBytes,
    complete,
    verified: !error && complete,
    error: error === undefined ? null : describeError(error),
    errorKind: soccrErrorOf(error)?.kind ?? null,
  };
}
