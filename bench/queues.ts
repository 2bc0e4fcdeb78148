// Queue bench (`npm run bench:queues`): one connection whose send and receive queues hold several MiB
// each, its bytes/s through Checkpoint (the gRPC stream out of soccrd A) and then Restore (the gRPC
// stream into soccrd B, held), against plain grpc-js streaming the same chunk sizes over a Unix socket
// to and from a trivial server in its own process (bench/grpc-pipe.ts), measured in the same run.
//
// The connection (lab/scenario.ts connectPair): owner in host namespace 0, peer in the peer
// namespace, both with 16 MiB buffers (SO_SNDBUFFORCE/SO_RCVBUFFORCE). The peer writes while the owner
// does not read (the owner's receive queue fills), the link is blackholed, then the owner writes (its
// send queue fills: unacknowledged and unsent). The restore is checked by the daemon (each queue's
// SHA-256) and then aborted; the source resumes, the link is restored, and both streams must arrive
// exactly (verifyStreams), so the bench never times a checkpoint that lost a byte.
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { SoccrClient, SessionState } from '../client/client';
import type { FrameMsg } from '../client/client';
import { frameKind } from '../protocol/frames';
import { listTcpSockets } from '../daemon/repair/acquire';
import { TcpState } from '../protocol/saved-state';
import { DaemonProcess } from '../lab/daemon';
import { MiB, connectPair, verifyStreams } from '../lab/scenario';
import { cleanupAll, cleanupOnSignals, measured } from './cleanup';
import { failBench, howExited, machine, median, requireRoot, withTimeout } from './common';
import { PIPE_MESSAGE_LIMITS, PIPE_SERVICE } from './grpc-pipe';

const ROOT = path.resolve(__dirname, '..', '..');
export const QUEUES_RESULTS = path.join(ROOT, 'bench', 'results-queues.json');
const PIPE_JS = path.join(__dirname, 'grpc-pipe.js');

const BUFFER_BYTES = 16 * MiB;
/** What each side writes into the queue it fills (more than fits: the queue takes what it can). */
const WRITE_BYTES = 24 * MiB;
const ROUNDS = 3;

export interface QueueRound {
  recvQueue: number;
  sendQueue: number;
  chunks: number;
  queueBytes: number;
  checkpointMs: number;
  restoreMs: number;
  grpcDownMs: number;
  grpcUpMs: number;
}

export interface QueueResults {
  machine: ReturnType<typeof machine>;
  command: string;
  rounds: QueueRound[];
  queueBytes: number;
  checkpointMiBps: number;
  restoreMiBps: number;
  grpcDownMiBps: number;
  grpcUpMiBps: number;
  checkpointRatio: number;
  restoreRatio: number;
  elapsedSeconds: number;
}

// ---- the plain grpc-js baseline -----------------------------------------------------------------

interface Pipe {
  proc: ChildProcess;
  client: grpc.Client;
  dir: string;
}

async function startPipe(): Promise<Pipe> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'soccrd-bench-pipe-'));
  const sock = path.join(dir, 'pipe.sock');
  const proc = spawn(process.execPath, [PIPE_JS, sock], { stdio: ['pipe', 'pipe', 'inherit'] });
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      proc.stdout?.once('data', () => resolve());
      proc.once('exit', (code, signal) => reject(new Error(`grpc-pipe exited (${howExited(code, signal)}) before serving`)));
    }),
    10_000,
    'grpc-pipe ready',
  );
  const Ctor = grpc.makeGenericClientConstructor(PIPE_SERVICE, 'Pipe');
  const client = new Ctor(`unix://${sock}`, grpc.credentials.createInsecure(), PIPE_MESSAGE_LIMITS);
  return { proc, client, dir };
}

function stopPipe(p: Pipe): void {
  p.client.close();
  if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL'); // by its pid: ours
  rmSync(p.dir, { recursive: true, force: true });
}

/** Streams chunks of `sizes` from the server; returns ms until the stream ended. */
function grpcDown(p: Pipe, sizes: number[]): Promise<number> {
  const req = Buffer.alloc(4 * sizes.length);
  sizes.forEach((s, i) => req.writeUInt32LE(s, 4 * i));
  const total = sizes.reduce((a, b) => a + b, 0);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let got = 0;
    const call = p.client.makeServerStreamRequest<Buffer, Buffer>(
      '/bench.Pipe/Down',
      (b) => b,
      (b) => b,
      req,
    );
    call.on('data', (b: Buffer) => (got += b.length));
    call.on('error', reject);
    call.on('end', () => (got === total ? resolve(performance.now() - t0) : reject(new Error(`grpc Down: ${got} of ${total} bytes`))));
  });
}

/** Streams chunks of `sizes` to the server, honouring flow control; returns ms until its answer. */
function grpcUp(p: Pipe, sizes: number[]): Promise<number> {
  const payload = Buffer.alloc(1 << 20, 0xa5);
  const total = sizes.reduce((a, b) => a + b, 0);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const call = p.client.makeClientStreamRequest<Buffer, Buffer>(
      '/bench.Pipe/Up',
      (b) => b,
      (b) => b,
      (err, res) => {
        if (err) reject(err);
        else if (!res) reject(new Error('grpc Up: no reply'));
        else if (res.readDoubleLE(0) !== total) reject(new Error(`grpc Up: the server counted ${res.readDoubleLE(0)} of ${total} bytes`));
        else resolve(performance.now() - t0);
      },
    );
    let i = 0;
    const pump = (): void => {
      while (i < sizes.length) {
        const s = sizes[i++];
        if (!call.write(s <= payload.length ? payload.subarray(0, s) : Buffer.alloc(s, 0xa5))) {
          call.once('drain', pump);
          return;
        }
      }
      call.end();
    };
    pump();
  });
}

// ---- one round ------------------------------------------------------------------------------------

function round(pipe: Pipe): Promise<QueueRound> {
  return measured(async () => {
    const { topo, owner, peer } = await connectPair('ipv4', 2, { sndBuf: BUFFER_BYTES, rcvBuf: BUFFER_BYTES });
    await peer.command('setopts', { options: { sndBuf: BUFFER_BYTES, rcvBuf: BUFFER_BYTES } });
    const [a, b] = await Promise.all([
      DaemonProcess.start({ netns: topo.hosts[0], args: ['--log-level', 'info'] }),
      DaemonProcess.start({ netns: topo.hosts[1], args: ['--log-level', 'info'] }),
    ]);
    // The owner's receive queue: the peer writes, nobody reads.
    await peer.command('write', { bytes: WRITE_BYTES });
    await peer.settle(300, 10_000);
    topo.blackhole(0);
    // Its send queue: written into a dead link.
    await owner.command('write', { bytes: WRITE_BYTES });
    await owner.settle(300, 10_000);
    const sock = listTcpSockets(owner.pid).find((s) => s.fd === owner.connectedFd);
    if (!sock) throw new Error('the owner connection is gone');

    const src = new SoccrClient(a.address, { timeoutMs: 30_000 });
    const dst = new SoccrClient(b.address, { timeoutMs: 30_000 });
    try {
      // Checkpoint: the whole stream received (and decoded) by the client.
      const frames: FrameMsg[] = [];
      const t0 = performance.now();
      for await (const f of src.checkpoint(owner.pid, { all: true, leaseMs: 60_000 }) as AsyncIterable<FrameMsg>) frames.push(f);
      const checkpointMs = performance.now() - t0;
      const sourceId = frames.find((f) => frameKind(f) === 'session')?.session?.sessionId ?? '';
      const sizes = frames.filter((f) => frameKind(f) === 'chunk').map((f) => f.chunk?.data.length ?? 0);
      const queueBytes = sizes.reduce((x, y) => x + y, 0);

      // Restore: the same frames into B, held (the daemon verifies every queue's checksum first).
      const t1 = performance.now();
      const held = await dst.restore({ netns: topo.nsPath(topo.hosts[1]), goLive: false, leaseMs: 60_000 }, frames);
      const restoreMs = performance.now() - t1;
      if (held.state !== SessionState.HELD) throw new Error(`restore session ${held.sessionId} is ${held.state}, not HELD`);
      await dst.abort(held.sessionId);
      await src.resume(sourceId);

      // The connection goes on at the source: both streams must arrive exactly.
      topo.unblackhole(0);
      await owner.command('read', { on: true });
      await verifyStreams(peer, owner, { state: TcpState.ESTABLISHED, unread: true, unacked: true, unsent: true, ownerClosed: false, peerClosed: false });

      const grpcDownMs = await grpcDown(pipe, sizes);
      const grpcUpMs = await grpcUp(pipe, sizes);
      return { recvQueue: sock.recvQueue, sendQueue: sock.sendQueue, chunks: sizes.length, queueBytes, checkpointMs, restoreMs, grpcDownMs, grpcUpMs };
    } finally {
      src.close();
      dst.close();
    }
  });
}

const mibps = (bytes: number, ms: number): number => bytes / MiB / (ms / 1000);
const fmt = (x: number, d = 1): string => x.toFixed(d);

async function main(): Promise<void> {
  requireRoot();
  const started = Date.now();
  const host = machine();
  const pipe = await startPipe();
  const rounds: QueueRound[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      const q = await round(pipe);
      rounds.push(q);
      process.stdout.write(
        `round ${r + 1}/${ROUNDS}: queues recv ${fmt(q.recvQueue / MiB)} MiB + send ${fmt(q.sendQueue / MiB)} MiB (${q.chunks} chunks): ` +
          `Checkpoint ${fmt(mibps(q.queueBytes, q.checkpointMs))} MiB/s, Restore ${fmt(mibps(q.queueBytes, q.restoreMs))} MiB/s; ` +
          `grpc-js down ${fmt(mibps(q.queueBytes, q.grpcDownMs))} MiB/s, up ${fmt(mibps(q.queueBytes, q.grpcUpMs))} MiB/s\n`,
      );
    }
  } finally {
    stopPipe(pipe);
    await cleanupAll();
  }
  const med = (f: (q: QueueRound) => number): number => median(rounds.map(f));
  const res: QueueResults = {
    machine: host,
    command: 'node dist/bench/queues.js',
    rounds,
    queueBytes: med((q) => q.queueBytes),
    checkpointMiBps: med((q) => mibps(q.queueBytes, q.checkpointMs)),
    restoreMiBps: med((q) => mibps(q.queueBytes, q.restoreMs)),
    grpcDownMiBps: med((q) => mibps(q.queueBytes, q.grpcDownMs)),
    grpcUpMiBps: med((q) => mibps(q.queueBytes, q.grpcUpMs)),
    checkpointRatio: 0,
    restoreRatio: 0,
    elapsedSeconds: (Date.now() - started) / 1000,
  };
  res.checkpointRatio = res.checkpointMiBps / res.grpcDownMiBps;
  res.restoreRatio = res.restoreMiBps / res.grpcUpMiBps;
  writeFileSync(QUEUES_RESULTS, `${JSON.stringify(res, null, 2)}\n`);
  process.stdout.write(
    [
      '',
      `queues: one connection, ${fmt(res.queueBytes / MiB)} MiB of queues (median of ${ROUNDS} rounds)`,
      `${'stream'.padEnd(34)}${'soccrd MiB/s'.padStart(14)}${'grpc-js MiB/s'.padStart(15)}${'ratio'.padStart(8)}`,
      `${'Checkpoint (out of daemon A)'.padEnd(34)}${fmt(res.checkpointMiBps).padStart(14)}${fmt(res.grpcDownMiBps).padStart(15)}${`${fmt(res.checkpointRatio, 2)}x`.padStart(8)}`,
      `${'Restore (into daemon B, held)'.padEnd(34)}${fmt(res.restoreMiBps).padStart(14)}${fmt(res.grpcUpMiBps).padStart(15)}${`${fmt(res.restoreRatio, 2)}x`.padStart(8)}`,
      `results written to ${path.relative(process.cwd(), QUEUES_RESULTS)}`,
      '',
    ].join('\n'),
  );
}

cleanupOnSignals();

if (require.main === module)
  main().then(
    () => process.exit(0),
    (err: unknown) => cleanupAll().finally(() => failBench('bench:queues', err)),
  );
