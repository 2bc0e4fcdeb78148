// Engine benchmark (`npm run bench:engine`): per-connection checkpoint and restore time for 1, 100 and 1000
// loopback connections with small queues, each as a ratio to bench/baseline.c, a C program that makes
// the same kernel calls with no FFI layer (built with gcc and run in this same invocation).
//
// soccrd side: an owner process (bench/owner.ts) accepts N connections from peers opened here with
// node:net; both sides write 100 bytes that the other never reads. Checkpoint = ProcessHandle.open once,
// then, as the daemon does it, takeTcpSockets + pauseAll + captureAll for all N (their kernel calls in a
// few batches). The owner's sockets then vanish silently (our duplicates closed, owner SIGKILLed) and
// restore = restore per saved state (one batch each), then resumeAll, in this network namespace. A few
// restored connections are checked both ways. N=1 is the median of 200 connections, each checkpointed
// with its own ProcessHandle and restored alone. The kernel calls run batched through
// build/libsoccr_batch.so, or one FFI call each with SOCCRD_NATIVE_BATCH=0 (the daemon's fallback).
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as N from '../daemon/kernel/native';
import * as E from '../daemon/repair/engine';
import { ProcessHandle, listTcpSockets } from '../daemon/repair/acquire';
import { NetnsHandle } from '../daemon/kernel/netns';
import { diagnose } from '../daemon/kernel/sockdiag';
import { SavedConnection, TcpState } from '../protocol/saved-state';
import {
  BenchSetupError,
  failBench,
  howExited,
  fdLimitError as commonFdLimitError,
  median,
  reexecWithFdLimit as reexecCommon,
  requireRoot,
  sleep,
  softFdLimit,
  withTimeout,
} from './common';

const ROOT = path.resolve(__dirname, '..', '..');
const BASELINE_SRC = path.join(ROOT, 'bench', 'baseline.c');
const BASELINE_BIN = path.join(ROOT, 'bench', 'build', 'baseline');
const RESULTS = path.join(ROOT, 'bench', 'results-engine.json');
const OWNER_JS = path.join(__dirname, 'owner.js');

const QUEUE_BYTES = 100;
const SINGLE_REPS = 200;
const BATCH_SIZES = [100, 1000];
const BATCH_ROUNDS = 5;
const LOOP_CALLS = 10_000;
const LOOP_ROUNDS = 5;
const PEER_BATCH = 200;
const FD_HEADROOM = 4 * Math.max(SINGLE_REPS, ...BATCH_SIZES) + 512;
const REEXEC_ENV = 'SOCCRD_BENCH_FD_RAISED';
const nowNs = (): bigint => process.hrtime.bigint();
const usSince = (t0: bigint): number => Number(nowNs() - t0) / 1000;
const fdLimitError = (): BenchSetupError => commonFdLimitError(FD_HEADROOM);
const reexecWithFdLimit = (): number | undefined => reexecCommon(__filename, FD_HEADROOM, REEXEC_ENV);
const EAGAIN = os.constants.errno.EAGAIN;

// ---- baseline ------------------------------------------------------------------------------------

function buildBaseline(): void {
  mkdirSync(path.dirname(BASELINE_BIN), { recursive: true });
  const r = spawnSync('gcc', ['-O2', '-o', BASELINE_BIN, BASELINE_SRC], { encoding: 'utf8', timeout: 60_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new BenchSetupError('gcc not found: the baseline is a C program; install the Debian package "gcc" (apt-get install gcc)');
  }
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`gcc failed building ${BASELINE_SRC}:\n${r.stderr}`);
}

interface BaselineRun {
  n: number;
  reps: number;
  checkpoint_us_per_conn: number;
  restore_us_per_conn: number;
  checkpoint_syscalls_per_conn: number;
  restore_syscalls_per_conn: number;
  expected_queues: number;
  verified: number;
  checks: number;
}

function runBaselineJson(args: string[]): Record<string, unknown> {
  const r = spawnSync(BASELINE_BIN, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0) throw new Error(`baseline ${args.join(' ')} failed (${howExited(r.status, r.signal)}): ${r.stderr.trim()} ${line}`);
  const parsed: unknown = JSON.parse(line);
  if (typeof parsed !== 'object' || parsed === null) throw new Error(`baseline printed ${line}`);
  return parsed as Record<string, unknown>;
}

function num(o: Record<string, unknown>, key: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`baseline output lacks ${key}`);
  return v;
}

function runBaseline(mode: 'single' | 'batch', n: number): BaselineRun {
  const o = runBaselineJson([mode, String(n)]);
  const keys = [
    'n',
    'reps',
    'checkpoint_us_per_conn',
    'restore_us_per_conn',
    'checkpoint_syscalls_per_conn',
    'restore_syscalls_per_conn',
    'expected_queues',
    'verified',
    'checks',
  ] as const;
  const out = {} as Record<(typeof keys)[number], number>;
  for (const k of keys) out[k] = num(o, k);
  return out;
}

// ---- soccrd side ---------------------------------------------------------------------------------

interface Owner {
  child: ChildProcess;
  pid: number;
  port: number;
  exited: Promise<void>;
  alive: boolean;
}

async function startOwner(): Promise<Owner> {
  const child = spawn(process.execPath, [OWNER_JS, String(QUEUE_BYTES)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start the owner process');
  const owner: Owner = { child, pid, port: 0, alive: true, exited: Promise.resolve() };
  owner.exited = new Promise((resolve) => {
    child.once('exit', () => {
      owner.alive = false;
      resolve();
    });
  });
  try {
    owner.port = await withTimeout(
      new Promise<number>((resolve, reject) => {
        let text = '';
        child.stdout?.on('data', (d: Buffer) => {
          text += d.toString('utf8');
          const nl = text.indexOf('\n');
          if (nl >= 0) resolve((JSON.parse(text.slice(0, nl)) as { port: number }).port);
        });
        child.once('exit', (code, signal) => reject(new Error(`owner exited (${howExited(code, signal)}) before listening`)));
      }),
      10_000,
      'owner listening',
    );
  } catch (err) {
    await stopOwner(owner);
    throw err;
  }
  return owner;
}

async function stopOwner(owner: Owner): Promise<void> {
  if (!owner.alive) return;
  owner.child.kill('SIGKILL'); // by its pid: the process this bench spawned
  await withTimeout(owner.exited, 5_000, `owner ${owner.pid} exit`);
}

/** Opens n peers to the owner, none of which ever reads until resumed; each writes QUEUE_BYTES bytes. */
async function openPeers(port: number, n: number, peers: net.Socket[]): Promise<void> {
  const payload = Buffer.alloc(QUEUE_BYTES, 0x70); // 'p'
  for (let start = 0; start < n; start += PEER_BATCH) {
    const batch: Array<Promise<void>> = [];
    for (let i = start; i < Math.min(n, start + PEER_BATCH); i++) {
      const s = new net.Socket();
      s.pause(); // libuv never starts reading: the owner's bytes stay in the kernel queue
      peers.push(s);
      batch.push(
        new Promise<void>((resolve, reject) => {
          s.once('error', reject);
          s.connect(port, '127.0.0.1', () => {
            s.removeListener('error', reject);
            s.on('error', () => undefined);
            s.write(payload);
            resolve();
          });
        }),
      );
    }
    await withTimeout(Promise.all(batch), 10_000, 'peer connections');
  }
}

/** Waits until every connection holds exactly QUEUE_BYTES unread bytes at each end and nothing unacked. */
async function settledOwnerFds(owner: Owner, n: number): Promise<number[]> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const ours = listTcpSockets(owner.pid).filter((s) => s.state === TcpState.ESTABLISHED);
    const ready = ours.filter((s) => s.recvQueue === QUEUE_BYTES && s.sendQueue === 0);
    const peersReady = listTcpSockets(process.pid).filter(
      (s) => s.state === TcpState.ESTABLISHED && s.remote.port === owner.port && s.recvQueue === QUEUE_BYTES && s.sendQueue === 0,
    ).length;
    if (ours.length === n && ready.length === n && peersReady === n) return ready.map((s) => s.fd);
    await sleep(20);
  }
  throw new Error(`connections did not settle (owner pid ${owner.pid})`);
}

interface Measured {
  n: number;
  reps: number;
  checkpointUs: number;
  restoreUs: number;
  checkpointFfi: number;
  restoreFfi: number;
  /** kernel calls made through batches (not counting the few made directly) */
  checkpointKernel: number;
  restoreKernel: number;
  expectedQueues: number;
  verified: number;
  checks: number;
}

/** Both directions on a restored connection, including the bytes that were in the saved queues. */
async function verify(fd: number, peer: net.Socket, i: number): Promise<boolean> {
  const toPeer = Buffer.from(`restored->peer ${i}`);
  const chunks: Buffer[] = [];
  let got = 0;
  peer.on('data', (d: Buffer) => {
    chunks.push(d);
    got += d.length;
  });
  peer.resume();
  const src = N.pinned(64);
  toPeer.copy(src.buf);
  if (N.trySend(fd, src, 0, toPeer.length, N.MSG_DONTWAIT) !== toPeer.length) return false;
  for (let t = 0; t < 600 && got < QUEUE_BYTES + toPeer.length; t++) await sleep(5);
  const atPeer = Buffer.concat(chunks);
  if (!atPeer.equals(Buffer.concat([Buffer.alloc(QUEUE_BYTES, 0x6f), toPeer]))) return false;

  const toRestored = Buffer.from(`peer->restored ${i}`);
  peer.write(toRestored);
  const want = QUEUE_BYTES + toRestored.length;
  const dst = N.pinned(want + 64);
  let have = 0;
  for (let t = 0; t < 600 && have < want; t++) {
    const r = N.tryRecv(fd, dst, have, dst.buf.length - have, N.MSG_DONTWAIT);
    if (r > 0) have += r;
    else if (r === -EAGAIN) await sleep(5);
    else return false;
  }
  return dst.buf.subarray(0, have).equals(Buffer.concat([Buffer.alloc(QUEUE_BYTES, 0x70), toRestored]));
}

// Markers for the call-sequence check: a getsockopt on a descriptor that cannot exist (EBADF), made
// outside the timed sections and the FFI counts. baseline.c makes the same ones in its "trace" mode.
const MARKER_FD = 999_000;
const markerBuf = N.pinned(4);
function mark(id: number, on: boolean): void {
  if (on) N.tryGetsockoptBytes(MARKER_FD + id, N.SOL_SOCKET, N.SO.REUSEADDR, markerBuf, 4);
}

/**
 * `diag`: the daemon's way in batch mode: every socket taken and frozen first, then one socket-diagnostics
 * lookup for all of them (daemon/kernel/sockdiag.ts), then each saved with its answer (eleven calls fewer).
 */
async function measureSoccrd(mode: 'single' | 'batch', n: number, markers = false, diag = false): Promise<Measured> {
  let owner: Owner | undefined;
  const peers: net.Socket[] = [];
  const dups: number[] = [];
  const restored: number[] = [];
  try {
    owner = await startOwner();
    await openPeers(owner.port, n, peers);
    const fds = await settledOwnerFds(owner, n);
    const pid = owner.pid;

    // Checkpoint.
    const frozen: E.FrozenSocket[] = [];
    const states: SavedConnection[] = [];
    const cpTimes: number[] = [];
    // With diag, the daemon's way: it lists the owner's sockets (procfs) before it freezes anything
    // (neither timed nor counted here), freezes them all, then looks them all up at once.
    const listed = diag ? new Map(listTcpSockets(pid).map((e) => [e.fd, e])) : undefined;
    const ns = diag ? NetnsHandle.open(`/proc/${pid}/ns/net`) : undefined;
    mark(1, markers);
    const c0 = N.ffiCalls();
    const k0 = N.batchedKernelCalls();
    if (mode === 'single') {
      for (const fd of fds) {
        const t0 = nowNs();
        const h = ProcessHandle.open(pid);
        try {
          const dup = h.takeTcpSockets([fd])[0];
          dups.push(dup);
          const fz = E.pause(dup);
          frozen.push(fz);
          states.push(E.save(fz));
        } finally {
          h.close();
        }
        cpTimes.push(usSince(t0));
      }
    } else {
      const t0 = nowNs();
      const h = ProcessHandle.open(pid);
      try {
        dups.push(...h.takeTcpSockets(fds));
        frozen.push(...E.pauseAll(dups));
        const answers = listed
          ? diagnose(
              ns,
              fds.map((fd) => listed.get(fd)),
            )
          : [];
        states.push(...E.captureAll(frozen, Infinity, answers).map((c) => c.state));
      } finally {
        h.close();
        ns?.close();
      }
      cpTimes.push(usSince(t0) / n);
    }
    const checkpointFfi = (N.ffiCalls() - c0) / n;
    const checkpointKernel = (N.batchedKernelCalls() - k0) / n;
    mark(2, markers);
    const expectedQueues = states.filter((s) => s.inqLen === QUEUE_BYTES && s.outqLen === 0).length;

    // The owner's sockets vanish silently: our duplicates closed, then the owner killed.
    for (const fz of frozen) E.silentClose(fz);
    dups.length = 0;
    await stopOwner(owner);

    // Restore.
    const rsTimes: number[] = [];
    mark(3, markers);
    const c1 = N.ffiCalls();
    const k1 = N.batchedKernelCalls();
    if (mode === 'single') {
      for (const s of states) {
        const t0 = nowNs();
        const r = E.restore(s);
        restored.push(r.fd);
        E.resumeRestored(r);
        rsTimes.push(usSince(t0));
      }
    } else {
      const t0 = nowNs();
      const rebuilt = states.map((s) => E.restore(s));
      restored.push(...rebuilt.map((r) => r.fd));
      const failed = E.resumeAll(rebuilt).find((err) => err !== undefined);
      if (failed) throw failed;
      rsTimes.push(usSince(t0) / n);
    }
    const restoreFfi = (N.ffiCalls() - c1) / n;
    const restoreKernel = (N.batchedKernelCalls() - k1) / n;
    mark(4, markers);

    const byPort = new Map(peers.map((p) => [p.localPort ?? -1, p]));
    const picks = [...new Set([0, n >> 1, n - 1])];
    let verified = 0;
    for (const i of picks) {
      const peer = byPort.get(states[i].remote.port);
      if (peer && (await verify(restored[i], peer, i))) verified++;
    }
    return {
      n: mode === 'single' ? 1 : n,
      reps: mode === 'single' ? n : 1,
      checkpointUs: median(cpTimes),
      restoreUs: median(rsTimes),
      checkpointFfi,
      restoreFfi,
      checkpointKernel,
      restoreKernel,
      expectedQueues,
      verified,
      checks: picks.length,
    };
  } finally {
    for (const p of peers) p.destroy();
    for (const fd of restored) N.closeQuietly(fd);
    for (const fd of dups) N.closeQuietly(fd);
    if (owner) await stopOwner(owner);
  }
}

/** ns per getsockoptInt through the native layer (median of LOOP_ROUNDS loops of LOOP_CALLS). */
function ffiLoopNs(): number {
  const fd = N.socket(N.AF_INET, N.SOCK_STREAM | N.SOCK_CLOEXEC, N.IPPROTO_TCP);
  try {
    for (let i = 0; i < 2000; i++) N.getsockoptInt(fd, N.SOL_SOCKET, N.SO.REUSEADDR);
    const per: number[] = [];
    for (let r = 0; r < LOOP_ROUNDS; r++) {
      const t0 = nowNs();
      for (let i = 0; i < LOOP_CALLS; i++) N.getsockoptInt(fd, N.SOL_SOCKET, N.SO.REUSEADDR);
      per.push(Number(nowNs() - t0) / LOOP_CALLS);
    }
    return median(per);
  } finally {
    N.closeQuietly(fd);
  }
}

// ---- call-sequence check -------------------------------------------------------------------------

const TRACE_ARG = '--trace-one';
const STRACE_SET = 'trace=%network,ioctl,pidfd_open,pidfd_getfd,close';

/** A traced call reduced to what must match: the call, and for socket options their level and name. */
function callSignature(line: string): string | undefined {
  const m = /^(?:\d+\s+)?([a-z_0-9]+)\((.*)$/.exec(line.trim());
  if (!m) return undefined;
  const [, name, rest] = m;
  const args = rest.split(', ');
  if (name === 'getsockopt' || name === 'setsockopt') return `${name}(${args[1]}, ${args[2]})`;
  if (name === 'ioctl') return `ioctl(${args[1]})`;
  if (name === 'socket') return `socket(${rest.slice(0, rest.indexOf(')'))})`;
  if (name === 'recvfrom' || name === 'sendto') return `${name}(${args.find((a) => a.startsWith('MSG_')) ?? ''})`;
  return name;
}

interface Sections {
  checkpoint: string[];
  restore: string[];
}

function tracedSections(file: string): Sections {
  const lines = readFileSync(file, 'utf8').split('\n');
  const at = (id: number): number => lines.findIndex((l) => new RegExp(`getsockopt\\(${MARKER_FD + id},`).test(l));
  const section = (a: number, b: number): string[] => {
    const i = at(a);
    const j = at(b);
    if (i < 0 || j < i) throw new Error(`markers ${a}/${b} not found in ${file}`);
    return lines
      .slice(i + 1, j)
      .map(callSignature)
      .filter((x): x is string => x !== undefined);
  };
  return { checkpoint: section(1, 2), restore: section(3, 4) };
}

type SequenceCheck =
  | { status: 'skipped'; note: string }
  | { status: 'identical' | 'different'; note: string; checkpointCalls: number; restoreCalls: number; differences: string[] };

/** Traces one checkpoint + restore of each side with strace and compares the kernel calls made. */
function checkCallSequence(): SequenceCheck {
  const probe = spawnSync('strace', ['-V'], { encoding: 'utf8' });
  if (probe.error) return { status: 'skipped', note: 'strace not installed (Debian package strace)' };
  const dir = path.dirname(BASELINE_BIN);
  const tsTrace = path.join(dir, 'trace-soccrd.txt');
  const cTrace = path.join(dir, 'trace-baseline.txt');
  const run = (file: string, cmd: string[]): void => {
    const r = spawnSync('strace', ['-o', file, '-e', STRACE_SET, ...cmd], { encoding: 'utf8', timeout: 60_000 });
    if (r.error) throw r.error;
    if (r.status !== 0) throw new Error(`strace ${cmd.join(' ')} failed (${howExited(r.status, r.signal)}): ${r.stderr.trim()}`);
  };
  run(tsTrace, [process.execPath, __filename, TRACE_ARG]);
  run(cTrace, [BASELINE_BIN, 'trace', '1']);
  const a = tracedSections(tsTrace);
  const b = tracedSections(cTrace);
  const differences: string[] = [];
  for (const phaseName of ['checkpoint', 'restore'] as const) {
    const x = a[phaseName];
    const y = b[phaseName];
    for (let i = 0; i < Math.max(x.length, y.length); i++) {
      if (x[i] !== y[i]) differences.push(`${phaseName} call ${i + 1}: soccrd ${x[i] ?? '(none)'} / baseline ${y[i] ?? '(none)'}`);
    }
  }
  return {
    status: differences.length ? 'different' : 'identical',
    note: `strace of one checkpoint + restore on each side (${path.relative(ROOT, tsTrace)}, ${path.relative(ROOT, cTrace)})`,
    checkpointCalls: a.checkpoint.length,
    restoreCalls: a.restore.length,
    differences,
  };
}

// ---- report --------------------------------------------------------------------------------------

interface PhaseRow {
  soccrdUsPerConn: number;
  baselineUsPerConn: number;
  ratio: number;
  ffiCallsPerConn: number;
  /** kernel calls soccrd made inside batches (several per FFI call with the batch library) */
  batchedKernelCallsPerConn: number;
  baselineSyscallsPerConn: number;
  gapUsPerConn: number;
  ffiOverheadUsPerConn: number;
}

interface Row {
  n: number;
  reps: number;
  rounds: number;
  statistic: string;
  checkpoint: PhaseRow;
  restore: PhaseRow;
  verified: string;
  perRound: Array<{ soccrdCheckpointUs: number; baselineCheckpointUs: number; soccrdRestoreUs: number; baselineRestoreUs: number }>;
}

function phase(soccrdUs: number, baseUs: number, ffi: number, batched: number, syscalls: number, overheadUs: number): PhaseRow {
  return {
    soccrdUsPerConn: soccrdUs,
    baselineUsPerConn: baseUs,
    ratio: soccrdUs / baseUs,
    ffiCallsPerConn: ffi,
    batchedKernelCallsPerConn: batched,
    baselineSyscallsPerConn: syscalls,
    gapUsPerConn: soccrdUs - baseUs,
    ffiOverheadUsPerConn: ffi * overheadUs,
  };
}

const f = (x: number, d = 1): string => x.toFixed(d);
const pad = (s: string, w: number): string => s.padStart(w);

function printTable(rows: Row[], loop: { soccrdNs: number; baselineNs: number; overheadUs: number }, seq: SequenceCheck): void {
  const label = (r: Row): string => (r.reps > 1 ? `${r.n} (median of ${r.reps})` : `${r.n} (median of ${r.rounds} runs)`);
  const out: string[] = [];
  out.push(`soccrd engine bench: 127.0.0.1 loopback, ${QUEUE_BYTES} unread bytes queued each way per connection`);
  out.push(`node ${process.version}, kernel ${os.release()}, baseline = bench/baseline.c (gcc -O2), same kernel calls without FFI`);
  out.push(`soccrd kernel calls: ${N.batchPath().native ? 'batched' : 'one FFI call each'} (${N.batchPath().reason})`);
  for (const which of ['checkpoint', 'restore'] as const) {
    out.push('');
    out.push(which === 'checkpoint' ? 'checkpoint: ProcessHandle.open (once) + takeTcpSocket + pause + save' : 'restore: restore + resumeRestored');
    out.push(
      `${'N'.padEnd(26)}${pad('soccrd µs/conn', 16)}${pad('baseline µs/conn', 18)}${pad('ratio', 8)}${pad('FFI calls/conn', 16)}${pad('batched/conn', 14)}${pad('C syscalls/conn', 17)}`,
    );
    for (const r of rows) {
      const p = r[which];
      out.push(
        `${label(r).padEnd(26)}${pad(f(p.soccrdUsPerConn), 16)}${pad(f(p.baselineUsPerConn), 18)}${pad(f(p.ratio, 2) + 'x', 8)}${pad(f(p.ffiCallsPerConn, 2), 16)}${pad(f(p.batchedKernelCallsPerConn, 2), 14)}${pad(f(p.baselineSyscallsPerConn, 2), 17)}`,
      );
    }
  }
  out.push('');
  out.push(
    `cost per FFI call: getsockoptInt x${LOOP_CALLS} (median of ${LOOP_ROUNDS}): soccrd ${f(loop.soccrdNs, 0)} ns/call, C ${f(loop.baselineNs, 0)} ns/call` +
      ` -> FFI overhead ${f(loop.overheadUs, 2)} µs/call`,
  );
  out.push('');
  out.push('where the time goes (µs/conn): gap = soccrd - baseline; FFI = FFI calls/conn x overhead per call');
  out.push(`${'N'.padEnd(26)}${pad('phase', 11)}${pad('gap', 9)}${pad('FFI calls x cost', 18)}${pad('share of gap', 14)}${pad('rest (JS)', 11)}`);
  for (const r of rows) {
    for (const which of ['checkpoint', 'restore'] as const) {
      const p = r[which];
      out.push(
        `${label(r).padEnd(26)}${pad(which, 11)}${pad(f(p.gapUsPerConn), 9)}${pad(f(p.ffiOverheadUsPerConn), 18)}${pad(f((100 * p.ffiOverheadUsPerConn) / p.gapUsPerConn, 0) + '%', 14)}${pad(f(p.gapUsPerConn - p.ffiOverheadUsPerConn), 11)}`,
      );
    }
  }
  out.push('');
  if (seq.status === 'identical') {
    out.push(`kernel call sequence: identical (${seq.checkpointCalls} checkpoint + ${seq.restoreCalls} restore calls; ${seq.note})`);
  } else if (seq.status === 'skipped') {
    out.push(`kernel call sequence: not checked: ${seq.note}`);
  } else {
    out.push(`kernel call sequence: DIFFERENT, the baseline no longer mirrors the engine (${seq.note}):`);
    for (const d of seq.differences.slice(0, 20)) out.push(`  ${d}`);
  }
  out.push(`verified restored connections (both directions, queued bytes included): ${rows.map((r) => `N=${label(r)}: ${r.verified}`).join(', ')}`);
  out.push(`results written to ${path.relative(process.cwd(), RESULTS) || RESULTS}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

async function main(): Promise<void> {
  requireRoot();
  if (softFdLimit() < FD_HEADROOM) throw fdLimitError();
  buildBaseline();
  const started = Date.now();

  const soccrdNs = ffiLoopNs();
  const baselineNs = num(runBaselineJson(['loop', String(LOOP_CALLS), String(LOOP_ROUNDS)]), 'ns_per_call');
  const overheadUs = Math.max(0, soccrdNs - baselineNs) / 1000;

  const sequence = checkCallSequence();
  const rows: Row[] = [];
  const runs: Array<['single' | 'batch', number]> = [['single', SINGLE_REPS], ...BATCH_SIZES.map((n): ['batch', number] => ['batch', n])];
  for (const [mode, n] of runs) {
    // Batch sizes run BATCH_ROUNDS times, alternating soccrd and baseline; each figure is the median.
    const rounds = mode === 'single' ? 1 : BATCH_ROUNDS;
    const ss: Measured[] = [];
    const bs: BaselineRun[] = [];
    for (let round = 0; round < rounds; round++) {
      const s = await measureSoccrd(mode, n);
      const b = runBaseline(mode, n);
      const problems: string[] = [];
      if (s.expectedQueues !== n) problems.push(`soccrd: ${n - s.expectedQueues} saved states without the expected queues`);
      if (b.expected_queues !== n) problems.push(`baseline: ${n - b.expected_queues} saved states without the expected queues`);
      if (s.verified !== s.checks) problems.push(`soccrd: ${s.checks - s.verified} of ${s.checks} restored connections failed verification`);
      if (b.verified !== b.checks) problems.push(`baseline: ${b.checks - b.verified} of ${b.checks} restored connections failed verification`);
      if (problems.length) throw new Error(`N=${n} ${mode}: ${problems.join('; ')}`);
      ss.push(s);
      bs.push(b);
    }
    const med = <T>(xs: T[], get: (x: T) => number): number => median(xs.map(get));
    const verified = ss.reduce((a, s) => a + s.verified, 0);
    const checks = ss.reduce((a, s) => a + s.checks, 0);
    const bVerified = bs.reduce((a, b) => a + b.verified, 0);
    const bChecks = bs.reduce((a, b) => a + b.checks, 0);
    rows.push({
      n: ss[0].n,
      reps: ss[0].reps,
      rounds,
      statistic: mode === 'single' ? `median of ${n} single-connection runs` : `median over ${rounds} runs of the mean over ${n} connections`,
      checkpoint: phase(
        med(ss, (s) => s.checkpointUs),
        med(bs, (b) => b.checkpoint_us_per_conn),
        med(ss, (s) => s.checkpointFfi),
        med(ss, (s) => s.checkpointKernel),
        med(bs, (b) => b.checkpoint_syscalls_per_conn),
        overheadUs,
      ),
      restore: phase(
        med(ss, (s) => s.restoreUs),
        med(bs, (b) => b.restore_us_per_conn),
        med(ss, (s) => s.restoreFfi),
        med(ss, (s) => s.restoreKernel),
        med(bs, (b) => b.restore_syscalls_per_conn),
        overheadUs,
      ),
      verified: `${verified}/${checks} soccrd, ${bVerified}/${bChecks} baseline`,
      perRound: ss.map((s, i) => ({
        soccrdCheckpointUs: s.checkpointUs,
        baselineCheckpointUs: bs[i].checkpoint_us_per_conn,
        soccrdRestoreUs: s.restoreUs,
        baselineRestoreUs: bs[i].restore_us_per_conn,
      })),
    });
  }

  // The daemon's checkpoint path (with socket diagnostics) at the largest batch size, soccrd only.
  const nDiag = BATCH_SIZES[BATCH_SIZES.length - 1];
  const ds: Measured[] = [];
  for (let round = 0; round < BATCH_ROUNDS; round++) {
    const d = await measureSoccrd('batch', nDiag, false, true);
    if (d.expectedQueues !== nDiag || d.verified !== d.checks)
      throw new Error(
        `N=${nDiag} with socket diagnostics: ${nDiag - d.expectedQueues} states without the expected queues, ${d.checks - d.verified} restored connections failed verification`,
      );
    ds.push(d);
  }
  const diagCheckpoint = {
    n: nDiag,
    rounds: BATCH_ROUNDS,
    usPerConn: median(ds.map((d) => d.checkpointUs)),
    ffiCallsPerConn: median(ds.map((d) => d.checkpointFfi)),
  };

  const results = {
    date: new Date().toISOString(),
    node: process.version,
    kernel: os.release(),
    queueBytesEachWay: QUEUE_BYTES,
    kernelCallPath: N.batchPath(),
    ffiCost: { calls: LOOP_CALLS, rounds: LOOP_ROUNDS, soccrdNsPerCall: soccrdNs, baselineNsPerCall: baselineNs, overheadUsPerCall: overheadUs },
    callSequence: sequence,
    rows,
    diagCheckpoint,
    elapsedSeconds: (Date.now() - started) / 1000,
  };
  writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
  printTable(rows, { soccrdNs, baselineNs, overheadUs }, sequence);
  process.stdout.write(
    `checkpoint as the daemon does it (socket diagnostics), N=${nDiag}: ${diagCheckpoint.usPerConn.toFixed(1)} µs/conn, ${diagCheckpoint.ffiCallsPerConn.toFixed(1)} FFI calls/conn (median of ${BATCH_ROUNDS} runs)\n`,
  );
}

/** Run under strace by checkCallSequence: one connection, with markers around each phase. */
async function traceOne(): Promise<void> {
  const m = await measureSoccrd('single', 1, true);
  if (m.verified !== m.checks) throw new Error('traced restore failed verification');
}

const fail = (err: unknown): void => failBench('bench:engine', err);
let reexecStatus: number | undefined;
try {
  reexecStatus = process.argv.includes(TRACE_ARG) ? undefined : reexecWithFdLimit();
} catch (err) {
  fail(err);
}
if (process.argv.includes(TRACE_ARG)) {
  traceOne().then(() => process.exit(0), fail);
} else if (reexecStatus !== undefined) {
  process.exitCode = reexecStatus;
} else {
  main().then(() => process.exit(0), fail);
}
