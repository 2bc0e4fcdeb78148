// CRIU in the migration bench: whether the `criu` on PATH works here, and its dump + restore of the
// same N connections with the full-queue workload of bench/workload.ts, held by one process
// (bench/holder.ts) in namespace A with the peers in C. CRIU runs inside A through
// `nsenter --net=/run/netns/A` (not `ip netns exec`, which also unshares the mount namespace: criu then
// fails on mount sharing), and so does the holder. After the restore the holder reads everything, the
// peers read everything, fresh bytes go both ways, and every connection must be exact, as soccrd's.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Lan, SERVICE_V4 } from '../lab/lan';
import { MultiFixture, MultiStatus } from '../lab/multi';
import { cleanupAll, trackPath, trackPid, untrackPid } from './cleanup';
import { howExited, sleep } from './common';
import type { HolderConfig, HolderStatus } from './holder';
import {
  EXPLICIT_BYTES,
  FULL_TICK_BYTES,
  PORT,
  SAMPLE,
  SEND_FULL_STRIDE,
  TICK_MS,
  WARM_MS,
  bufferMaxFor,
  idlePollTicksFor,
  queueBytesIn,
  tuneNamespace,
  untilQueuesFull,
} from './workload';

const HOLDER_JS = path.join(__dirname, 'holder.js');
const CLIENT_PORT_BASE = 40_000;
/** Bound on one criu command. */
const CRIU_TIMEOUT_MS = 300_000;

/** `version`: `criu --version`'s first line, or why criu is not there; `reason`: why it is not usable, criu's own error line. */
export type CriuStatus = { usable: true; version: string } | { usable: false; version: string; reason: string };

export function criuStatus(): CriuStatus {
  const v = spawnSync('criu', ['--version'], { encoding: 'utf8' });
  if (v.error) return { usable: false, version: 'not installed', reason: 'criu is not on PATH' };
  const version = (v.stdout.split('\n')[0] ?? '').replace(/^Version:\s*/, 'criu ');
  const c = spawnSync('criu', ['check'], { encoding: 'utf8', timeout: 60_000 });
  if (c.status !== 0) {
    const lines = `${c.stderr}\n${c.stdout}`.split('\n').filter((l) => l.includes('Error'));
    const first = lines.find((l) => !l.includes('exited, status')) ?? lines[0] ?? howExited(c.status, c.signal);
    return { usable: false, version, reason: `criu check failed: ${first.trim()}` };
  }
  const lock = spawnSync('criu', ['check', '--feature', 'nftables'], { encoding: 'utf8', timeout: 60_000 });
  if (lock.status !== 0)
    return {
      usable: false,
      version,
      reason: 'criu check --feature nftables failed: this criu was built without libnftables, which --network-lock nftables needs',
    };
  return { usable: true, version };
}

export interface CriuResult {
  n: number;
  dumpMs: number;
  restoreMs: number;
  totalMs: number;
  /** the holder's receive + send queue bytes at the dump (ss) */
  queueBytes: number;
  /** every connection carried its bytes exactly after the restore */
  exact: boolean;
}

/** criu's error lines, without the ones it logs and goes on from. */
function criuErrors(text: string): string[] {
  return text.split('\n').filter((l) => l.includes('Error') && !l.includes('RLIMIT_NOFILE'));
}

function readHolderStatus(file: string): HolderStatus | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as HolderStatus;
  } catch {
    return undefined;
  }
}

/** What is wrong between the holder and the peers, once neither sends any more (empty: exact). */
function holderProblems(h: HolderStatus, c: MultiStatus, n: number): string[] {
  const problems: string[] = [];
  const byIndex = new Map(c.connections.map((x) => [x.index, x] as const));
  if (h.connections.length !== n) problems.push(`the holder has ${h.connections.length} connections, not ${n}`);
  for (const x of h.connections) {
    const p = byIndex.get(x.index);
    if (!p) {
      problems.push(`holder connection ${x.index}: no peer`);
      continue;
    }
    if (x.mismatchAt >= 0) problems.push(`holder ${x.index}: wrong byte at ${x.mismatchAt}`);
    if (p.mismatchAt >= 0) problems.push(`peer ${x.index}: wrong byte at ${p.mismatchAt}`);
    if (x.error || x.eof) problems.push(`holder ${x.index}: ${x.error ?? 'EOF'}`);
    if (p.error || p.eof) problems.push(`peer ${x.index}: ${p.error ?? 'EOF'}`);
    if (p.pending > 0) problems.push(`peer ${x.index}: ${p.pending} bytes not sent yet`);
    if (x.received !== p.sent) problems.push(`peer ${x.index}: sent ${p.sent}, holder received ${x.received}`);
    if (p.received !== x.sent) problems.push(`holder ${x.index}: sent ${x.sent}, peer received ${p.received}`);
  }
  return problems;
}

/**
 * CRIU's dump + restore of N connections with full queues (--tcp-established, nftables network lock),
 * then the exactness check. Throws when criu fails; `exact` false when bytes went wrong after a restore
 * that criu reported as done.
 */
export async function runCriu(n: number, dir: string): Promise<CriuResult & { problems: string[] }> {
  const lan = Lan.create();
  // Images in memory where there is a tmpfs: CRIU's own live migration keeps them off the disk too.
  const images = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : dir, 'soccrd-criu-'));
  trackPath(images);
  const netns = lan.nsPath(lan.ns.A);
  try {
    tuneNamespace(lan.ns.A, bufferMaxFor(n));
    tuneNamespace(lan.ns.C, bufferMaxFor(n));
    const cfg: HolderConfig = {
      ip: SERVICE_V4,
      port: PORT,
      count: n,
      readyFile: path.join(images, 'holder.ready'),
      statusFile: path.join(dir, `holder-${n}-${Date.now()}.json`),
      clientPortBase: CLIENT_PORT_BASE,
      sendStride: SEND_FULL_STRIDE,
      explicitBytes: EXPLICIT_BYTES,
    };
    // detached: a session of its own (setsid), as criu wants the tree it dumps; nsenter execs node
    // (the pid is the holder's).
    // No io_uring in libuv: criu cannot dump it.
    const child = spawn('nsenter', [`--net=${netns}`, process.execPath, HOLDER_JS, JSON.stringify(cfg)], {
      stdio: 'ignore',
      detached: true,
      env: { ...process.env, UV_USE_IO_URING: '0' },
    });
    const holderGone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    trackPid(child.pid ?? 0);
    child.once('exit', () => untrackPid(child.pid ?? 0));
    for (let i = 0; i < 200 && !existsSync(cfg.readyFile); i++) await sleep(50);
    if (!existsSync(cfg.readyFile)) throw new Error('criu: the holder did not start listening within 10 s');
    const holderPid = Number(readFileSync(cfg.readyFile, 'utf8'));
    const connectMs = 30_000 + 10 * n;
    const stride = Math.max(1, Math.ceil(n / SAMPLE));
    const clients = await MultiFixture.start(lan.ns.C, {
      mode: 'clients',
      ip: SERVICE_V4,
      port: PORT,
      count: n,
      connectTimeoutMs: connectMs,
      sampleStride: stride,
      idlePollTicks: idlePollTicksFor(n),
      tickMs: TICK_MS,
      bytesPerTick: FULL_TICK_BYTES,
      clientPortBase: CLIENT_PORT_BASE,
    });
    await clients.waitConnected(connectMs);
    for (let i = 0; i < 400 && queueBytesIn(lan.ns.A).connections < n; i++) await sleep(50);

    // The workload: peers stream, the holder reads (buffers autotune) and streams on a third; then it
    // stops reading and those peers stop reading.
    await clients.stream(true, FULL_TICK_BYTES, { stride: 1 });
    await sleep(WARM_MS);
    process.kill(holderPid, 'SIGUSR1');
    await clients.read(false, { stride: SEND_FULL_STRIDE });
    const q = await untilQueuesFull(lan.ns.A);

    // Asynchronous, so that SIGINT or SIGTERM still cleans up while criu runs (it is killed with the rest).
    const criu = async (args: string[], log: string): Promise<number> => {
      const t = performance.now();
      const p = spawn('nsenter', [`--net=${netns}`, 'criu', ...args, '-o', log], { stdio: ['ignore', 'ignore', 'pipe'] });
      trackPid(p.pid ?? 0);
      let stderr = '';
      p.stderr?.on('data', (d: Buffer) => {
        stderr = `${stderr}${d.toString()}`.slice(-4096);
      });
      const timer = setTimeout(() => p.kill('SIGKILL'), CRIU_TIMEOUT_MS);
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => p.once('exit', (c, sig) => resolve([c, sig])));
      clearTimeout(timer);
      untrackPid(p.pid ?? 0);
      const ms = performance.now() - t;
      if (code !== 0) {
        // criu writes its errors to the log file (-o, in the images directory).
        const logged = existsSync(path.join(images, log)) ? readFileSync(path.join(images, log), 'utf8') : '';
        const errors = criuErrors(`${logged}\n${stderr}`);
        throw new Error(
          `criu ${args[0]} failed (${howExited(code, signal)}${signal === 'SIGKILL' ? `, killed after ${CRIU_TIMEOUT_MS / 1000} s` : ''}): ${errors.slice(0, 3).join(' | ') || 'no error line'}`,
        );
      }
      return ms;
    };
    const common = ['--tcp-established', '--network-lock', 'nftables', '-D', images];
    const dumpMs = await criu(['dump', '-t', String(holderPid), ...common], 'dump.log');
    // criu killed the holder; its pid is free for the restore once this process has reaped it.
    await Promise.race([holderGone, sleep(10_000)]);
    const pidfile = path.join(images, 'restored.pid');
    const restoreMs = await criu(['restore', '-d', '--pidfile', pidfile, ...common], 'restore.log');
    const restoredPid = Number(readFileSync(pidfile, 'utf8'));
    trackPid(restoredPid);

    // Exactness: the restored holder reads and sends its last bytes, the peers read and send theirs.
    process.kill(restoredPid, 'SIGUSR2');
    await clients.stream(false);
    await clients.read(true);
    await clients.write(EXPLICIT_BYTES);
    const deadline = Date.now() + 60_000 + 10 * n + (q.recv + q.send) / 20_000;
    let problems: string[] = ['no status from the restored holder'];
    while (Date.now() < deadline) {
      await sleep(200);
      const h = readHolderStatus(cfg.statusFile);
      if (h?.pid !== restoredPid) continue;
      problems = holderProblems(h, await clients.status(), n);
      // Counts still short may catch up; anything else will not.
      if (problems.length === 0 || problems.some((p) => !/(sent \d+, (holder|peer) received \d+|bytes not sent yet)$/.test(p))) break;
    }
    return { n, dumpMs, restoreMs, totalMs: dumpMs + restoreMs, queueBytes: q.recv + q.send, exact: problems.length === 0, problems };
  } finally {
    // The holder, the restored holder, their images, the LAN, the peers.
    await cleanupAll();
  }
}
