// The soccr.v1 protocol: typed shapes of its messages, the gRPC package definition, and the one frame
// format shared by the Checkpoint stream, the Restore input and checkpoint files.
import { createHash, type Hash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import * as path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';
import { SoccrError } from './errors';
import { STATE_VERSION, SavedConnection, TcpState } from './saved-state';
import { stateFromObject, stateToObject } from './state-codec';
import type { SocketAddress } from './address';

export const PROTO_DIR: string = (() => {
  const candidates = [path.resolve(__dirname, '..', '..', 'protos'), path.resolve(__dirname, '..', 'protos')];
  const found = candidates.find((p) => existsSync(path.join(p, 'soccr', 'v1', 'soccr.proto')));
  if (!found) throw new Error(`protos/ not found; looked in ${candidates.join(', ')}`);
  return found;
})();
export const SOCCR_PROTO = 'soccr/v1/soccr.proto';

/** Decoding options shared by grpc-js and the file format, so both hand over the same plain objects. */
const LOAD_OPTIONS = { keepCase: false, longs: Number, enums: Number, defaults: true, oneofs: true } as const;

/** The kind of a Restore frame whose bytes did not decode (see loadPackageDefinition). */
export const UNDECODABLE = 'undecodable';

export function loadPackageDefinition(): protoLoader.PackageDefinition {
  const pkg = protoLoader.loadSync(SOCCR_PROTO, { ...LOAD_OPTIONS, includeDirs: [PROTO_DIR] });
  // grpc-js answers a request deserializer that throws with INTERNAL. A Restore frame whose bytes do not
  // decode is the caller's fault: it reaches the handler as a frame of kind UNDECODABLE instead, which
  // the stream check refuses (INVALID_ARGUMENT).
  const restore = (pkg['soccr.v1.SocketRepair'] as protoLoader.ServiceDefinition | undefined)?.Restore;
  if (restore) {
    const decode = restore.requestDeserialize;
    restore.requestDeserialize = (b: Buffer): object => {
      try {
        return decode(b);
      } catch (err) {
        return { kind: UNDECODABLE, undecodable: `${b.length} bytes: ${err instanceof Error ? err.message : String(err)}` };
      }
    };
  }
  return pkg;
}

const root = new protobuf.Root();
root.resolvePath = (_origin: string, target: string): string => (path.isAbsolute(target) ? target : path.join(PROTO_DIR, target));
root.loadSync(SOCCR_PROTO);
const FrameType = root.lookupType('soccr.v1.Frame');

/** Version of the frame format (stream and file). */
export const STREAM_FORMAT = 1;
/** Largest queue chunk a frame carries. */
export const MAX_CHUNK = 1 << 20;

/**
 * The hand-over's bounds (Resume of a held restore session, Restore with go_live): the daemon waits at
 * most HANDOVER_ACK_TIMEOUT_MS for the receiver to take every fd and acknowledge, then at most
 * HANDOVER_LIVE_LINE_MS more to tell it "live". Clients derive their Resume deadline from these, so that
 * a Resume's answer is never cut off while its hand-over still runs.
 */
export const HANDOVER_ACK_TIMEOUT_MS = 10_000;
export const HANDOVER_LIVE_LINE_MS = 1_000;
/** Longest a hand-over runs in the daemon (going live itself aside: a few kernel calls per socket). */
export const HANDOVER_MAX_MS = HANDOVER_ACK_TIMEOUT_MS + HANDOVER_LIVE_LINE_MS;
/** The client library's Resume deadline, at least: the hand-over's bound plus room for going live and the answer. */
export const RESUME_DEADLINE_MS = HANDOVER_MAX_MS + 4_000;

// ---- message shapes (as grpc-js decodes them with LOAD_OPTIONS) ------------------------------------

export interface AddressMsg {
  family: number;
  ip: string;
  port: number;
}

export interface RestoreOptionsMsg {
  netns: string;
  deliverUnixPath: string;
  goLive: boolean;
  transparent: boolean;
  leaseMs: number;
  noNetworkLock?: boolean;
  /** frames from a direct data connection instead of the Restore stream */
  dataTransfer?: DataTransferMsg | null;
}

/** soccr.v1.DataTransfer: one direct daemon-to-daemon transfer (see the proto). */
export interface DataTransferMsg {
  /** Checkpoint only: the destination's data endpoint */
  endpoint: string;
  transferId: Buffer;
  key: Buffer;
  timeoutMs: number;
}

export interface ConnectionTupleMsg {
  local: AddressMsg | null;
  remote: AddressMsg | null;
}

export interface SessionHeaderMsg {
  sessionId: string;
  leaseExpiresUnixMs: number;
  connectionCount: number;
  pid: number;
  hostname: string;
  createdUnixMs: number;
  /** absent in streams from before the network lock */
  tuples?: ConnectionTupleMsg[];
}

export interface ConnectionHeaderMsg {
  index: number;
  id: string;
  fd: number;
  /** a plain soccr.v1.ConnectionState with empty queues */
  state: Record<string, unknown>;
}

export enum QueueKind {
  RECV = 1,
  SEND = 2,
}

export interface QueueChunkMsg {
  index: number;
  queue: QueueKind;
  offset: number;
  data: Buffer;
}

export interface ConnectionEndMsg {
  index: number;
  recvSha256: Buffer;
  sendSha256: Buffer;
}

export interface StreamEndMsg {
  connectionCount: number;
}

export interface FrameMsg {
  restoreOptions?: RestoreOptionsMsg | null;
  session?: SessionHeaderMsg | null;
  connection?: ConnectionHeaderMsg | null;
  chunk?: QueueChunkMsg | null;
  end?: ConnectionEndMsg | null;
  streamEnd?: StreamEndMsg | null;
  batch?: { frames: FrameMsg[] } | null;
  /** which member of the oneof is set (grpc-js with oneofs: true), or UNDECODABLE */
  kind?: string;
  /** kind UNDECODABLE: why the frame's bytes did not decode */
  undecodable?: string;
}

export function frameKind(f: FrameMsg): string {
  if (f.kind) return f.kind;
  for (const k of ['restoreOptions', 'session', 'connection', 'chunk', 'end', 'streamEnd', 'batch'] as const) if (f[k]) return k;
  return '';
}

const KIND_BY_FIELD = ['', 'restoreOptions', 'session', 'connection', 'chunk', 'end', 'streamEnd', 'batch'];

/**
 * The kind of an encoded Frame, read from its first tag (the oneof member's field number) without
 * decoding it: a relay passes queue chunks on untouched. '' when the first tag names no member.
 */
export function encodedFrameKind(b: Buffer): string {
  if (b.length === 0) return '';
  const tag = b[0];
  return (tag & 7) === 2 ? (KIND_BY_FIELD[tag >> 3] ?? '') : '';
}

/**
 * Encodes a Frame the daemon built itself (sessionFrames: plain objects with the proto's types already),
 * without the fromObject conversion proto-loader's serializer makes first.
 */
export function encodeFrame(f: FrameMsg): Buffer {
  const u = FrameType.encode(f as unknown as protobuf.Message).finish();
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** Decodes one encoded Frame into the plain object grpc-js hands over; throws if it does not decode. */
export function decodeFrame(b: Buffer): FrameMsg {
  return FrameType.toObject(FrameType.decode(b), LOAD_OPTIONS) as FrameMsg;
}

/**
 * The frames one message carries, in order: a batch's, or the frame itself. A batch inside a batch,
 * restore options inside a batch or an empty batch is a malformed stream.
 */
export function unpackFrames(f: FrameMsg): FrameMsg[] {
  if (frameKind(f) !== 'batch') return [f];
  const inner = f.batch?.frames ?? [];
  if (inner.length === 0) throw new SoccrError('BAD_REQUEST', 'invalid checkpoint stream: an empty frame batch');
  for (const x of inner) {
    const k = frameKind(x);
    if (k === 'batch' || k === 'restoreOptions' || k === '' || k === UNDECODABLE) throw new SoccrError('BAD_REQUEST', `invalid checkpoint stream: a frame batch holding ${k || 'an empty frame'}`);
  }
  return inner;
}

/** Frames per batch, and bytes: small enough that the destination starts on a batch within milliseconds. */
const BATCH_FRAMES = 64;
const BATCH_BYTES = 256 * 1024;
/** A chunk this large goes in a message of its own. */
const BATCH_CHUNK_BYTES = 16 * 1024;

/**
 * Packs consecutive small frames into batches (at most BATCH_FRAMES frames or BATCH_BYTES of queue
 * bytes each); the session header and large chunks go alone, the header first so that a destination can
 * lock every connection before the first is saved. Lazy: a frame is taken only when its batch is due.
 */
export function* batchFrames(frames: Iterable<FrameMsg>): Generator<FrameMsg> {
  let batch: FrameMsg[] = [];
  let bytes = 0;
  const packed = (): FrameMsg => {
    const out: FrameMsg = batch.length === 1 ? batch[0] : { batch: { frames: batch } };
    batch = [];
    bytes = 0;
    return out;
  };
  for (const f of frames) {
    const size = f.chunk ? f.chunk.data.length : 0;
    if (f.session || size >= BATCH_CHUNK_BYTES) {
      if (batch.length) yield packed();
      yield f;
      continue;
    }
    batch.push(f);
    bytes += size;
    if (batch.length >= BATCH_FRAMES || bytes >= BATCH_BYTES) yield packed();
  }
  if (batch.length) yield packed();
}

/**
 * Runs every frame type through encoding and decoding once. protobufjs generates each type's encoder
 * and decoder on first use (milliseconds each): done at start, that cost stays out of the first freeze.
 */
export function warmFrameCodecs(pkg?: protoLoader.PackageDefinition): void {
  const sample: SavedConnection = {
    version: STATE_VERSION,
    state: TcpState.ESTABLISHED,
    socketFamily: 'ipv6',
    local: { family: 'ipv6', ip: 'fd00::1', port: 1 },
    remote: { family: 'ipv6', ip: 'fd00::2', port: 2 },
    inqSeq: 1,
    outqSeq: 1,
    inqLen: 1,
    outqLen: 1,
    unsentLen: 0,
    mssClamp: 1460,
    tcpOptions: 7,
    sndWscale: 7,
    rcvWscale: 7,
    timestamp: 1,
    window: { sndWl1: 1, sndWnd: 1, maxWindow: 1, rcvWnd: 1, rcvWup: 1 },
    recvQueue: Buffer.from([1]),
    sendQueue: Buffer.from([2]),
    options: { reuseAddr: false, noDelay: false, cork: false, keepAlive: false, keepIdle: 7200, keepIntvl: 75, keepCnt: 9, userTimeout: 0, congestion: 'cubic', sndBuf: 1, rcvBuf: 1, tos: 0, mark: 0, bufLock: 0 },
  };
  const header = { sessionId: 'warm', leaseExpiresUnixMs: 0, connectionCount: 1, pid: 1, hostname: '', createdUnixMs: 0, tuples: [{ local: addressToMsg(sample.local), remote: addressToMsg(sample.remote) }] };
  const frames: FrameMsg[] = [{ restoreOptions: { netns: '', deliverUnixPath: '', goLive: false, transparent: false, leaseMs: 0 } }, ...batchFrames(sessionFrames(header, [{ id: 'w', fd: 0, state: sample }]))];
  const methods = pkg ? (pkg['soccr.v1.SocketRepair'] as protoLoader.ServiceDefinition | undefined) : undefined;
  for (const f of frames) {
    const bytes = encodeFrame(f);
    decodeFrame(bytes);
    methods?.Restore.requestDeserialize(bytes);
    methods?.Checkpoint.responseDeserialize(bytes);
  }
  for (const m of Object.values(methods ?? {})) {
    // Every request and response type, from an empty message.
    m.requestSerialize(m.requestDeserialize(Buffer.alloc(0)));
    m.responseSerialize(m.responseDeserialize(Buffer.alloc(0)));
  }
}

// ---- producing frames ---------------------------------------------------------------------------

/** One connection as the checkpoint stream carries it. */
export interface QueueBytes {
  recvQueue: Buffer;
  sendQueue: Buffer;
}

/** A connection's state, and its queue bytes where the state does not carry them. */
export interface LoadedConnection {
  /** the saved state; its queues may be empty if `queues` supplies them */
  state: SavedConnection;
  /** queue bytes read on demand, just before the connection is streamed */
  queues?: () => QueueBytes;
}

/** A connection whose state is saved already. */
export type SavedStreamedConnection = { id: string; fd: number } & LoadedConnection;

export type StreamedConnection =
  | SavedStreamedConnection
  | ({ id: string; fd: number } & {
      /** saved only when its turn in the stream comes (a frozen socket's state does not change meanwhile) */
      load: () => LoadedConnection;
    });

function sha256(b: Buffer): Buffer {
  return createHash('sha256').update(b).digest();
}

/**
 * The frames of a session, one connection at a time: each connection's queues are read only when its
 * turn comes and released after, so memory holds one connection's queues, not the session's.
 */
export function* sessionFrames(header: SessionHeaderMsg, conns: readonly StreamedConnection[]): Generator<FrameMsg> {
  yield { session: header };
  for (let index = 0; index < conns.length; index++) {
    const c = conns[index];
    const { state, queues } = 'load' in c ? c.load() : c;
    const q = queues ? queues() : { recvQueue: state.recvQueue, sendQueue: state.sendQueue };
    const headerState = stateToObject({ ...state, recvQueue: Buffer.alloc(0), sendQueue: Buffer.alloc(0) });
    yield { connection: { index, id: c.id, fd: c.fd, state: headerState } };
    for (const [queue, bytes] of [
      [QueueKind.RECV, q.recvQueue],
      [QueueKind.SEND, q.sendQueue],
    ] as const) {
      for (let off = 0; off < bytes.length; off += MAX_CHUNK) {
        yield { chunk: { index, queue, offset: off, data: bytes.subarray(off, Math.min(off + MAX_CHUNK, bytes.length)) } };
      }
    }
    yield { end: { index, recvSha256: sha256(q.recvQueue), sendSha256: sha256(q.sendQueue) } };
  }
  yield { streamEnd: { connectionCount: conns.length } };
}

// ---- consuming frames ---------------------------------------------------------------------------

export interface AssemblyLimits {
  /** bytes of one queue */
  maxQueueBytes: number;
  /** connections in one stream */
  maxConnections: number;
  /** queue bytes of the whole stream */
  maxTotalBytes: number;
}

export const DEFAULT_LIMITS: AssemblyLimits = {
  maxQueueBytes: 256 * 1024 * 1024,
  maxConnections: 65536,
  maxTotalBytes: 4 * 1024 * 1024 * 1024,
};

export interface AssembledConnection {
  index: number;
  id: string;
  fd: number;
  /** complete, with both queues, checksums verified */
  state: SavedConnection;
}

/** A connection as an assembler that does not keep queues hands it over: its header and its checksums. */
export interface CheckedConnection {
  index: number;
  id: string;
  fd: number;
  /** the state the connection header carries: its queues are empty (inqLen and outqLen give their lengths) */
  state: SavedConnection;
  /** SHA-256 of each queue as the end frame states it */
  recvSha256: Buffer;
  sendSha256: Buffer;
  /** SHA-256 of the queue bytes that actually came */
  actualRecvSha256: Buffer;
  actualSendSha256: Buffer;
  /** both checksums match */
  verified: boolean;
}

export interface AssemblerOptions<KeepQueues extends boolean> {
  /**
   * true (the default): each connection's queues are collected and handed over with it, and a checksum
   * mismatch throws DATA_LOSS. false: queue chunks are hashed as they pass and dropped, so memory holds
   * no queue; each connection comes back as a CheckedConnection, a mismatch included (its `verified` is
   * false), and the stream can be followed past it.
   */
  keepQueues: KeepQueues;
}

const bad = (msg: string): never => {
  throw new SoccrError('INVALID_STATE', `invalid checkpoint stream: ${msg}`);
};

/** A stream over one of the limits (AssemblyLimits, MAX_CHUNK): RESOURCE_EXHAUSTED, not a malformed stream. */
const overLimit = (msg: string): never => {
  throw new SoccrError('LIMIT', `checkpoint stream over a limit: ${msg}`);
};

/** Longest session id, hostname or connection id a stream may carry (real ones are tens of bytes). */
export const MAX_NAME_LENGTH = 1024;

/** What is wrong with an address of a session header's tuple, or undefined. */
function tupleAddressProblem(a: AddressMsg | null | undefined): string | undefined {
  if (!a) return 'address missing';
  if (a.family !== 1 && a.family !== 2) return `address family ${a.family}`;
  if (typeof a.ip !== 'string' || !(a.family === 1 ? isIPv4(a.ip) : isIPv6(a.ip)) || a.ip.includes('%')) return `ip ${JSON.stringify(String(a.ip).slice(0, 64))} is not an ${a.family === 1 ? 'IPv4' : 'IPv6'} address`;
  if (!Number.isInteger(a.port) || a.port < 1 || a.port > 65535) return `port ${a.port} out of range`;
  return undefined;
}

function sameAddress(t: AddressMsg | null | undefined, a: SocketAddress): boolean {
  return !!t && t.family === (a.family === 'ipv4' ? 1 : 2) && t.port === a.port && t.ip.toLowerCase() === a.ip.toLowerCase();
}

/** The error of a connection whose queues do not match the checksums of its end frame. */
export function checksumMismatch(c: { index: number; id: string }): SoccrError {
  return new SoccrError('DATA_LOSS', `connection ${c.index} (${c.id}): queue checksum mismatch, the stream was corrupted`);
}

/**
 * One queue of the connection being assembled: its bytes, or only their hash. A queue that comes in one
 * chunk is kept as that chunk (a view of the message it came in); a longer one is copied into place.
 */
class QueueIn {
  at = 0;
  private bytes: Buffer | undefined;
  private readonly hash: Hash | undefined;

  constructor(
    readonly name: 'receive' | 'send',
    readonly length: number,
    private readonly keep: boolean,
  ) {
    if (!keep) this.hash = createHash('sha256');
  }

  add(data: Buffer): void {
    if (!this.keep) (this.hash as Hash).update(data);
    else if (this.at === 0 && data.length === this.length) this.bytes = data;
    else {
      this.bytes ??= Buffer.allocUnsafe(this.length);
      data.copy(this.bytes, this.at);
    }
    this.at += data.length;
  }

  /** the queue's bytes (empty when they are not kept) */
  get contents(): Buffer {
    return this.bytes ?? Buffer.alloc(0);
  }

  digest(): Buffer {
    return this.keep ? sha256(this.contents) : (this.hash as Hash).digest();
  }
}

/**
 * Checks a frame stream's order and sizes and rebuilds each connection from its header, chunks and end
 * frame. Corrupt structure throws INVALID_STATE; a checksum mismatch throws DATA_LOSS. With
 * `keepQueues: false` it checks the same without holding the queues (see AssemblerOptions).
 */
export class FrameAssembler<KeepQueues extends boolean = true> {
  header: SessionHeaderMsg | undefined;
  private current: { index: number; id: string; fd: number; state: SavedConnection; recv: QueueIn; send: QueueIn } | undefined;
  private count = 0;
  private totalBytes = 0;
  private chunkBytes = 0;
  private readonly keepQueues: boolean;
  finished = false;

  constructor(
    private readonly limits: AssemblyLimits = DEFAULT_LIMITS,
    options?: AssemblerOptions<KeepQueues>,
  ) {
    this.keepQueues = options?.keepQueues ?? true;
  }

  /** connections completed so far */
  get connections(): number {
    return this.count;
  }

  /** queue bytes that came in chunks so far */
  get queueBytes(): number {
    return this.chunkBytes;
  }

  /** the connection whose end frame is still to come: its header (queues empty), or undefined */
  get inProgress(): { index: number; id: string; fd: number; state: SavedConnection } | undefined {
    const cur = this.current;
    return cur && { index: cur.index, id: cur.id, fd: cur.fd, state: cur.state };
  }

  /** Feeds one frame; returns a connection when its end frame completes it. */
  push(f: FrameMsg): (KeepQueues extends false ? CheckedConnection : AssembledConnection) | undefined;
  push(f: FrameMsg): AssembledConnection | CheckedConnection | undefined {
    const kind = frameKind(f);
    if (this.finished) bad(`${kind || 'a frame'} after the end of the stream`);
    switch (kind) {
      case 'session': {
        if (this.header) bad('a second session header');
        const h = f.session as SessionHeaderMsg;
        if (h.connectionCount > this.limits.maxConnections) overLimit(`${h.connectionCount} connections, more than the limit of ${this.limits.maxConnections}`);
        if ((h.sessionId ?? '').length > MAX_NAME_LENGTH || (h.hostname ?? '').length > MAX_NAME_LENGTH) bad(`session id or hostname longer than ${MAX_NAME_LENGTH}`);
        // The tuples are what the network lock is given, before any connection arrives: one per
        // connection, each a real address (connection i then has to match tuple i).
        const tuples = h.tuples ?? [];
        if (tuples.length) {
          if (tuples.length !== h.connectionCount) bad(`${tuples.length} connection tuples for ${h.connectionCount} connections`);
          tuples.forEach((t, i) => {
            const why = tupleAddressProblem(t?.local) ?? tupleAddressProblem(t?.remote);
            if (why) bad(`connection tuple ${i}: ${why}`);
          });
        }
        this.header = h;
        return undefined;
      }
      case 'connection': {
        if (!this.header) bad('a connection before the session header');
        if (this.current) bad(`connection ${this.current.index} has no end frame`);
        const c = f.connection as ConnectionHeaderMsg;
        if (c.index !== this.count) bad(`connection index ${c.index}, expected ${this.count}`);
        if (this.count >= (this.header as SessionHeaderMsg).connectionCount) bad('more connections than the header announced');
        if ((c.id ?? '').length > MAX_NAME_LENGTH) bad(`connection ${c.index}: id longer than ${MAX_NAME_LENGTH}`);
        const state = stateFromObject(c.state);
        const tuple = (this.header as SessionHeaderMsg).tuples?.[c.index];
        if (tuple && (!sameAddress(tuple.local, state.local) || !sameAddress(tuple.remote, state.remote))) bad(`connection ${c.index}: its addresses differ from its tuple in the session header`);
        for (const [name, len] of [
          ['receive', state.inqLen],
          ['send', state.outqLen],
        ] as const) {
          if (len > this.limits.maxQueueBytes) overLimit(`${name} queue of ${len} bytes, more than the limit of ${this.limits.maxQueueBytes}`);
        }
        this.totalBytes += state.inqLen + state.outqLen;
        if (this.totalBytes > this.limits.maxTotalBytes) overLimit(`more than the limit of ${this.limits.maxTotalBytes} queue bytes in one stream`);
        const recv = new QueueIn('receive', state.inqLen, this.keepQueues);
        const send = new QueueIn('send', state.outqLen, this.keepQueues);
        this.current = { index: c.index, id: c.id, fd: c.fd, state, recv, send };
        return undefined;
      }
      case 'chunk': {
        const ch = f.chunk as QueueChunkMsg;
        const cur = this.current ?? bad('a queue chunk outside a connection');
        if (ch.index !== cur.index) bad(`chunk for connection ${ch.index} inside connection ${cur.index}`);
        if (ch.data.length > MAX_CHUNK) overLimit(`chunk of ${ch.data.length} bytes, more than the limit of ${MAX_CHUNK}`);
        const q = ch.queue === QueueKind.RECV ? cur.recv : ch.queue === QueueKind.SEND ? cur.send : bad(`chunk of unknown queue ${ch.queue}`);
        if (ch.offset !== q.at) bad(`${q.name} queue chunk at ${ch.offset}, expected ${q.at}`);
        if (q.at + ch.data.length > q.length) bad(`${q.name} queue chunks longer than its length`);
        q.add(ch.data);
        this.chunkBytes += ch.data.length;
        return undefined;
      }
      case 'end': {
        const e = f.end as ConnectionEndMsg;
        const cur = this.current ?? bad('an end frame outside a connection');
        if (e.index !== cur.index) bad(`end of connection ${e.index} inside connection ${cur.index}`);
        if (cur.recv.at !== cur.recv.length || cur.send.at !== cur.send.length) bad(`connection ${cur.index} ended with queue bytes missing`);
        const actualRecvSha256 = cur.recv.digest();
        const actualSendSha256 = cur.send.digest();
        const verified = actualRecvSha256.equals(e.recvSha256) && actualSendSha256.equals(e.sendSha256);
        if (!verified && this.keepQueues) throw checksumMismatch(cur);
        this.current = undefined;
        this.count++;
        if (!this.keepQueues) {
          return { index: cur.index, id: cur.id, fd: cur.fd, state: cur.state, recvSha256: e.recvSha256, sendSha256: e.sendSha256, actualRecvSha256, actualSendSha256, verified };
        }
        return { index: cur.index, id: cur.id, fd: cur.fd, state: { ...cur.state, recvQueue: cur.recv.contents, sendQueue: cur.send.contents } };
      }
      case 'streamEnd': {
        const se = f.streamEnd as StreamEndMsg;
        if (this.current) bad(`stream ended inside connection ${this.current.index}`);
        if (!this.header) bad('stream ended before the session header');
        if (se.connectionCount !== this.count || this.count !== (this.header as SessionHeaderMsg).connectionCount) {
          bad(`stream carried ${this.count} connections; header said ${(this.header as SessionHeaderMsg).connectionCount}, end said ${se.connectionCount}`);
        }
        this.finished = true;
        return undefined;
      }
      case 'restoreOptions':
        return bad('restore options in the middle of a stream');
      case UNDECODABLE:
        return bad(`a frame that does not decode (${f.undecodable ?? ''})`);
      default:
        return bad('an empty frame');
    }
  }
}

// ---- checkpoint files ---------------------------------------------------------------------------

/** "SOCCR", a format byte, then a 16-bit big-endian version; length-delimited frames follow. */
export const FILE_MAGIC = Buffer.from('SOCCR\x01', 'latin1');
export const FILE_HEADER_LEN = FILE_MAGIC.length + 2;

export function fileHeader(): Buffer {
  const b = Buffer.alloc(FILE_HEADER_LEN);
  FILE_MAGIC.copy(b);
  b.writeUInt16BE(STREAM_FORMAT, FILE_MAGIC.length);
  return b;
}

export function checkFileHeader(b: Buffer): void {
  if (b.length < FILE_HEADER_LEN || !b.subarray(0, FILE_MAGIC.length).equals(FILE_MAGIC)) bad('not a soccrd checkpoint file (bad magic)');
  const v = b.readUInt16BE(FILE_MAGIC.length);
  if (v !== STREAM_FORMAT) bad(`checkpoint file format ${v}, this build reads ${STREAM_FORMAT}`);
}

/** One frame, length-delimited (varint length, then the message), as a checkpoint file stores it. */
export function encodeFrameDelimited(f: FrameMsg): Buffer {
  const plain: Record<string, unknown> = {};
  for (const k of ['restoreOptions', 'session', 'connection', 'chunk', 'end', 'streamEnd'] as const) if (f[k]) plain[k] = f[k];
  const err = FrameType.verify(plain);
  if (err) bad(err);
  const out = FrameType.encodeDelimited(FrameType.fromObject(plain)).finish();
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** Field tags of Frame.chunk and of QueueChunk's fields (field number << 3 | wire type). */
const CHUNK_FRAME_TAG = (4 << 3) | 2;
const CHUNK_INDEX_TAG = (1 << 3) | 0;
const CHUNK_QUEUE_TAG = (2 << 3) | 0;
const CHUNK_OFFSET_TAG = (3 << 3) | 0;
const CHUNK_DATA_TAG = (4 << 3) | 2;

/**
 * One frame length-delimited as encodeFrameDelimited writes it, in pieces to be written one after the
 * other: a queue chunk's bytes are the last piece as they are, not copied into an encoded message.
 * For frames the daemon built itself (sessionFrames).
 */
export function frameDelimitedPieces(f: FrameMsg): Buffer[] {
  const ch = f.chunk;
  if (!ch) {
    const body = encodeFrame(f);
    return [varint(body.length), body];
  }
  const inner = Buffer.concat([
    Buffer.from([CHUNK_INDEX_TAG]),
    varint(ch.index),
    Buffer.from([CHUNK_QUEUE_TAG]),
    varint(ch.queue),
    Buffer.from([CHUNK_OFFSET_TAG]),
    varint(ch.offset),
    Buffer.from([CHUNK_DATA_TAG]),
    varint(ch.data.length),
  ]);
  const chunkLen = inner.length + ch.data.length;
  const outer = Buffer.concat([Buffer.from([CHUNK_FRAME_TAG]), varint(chunkLen)]);
  return [varint(outer.length + chunkLen), outer, inner, ch.data];
}

/**
 * Splits a buffer of length-delimited frames. Returns the frames found and how many bytes they used, so
 * a reader can keep the rest for the next read.
 */
export function decodeFramesDelimited(b: Buffer, maxFrameBytes = MAX_CHUNK + 64 * 1024): { frames: FrameMsg[]; used: number } {
  const frames: FrameMsg[] = [];
  let off = 0;
  while (off < b.length) {
    let len = 0;
    let shift = 0;
    let p = off;
    for (;;) {
      if (p >= b.length) return { frames, used: off };
      const byte = b[p++];
      len += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if (!(byte & 0x80)) break;
      if (shift > 35) bad('frame length is not a varint');
    }
    if (len > maxFrameBytes) bad(`frame of ${len} bytes, more than ${maxFrameBytes}`);
    if (p + len > b.length) return { frames, used: off };
    let msg: FrameMsg;
    try {
      msg = FrameType.toObject(FrameType.decode(b.subarray(p, p + len)), LOAD_OPTIONS) as FrameMsg;
    } catch (e) {
      return bad(`corrupt frame at byte ${off}: ${e instanceof Error ? e.message : String(e)}`);
    }
    frames.push(msg);
    off = p + len;
  }
  return { frames, used: off };
}

// ---- conversions used on both sides ----------------------------------------------------------------

export function addressToMsg(a: SocketAddress): AddressMsg {
  return { family: a.family === 'ipv4' ? 1 : 2, ip: a.ip, port: a.port };
}

export function addressFromMsg(a: AddressMsg | null | undefined): SocketAddress {
  if (!a) return { family: 'ipv4', ip: '0.0.0.0', port: 0 };
  return { family: a.family === 2 ? 'ipv6' : 'ipv4', ip: a.ip, port: a.port };
}

export function formatAddressMsg(a: AddressMsg | null | undefined): string {
  if (!a) return '-';
  return a.family === 2 ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`;
}

export function tcpStateName(n: number): string {
  return TcpState[n] ?? `STATE_${n}`;
}

// ---- request and response shapes (decoded with LOAD_OPTIONS: every scalar present, absent messages null)

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
  nativeBatch: boolean;
}

export interface GetVersionResponseMsg {
  version: string;
  kernelRelease: string;
  streamFormat: number;
  features: FeaturesMsg | null;
  /** where the daemon takes direct transfers, "host:port"; empty when it does not */
  dataEndpoint: string;
}

export interface ListSocketsRequestMsg {
  pid: number;
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

export interface ListSocketsResponseMsg {
  sockets: SocketEntryMsg[];
}

export interface CheckpointRequestMsg {
  pid: number;
  fds: number[];
  all: boolean;
  options: { leaseMs: number; noNetworkLock: boolean; stopOwner: boolean } | null;
  /** send the frames to another daemon's data endpoint instead of the stream */
  dataTransfer?: DataTransferMsg | null;
}

export interface ResumeRequestMsg {
  sessionId: string;
  deliverUnixPath: string;
}

export interface SessionRequestMsg {
  sessionId: string;
}

/** The soccr.v1.SessionKind and SessionState of the daemon's session kinds and states. */
export const SESSION_KIND = { source: SessionKind.SOURCE, restore: SessionKind.RESTORE } as const;
export const SESSION_STATE = {
  FROZEN: SessionState.FROZEN,
  HELD: SessionState.HELD,
  RESUMED: SessionState.RESUMED,
  RELEASED: SessionState.RELEASED,
  ABORTED: SessionState.ABORTED,
  EXPIRED: SessionState.EXPIRED,
} as const;

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

export interface ListSessionsResponseMsg {
  sessions: SessionInfoMsg[];
}

export interface RestoreResponseMsg {
  session: SessionInfoMsg | null;
}
