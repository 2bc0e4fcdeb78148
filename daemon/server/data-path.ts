// The direct data path between two daemons: the source writes a checkpoint stream's frames straight to
// the destination over one TCP connection (sealed records, protocol/sealed-records.ts) instead of through
// the orchestrator and two gRPC hops. The orchestrator gives both daemons the transfer id and key over
// their authenticated gRPC channels; the destination takes the first connection that proves the key.
//
//   source (Checkpoint)                          destination (Restore, --data-listen)
//   DataSender.connect(endpoint, id, key) ─TCP──▶ DataListener: preamble, hello opened with the key of
//   push(frame) ... finish()          ─records──▶ receive(id, key): the frames, record by record
import { once } from 'node:events';
import { Server, Socket, connect, createServer, isIPv6 } from 'node:net';
import { SoccrError, errorMessage } from '../../protocol/errors';
import type { Logger } from '../log';
import { DataTransferMsg, FrameMsg } from '../../protocol/messages';
import { decodeFramesDelimited, frameDelimitedPieces } from '../../protocol/checkpoint-file';
import { unpackFrames } from '../../protocol/frames';
import {
  LENGTH_BYTES,
  MAX_RECORD,
  PREAMBLE_BYTES,
  RecordOpener,
  RecordSealer,
  TAG_BYTES,
  checkTransferKeys,
  readPreamble,
  recordLength,
} from '../../protocol/sealed-records';

/** How long connecting, waiting for the data connection and waiting for each record take at most, by default. */
export const DEFAULT_DATA_TIMEOUT_MS = 10_000;

/** A call's data transfer (DataTransfer) as the data path takes it: its id, key and timeout (checkTransferKeys checks their sizes). */
export function dataTransferParams(t: DataTransferMsg): { transferId: Buffer; key: Buffer; timeoutMs: number } {
  return { transferId: Buffer.from(t.transferId ?? []), key: Buffer.from(t.key ?? []), timeoutMs: t.timeoutMs || DEFAULT_DATA_TIMEOUT_MS };
}

/** Small frames are packed into records of about this size; a large queue chunk makes a record of its own. */
const RECORD_TARGET = 256 * 1024;
/** Connections that have not proven a key yet, at most (more are closed at once). */
const MAX_UNPROVEN = 64;
/** How long a connection may take to send its preamble and hello, and wait for its transfer to be announced. */
const HELLO_TIMEOUT_MS = 5_000;

const dataPathError = (msg: string, cause?: unknown): SoccrError => new SoccrError('DATA_PATH', msg, cause);

/** "host:port" or "[v6]:port" for an address and port. */
export function formatEndpoint(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

export function parseEndpoint(endpoint: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(endpoint) ?? /^([^:[\]]+):(\d+)$/.exec(endpoint);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new SoccrError('BAD_REQUEST', `data endpoint ${JSON.stringify(endpoint)}: give host:port`);
  return { host: m[1], port };
}

/** Bytes a reader holds before it stops reading from its socket (the kernel's buffers hold the rest). */
const READ_AHEAD_BYTES = 4 * 1024 * 1024;

/** What a transfer's reader may hold at most at once: its read-ahead, one more read, and the record being opened (charged to the daemon's budget). */
export const DATA_PATH_BUFFER_BYTES = READ_AHEAD_BYTES + 64 * 1024 + 2 * MAX_RECORD;

/** Reads exact byte counts from a socket, buffering at most about READ_AHEAD_BYTES ahead. */
class ExactReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private closed: string | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly sock: Socket) {
    sock.on('data', (b: Buffer) => {
      this.chunks.push(b);
      this.buffered += b.length;
      if (this.buffered >= READ_AHEAD_BYTES) sock.pause();
      this.wake?.();
    });
    const end = (why: string) => (): void => {
      this.closed ??= why;
      this.wake?.();
    };
    sock.on('end', end('ended'));
    sock.on('close', end('closed'));
    sock.on('error', (err) => end(`failed (${err.message})`)());
    sock.resume();
  }

  /** Exactly `n` bytes; throws DATA_PATH when the connection ends first or nothing completes them within `timeoutMs`. */
  async read(n: number, timeoutMs: number, what: string): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buffered < n) {
      if (this.closed) throw dataPathError(`the data connection ${this.closed} before ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw dataPathError(`no ${what} on the data connection within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => this.wake?.(), left);
        this.wake = (): void => {
          clearTimeout(timer);
          this.wake = undefined;
          resolve();
        };
      });
    }
    let out: Buffer;
    if (this.chunks[0].length >= n) {
      out = this.chunks[0].subarray(0, n);
      this.chunks[0] = this.chunks[0].subarray(n);
      if (this.chunks[0].length === 0) this.chunks.shift();
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0];
        const take = Math.min(c.length, n - at);
        c.copy(out, at, 0, take);
        at += take;
        if (take === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(take);
      }
    }
    this.buffered -= n;
    if (this.buffered < READ_AHEAD_BYTES && this.sock.isPaused()) this.sock.resume();
    return out;
  }
}

// ---- the source side ------------------------------------------------------------------------------

/** Writes a checkpoint stream's frames to a destination's data endpoint, sealed. */
export class DataSender {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private failure: SoccrError | undefined;

  private constructor(
    private readonly sock: Socket,
    private readonly sealer: RecordSealer,
  ) {
    sock.on('error', (err) => (this.failure ??= dataPathError(`data connection: ${err.message}`, err)));
    sock.on('close', () => (this.failure ??= dataPathError('the destination closed the data connection')));
    sock.on('data', () => undefined); // the destination sends nothing; a close shows as 'close'
  }

  /** Connects to `endpoint` and sends the preamble and hello. Fails with DATA_PATH (UNAVAILABLE). */
  static async connect(endpoint: string, transferId: Buffer, key: Buffer, timeoutMs = DEFAULT_DATA_TIMEOUT_MS): Promise<DataSender> {
    checkTransferKeys(transferId, key);
    const { host, port } = parseEndpoint(endpoint);
    const sock = connect({ host, port, noDelay: true });
    const timer = setTimeout(() => sock.destroy(dataPathError(`no connection to the data endpoint ${endpoint} within ${timeoutMs} ms`)), timeoutMs);
    try {
      await once(sock, 'connect');
    } catch (err) {
      sock.destroy();
      throw err instanceof SoccrError ? err : dataPathError(`cannot connect to the data endpoint ${endpoint}: ${errorMessage(err)}`, err);
    } finally {
      clearTimeout(timer);
    }
    const sender = new DataSender(sock, new RecordSealer(key, transferId));
    sender.writeAll(sender.sealer.opening());
    return sender;
  }

  /** The connection's failure, once it has one (a method: TypeScript keeps a field's narrowing across awaits). */
  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  /** Queues a frame; returns false when the caller should wait for drained() before the next one. */
  push(f: FrameMsg): boolean {
    this.throwIfFailed();
    const pieces = frameDelimitedPieces(f);
    let size = 0;
    for (const p of pieces) size += p.length;
    if (this.pendingBytes + size > MAX_RECORD) this.flush();
    for (const p of pieces) this.pending.push(p);
    this.pendingBytes += size;
    if (this.pendingBytes >= RECORD_TARGET) this.flush();
    return !this.sock.writableNeedDrain;
  }

  /** Resolves when the socket takes more; rejects when the connection failed. */
  async drained(): Promise<void> {
    this.throwIfFailed();
    if (!this.sock.writableNeedDrain) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.sock.off('drain', done);
        this.sock.off('close', done);
        resolve();
      };
      this.sock.on('drain', done);
      this.sock.on('close', done);
    });
    this.throwIfFailed();
  }

  /** Seals what is queued, ends the connection and waits until the kernel has every byte. */
  async finish(): Promise<void> {
    this.flush();
    this.throwIfFailed();
    const finished = once(this.sock, 'finish');
    const closed = once(this.sock, 'close');
    this.sock.end();
    await Promise.race([finished, closed]).catch(() => undefined);
    if (!this.sock.writableFinished) throw this.failure ?? dataPathError('the data connection closed before the stream was written');
  }

  destroy(): void {
    this.sock.destroy();
  }

  /** Seals what is queued as a record and writes it. */
  flush(): void {
    if (!this.pending.length) return;
    this.writeAll(this.sealer.seal(this.pending));
    this.pending = [];
    this.pendingBytes = 0;
  }

  private writeAll(bufs: Buffer[]): void {
    this.sock.cork();
    for (const b of bufs) this.sock.write(b);
    this.sock.uncork();
  }
}

// ---- the destination side ---------------------------------------------------------------------------

interface Awaited {
  key: Buffer;
  /** called with the connection that proved the key */
  claim: (sock: Socket, reader: ExactReader, opener: RecordOpener) => void;
}

/** Listens for data connections; each Restore with a DataTransfer takes the one that proves its key. */
export class DataListener {
  private readonly awaited = new Map<string, Awaited>();
  /** id -> wakers of connections that came before their transfer was announced */
  private readonly early = new Map<string, Set<() => void>>();
  private unproven = 0;

  private constructor(
    private readonly server: Server,
    readonly endpoint: string,
    private readonly log: Logger,
  ) {}

  /** Listens on host:port (port 0: any free one). The endpoint advertised is the bound address. */
  static async listen(host: string, port: number, log: Logger): Promise<DataListener> {
    const server = createServer({ noDelay: true });
    server.listen({ host, port });
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err as Error))]);
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('data listener has no address');
    const listener = new DataListener(server, formatEndpoint(addr.address, addr.port), log);
    server.on('connection', (sock: Socket) => void listener.admit(sock));
    server.on('error', (err) => log.error('data listener failed', { error: err }));
    return listener;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /**
   * The frames of transfer `transferId`, from the first connection that proves `key`, as they come.
   * Throws DATA_PATH when none comes within timeoutMs, when it closes before the stream end or stalls
   * for timeoutMs, and DATA_LOSS for a record that does not open. `signal` abandons the transfer.
   */
  async *receive(transferId: Buffer, key: Buffer, timeoutMs: number, signal?: AbortSignal): AsyncGenerator<FrameMsg> {
    checkTransferKeys(transferId, key);
    const id = transferId.toString('hex');
    if (this.awaited.has(id)) throw new SoccrError('BAD_REQUEST', 'a data transfer with this id is already awaited');
    let conn: { sock: Socket; reader: ExactReader; opener: RecordOpener } | undefined;
    let wake: () => void = () => undefined;
    this.awaited.set(id, {
      key,
      claim: (sock, reader, opener) => {
        conn = { sock, reader, opener };
        wake();
      },
    });
    for (const w of this.early.get(id) ?? []) w();
    const onAbort = (): void => {
      wake();
      conn?.sock.destroy();
    };
    signal?.addEventListener('abort', onAbort);
    try {
      if (!conn) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, timeoutMs);
          wake = (): void => {
            clearTimeout(timer);
            resolve();
          };
          if (signal?.aborted) wake();
        });
      }
      this.awaited.delete(id);
      if (signal?.aborted) throw dataPathError('the transfer was abandoned');
      if (!conn) throw dataPathError(`no data connection proved the transfer key within ${timeoutMs} ms`);
      const { reader, opener } = conn;
      for (;;) {
        if (signal?.aborted) throw dataPathError('the transfer was abandoned');
        const head = await reader.read(LENGTH_BYTES, timeoutMs, 'the next record');
        const sealed = await reader.read(recordLength(head) + TAG_BYTES, timeoutMs, 'a whole record');
        let plain: Buffer;
        try {
          plain = opener.open(head, sealed);
        } catch (err) {
          throw new SoccrError('DATA_LOSS', 'a data record does not open under the transfer key (corrupted or forged)', err);
        }
        const { frames, used } = decodeFramesDelimited(plain, MAX_RECORD);
        if (used !== plain.length) throw new SoccrError('INVALID_STATE', 'invalid checkpoint stream: a data record ends inside a frame');
        let ended = false;
        for (const f of frames) {
          for (const x of unpackFrames(f)) {
            if (x.streamEnd) ended = true;
            yield x;
          }
        }
        if (ended) return;
      }
    } finally {
      this.awaited.delete(id);
      signal?.removeEventListener('abort', onAbort);
      conn?.sock.destroy();
    }
  }

  /** A new connection: its preamble and hello, then the transfer it proves the key of, or closed. */
  private async admit(sock: Socket): Promise<void> {
    const peer = formatEndpoint(sock.remoteAddress ?? '?', sock.remotePort ?? 0);
    if (this.unproven >= MAX_UNPROVEN) {
      sock.destroy();
      this.log.warn('data connection refused: too many waiting', { peer });
      return;
    }
    this.unproven++;
    sock.on('error', () => undefined);
    const reader = new ExactReader(sock);
    let claimed = false;
    try {
      const deadline = Date.now() + HELLO_TIMEOUT_MS;
      const pre = await reader.read(PREAMBLE_BYTES, HELLO_TIMEOUT_MS, 'the preamble');
      const transferId = readPreamble(pre);
      const head = await reader.read(LENGTH_BYTES, Math.max(1, deadline - Date.now()), 'the hello');
      const sealed = await reader.read(recordLength(head) + TAG_BYTES, Math.max(1, deadline - Date.now()), 'the hello');
      const id = transferId.toString('hex');
      // The source may connect before the Restore that awaits it has announced its transfer.
      let awaited = this.awaited.get(id);
      if (!awaited) {
        const early = this.early.get(id) ?? new Set<() => void>();
        this.early.set(id, early);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, Math.max(1, deadline - Date.now()));
          function done(): void {
            clearTimeout(timer);
            early.delete(done);
            resolve();
          }
          early.add(done);
        });
        if (!early.size) this.early.delete(id);
        awaited = this.awaited.get(id);
        if (!awaited) throw dataPathError('no transfer with this id is awaited');
      }
      const opener = new RecordOpener(awaited.key, transferId);
      if (!opener.openHello(pre, head, sealed)) throw dataPathError('the hello does not open under the transfer key');
      this.awaited.delete(id); // the first connection that proves the key takes the transfer
      claimed = true;
      this.log.info('data connection accepted', { peer, transfer: id });
      awaited.claim(sock, reader, opener);
    } catch (err) {
      this.log.warn('data connection refused', { peer, error: err });
    } finally {
      this.unproven--;
      if (!claimed) sock.destroy();
    }
  }
}
