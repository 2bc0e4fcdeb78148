// Consuming frames: checks a frame stream's order and sizes and rebuilds each connection.
import { createHash, type Hash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { type SocketAddress, WIRE_FAMILY } from './address';
import { SoccrError } from './errors';
import { MAX_CHUNK, frameKind, invalidStream, sha256 } from './frames';
import {
  type AddressMsg,
  type ConnectionEndMsg,
  type ConnectionHeaderMsg,
  type FrameMsg,
  QueueKind,
  type QueueChunkMsg,
  type SessionHeaderMsg,
  type StreamEndMsg,
} from './messages';
import { UNDECODABLE } from './proto';
import type { SavedConnection } from './saved-state';
import { stateFromObject } from './state-codec';

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

const bad = invalidStream;

/** A stream over one of the limits (AssemblyLimits, MAX_CHUNK): RESOURCE_EXHAUSTED, not a malformed stream. */
const overLimit = (msg: string): never => {
  throw new SoccrError('LIMIT', `checkpoint stream over a limit: ${msg}`);
};

/** Longest session id, hostname or connection id a stream may carry (real ones are tens of bytes). */
export const MAX_NAME_LENGTH = 1024;

/** What is wrong with an address of a session header's tuple, or undefined. */
function tupleAddressProblem(a: AddressMsg | null | undefined): string | undefined {
  if (!a) return 'address missing';
  if (a.family !== WIRE_FAMILY.ipv4 && a.family !== WIRE_FAMILY.ipv6) return `address family ${a.family}`;
  const ip: unknown = a.ip; // decoded input: not yet the string its type says
  if (typeof ip !== 'string' || !(a.family === WIRE_FAMILY.ipv4 ? isIPv4(ip) : isIPv6(ip)) || ip.includes('%'))
    return `ip ${JSON.stringify(String(ip).slice(0, 64))} is not an ${a.family === WIRE_FAMILY.ipv4 ? 'IPv4' : 'IPv6'} address`;
  if (!Number.isInteger(a.port) || a.port < 1 || a.port > 65535) return `port ${a.port} out of range`;
  return undefined;
}

function sameAddress(t: AddressMsg | null | undefined, a: SocketAddress): boolean {
  return !!t && t.family === WIRE_FAMILY[a.family] && t.port === a.port && t.ip.toLowerCase() === a.ip.toLowerCase();
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
        if ((h.sessionId ?? '').length > MAX_NAME_LENGTH || (h.hostname ?? '').length > MAX_NAME_LENGTH)
          bad(`session id or hostname longer than ${MAX_NAME_LENGTH}`);
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
        if (tuple && (!sameAddress(tuple.local, state.local) || !sameAddress(tuple.remote, state.remote)))
          bad(`connection ${c.index}: its addresses differ from its tuple in the session header`);
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
          return {
            index: cur.index,
            id: cur.id,
            fd: cur.fd,
            state: cur.state,
            recvSha256: e.recvSha256,
            sendSha256: e.sendSha256,
            actualRecvSha256,
            actualSendSha256,
            verified,
          };
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
