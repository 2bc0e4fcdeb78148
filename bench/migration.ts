// Migration bench (`npm run bench:migration [-- --counts 1,100,1000,10000]`): N live connections of one
// process moved from one soccrd to another with migrate() (client/migrate.ts), on the test LAN
// (test/support/lan.ts: hosts A and B, clients in C, the service address moved by the hook), N = 1,
// 100, 1000 and 10 000 by default, each N run a few times (the median is reported).
//
// Per run: a serve fixture in A holds N connections with a clients fixture in C (test/fixtures/multi.ts).
// Every connection carries bytes both ways; a sample of at most SAMPLE connections streams steadily
// (TICK_BYTES every TICK_MS each way), and the clients record per connection the longest pause between
// received bytes: the stall the peer sees. The new owner (an adopt fixture in B) starts before the
// migration, so its start-up is not counted. After the move, every connection must carry exact bytes
// both ways (exchangeProblems), or the run fails: a benchmark of a broken migration is worthless.
//
// With criu installed and `criu check` passing, the same N connections held by one process are also
// dumped and restored by CRIU (--tcp-established, nftables network lock), for the ratio.
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { migrate, MigrateReport } from '../client/migrate';
import { DaemonProcess } from '../test/support/daemon';
import { Lan, SERVICE_V4 } from '../test/support/lan';
import { MultiFixture, MultiStatus, exchangeProblems, untilExchanged } from '../test/support/multi';
import { cleanupAll, cleanupOnSignals, measured } from './cleanup';
import { BenchSetupError, failBench, machine, median, quantile, reexecWithFdLimit, requireRoot, sleep, softFdLimit } from './common';

const ROOT = path.resolve(__dirname, '..', '..');
export const MIGRATION_RESULTS = path.join(ROOT, 'bench', 'results-migration.json');
const HOLDER_JS = path.join(__dirname, 'holder.js');

const DEFAULT_COUNTS = [1, 100, 1000, 10_000];
const PORT = 5000;
/** Connections that stream steadily (the rest carry bytes before and after, and idle in between). */
const SAMPLE = 100;
const TICK_MS = 5;
const TICK_BYTES = 256;
/** Bytes every connection sends each way before the move, and again after it. */
const EXPLICIT_BYTES = 2048;
/** How long the steady stream runs before measuring, and the window of the cadence baseline. */
const SETTLE_MS = 500;
const BASELINE_MS = 1000;
/** How long the stream runs after the destination is live before the gaps are read. */
const AFTER_MS = 1500;
/** Open files each process needs at most (one end of every connection, plus a margin): per process. */
const FD_NEED = 10_000 + 2048;
const REEXEC_ENV = 'SOCCRD_BENCH_MIGRATION_FD_RAISED';

const runsFor = (n: number): number => (n >= 10_000 ? 1 : 3);

/** `--profile DIR`: the daemons write V8 CPU profiles there (bench/cpu-profile.ts), one per daemon and run. */
const profileDir = ((): string | undefined => {
  const i = process.argv.indexOf('--profile');
  return i >= 0 ? path.resolve(process.argv[i + 1] ?? 'bench/profiles') : undefined;
})();

// ---- one run -------------------------------------------------------------------------------------

export interface RunResult {
  n: number;
  freezeMs: number;
  totalMs: number;
  phases: Record<string, number>;
  connectionsPerSecond: number;
  queueBytes: number;
  /** longest pause between received bytes at the clients, over the sampled connections (ms) */
  peerGapMaxMs: number;
  peerGapMedianMs: number;
  peerGapP99Ms: number;
  sampled: number;
  /**
   * Where the stall lies against the freeze (medians over the sample): from the stall's start to the
   * Checkpoint call, and from the destination going live to the stall's end (the peer's recovery).
   */
  peerGapBeforeFreezeMs: number;
  peerGapAfterLiveMs: number;
  /** the same statistic in a window without migration: the stream's own cadence */
  baselineGapMs: number;
  /** the peers' retransmission timeout (ss -ti rto, median over the sample), ms */
  peerRtoMs: number;
  /** retransmissions by the peers during the run */
  peerRetrans: number;
  verifiedConnections: number;
  setupMs: number;
}

/** Per-namespace sysctls for 10 000 connections: accept backlog and SYN queue. */
function tuneNamespace(ns: string): void {
  spawnSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.core.somaxconn=65535', 'net.ipv4.tcp_max_syn_backlog=65535'], { stdio: 'ignore' });
}

/** Median of the `rto:` values `ss -ti` shows for connections to the service port in namespace `ns`. */
function peerRtoMs(ns: string): number {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'ss', '-tniH', 'dst', `${SERVICE_V4}:${PORT}`], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const rtos = [...(r.stdout ?? '').matchAll(/\brto:(\d+(?:\.\d+)?)/g)].map((m) => Number(m[1]));
  return median(rtos);
}

/** The longest pause of each sampled connection: gaps between receives, or the one still open. */
function gapsOf(s: MultiStatus, stride: number): number[] {
  return s.connections.filter((c) => c.index % stride === 0).map((c) => Math.max(c.maxGapMs, c.sinceRecvMs));
}

function runOnce(n: number, dir: string): Promise<RunResult> {
  return measured(async () => {
    const t0 = performance.now();
    const lan = Lan.create();
    for (const role of ['A', 'B', 'C'] as const) tuneNamespace(lan.ns[role]);
    const env = profileDir ? { NODE_OPTIONS: `--require ${path.join(__dirname, 'cpu-profile.js')}`, SOCCRD_CPU_PROFILE_DIR: profileDir } : undefined;
    const [a, b] = await Promise.all([DaemonProcess.start({ netns: lan.ns.A, args: ['--log-level', 'info'], env }), DaemonProcess.start({ netns: lan.ns.B, args: ['--log-level', 'info'], env })]);
    const stride = Math.max(1, Math.ceil(n / SAMPLE));
    const common = { sampleStride: stride, tickMs: TICK_MS, bytesPerTick: TICK_BYTES };
    const connectMs = 30_000 + 10 * n;
    const server = await MultiFixture.start(lan.ns.A, { mode: 'serve', ip: SERVICE_V4, port: PORT, count: n, ...common });
    const clients = await MultiFixture.start(lan.ns.C, { mode: 'clients', ip: SERVICE_V4, port: PORT, count: n, connectTimeoutMs: connectMs, ...common });
    await Promise.all([server.waitConnected(connectMs), clients.waitConnected(connectMs)]);
    const deliverPath = path.join(dir, `deliver-${n}-${Date.now()}.sock`);
    const receiver = await MultiFixture.start(lan.ns.B, { mode: 'adopt', unixPath: deliverPath, count: n, continueFrom: {}, streaming: true, ...common, tickMs: 1 });

    await Promise.all([server.write(EXPLICIT_BYTES), clients.write(EXPLICIT_BYTES)]);
    await Promise.all([server.stream(true), clients.stream(true)]);
    await sleep(SETTLE_MS);
    const rto = peerRtoMs(lan.ns.C);
    await clients.resetGaps();
    await sleep(BASELINE_MS);
    const baseline = gapsOf(await clients.status(), stride);
    const setupMs = performance.now() - t0;

    const before = await clients.resetGaps();
    // The application's own hand-off: the old owner stops its I/O and the new one learns the offsets.
    const { offsets } = await server.quiesce();
    await receiver.continueFrom(offsets);
    const report: MigrateReport = await migrate({
      from: a.address,
      to: b.address,
      pid: server.pid,
      netns: lan.nsPath(lan.ns.B),
      deliverUnixPath: deliverPath,
      beforeResume: lan.moveServiceCommand('A', 'B'),
      timeoutMs: 60_000,
    });
    await receiver.waitEvent('handover-live', 60_000);
    await sleep(AFTER_MS);
    const after = await clients.status();
    const gaps = gapsOf(after, stride);
    const phase = (name: string): { startedAt: number; ms: number } => report.phases.find((p) => p.name === name) ?? { startedAt: NaN, ms: NaN };
    const freezeStartUnix = phase('checkpoint+restore').startedAt;
    const liveUnix = phase('resume-destination').startedAt + phase('resume-destination').ms;
    const sampled = after.connections.filter((c) => c.index % stride === 0 && c.maxGapEndUnixMs > 0);
    const beforeFreeze = sampled.map((c) => freezeStartUnix - (c.maxGapEndUnixMs - c.maxGapMs));
    const afterLive = sampled.map((c) => c.maxGapEndUnixMs - liveUnix);

    // Exactness: the old owner gone, fresh bytes both ways on every connection, then all exchanged.
    server.kill();
    await server.exited();
    await Promise.all([clients.stream(false), receiver.stream(false)]);
    await Promise.all([clients.write(EXPLICIT_BYTES), receiver.write(EXPLICIT_BYTES)]);
    const [cs, rs] = await untilExchanged(clients, receiver, 60_000 + 10 * n);
    const problems = exchangeProblems(cs, rs);
    const moved = rs.connections.filter((c) => c.received > (offsets[c.key]?.received ?? Infinity) && c.sent > (offsets[c.key]?.sent ?? Infinity)).length;
    if (report.connections !== n || cs.connections.length !== n || rs.connections.length !== n || problems.length > 0 || moved !== n) {
      throw new Error(`N=${n}: migration not exact: report ${report.connections}, clients ${cs.connections.length}, new owner ${rs.connections.length}, carried traffic after the move ${moved}; ${problems.slice(0, 5).join('; ')}`);
    }
    const phases: Record<string, number> = {};
    for (const p of report.phases) phases[p.name] = p.ms;
    return {
      n,
      freezeMs: report.freezeMs,
      totalMs: report.totalMs,
      phases,
      connectionsPerSecond: (n * 1000) / report.totalMs,
      queueBytes: report.queueBytes,
      peerGapMaxMs: Math.max(...gaps),
      peerGapMedianMs: median(gaps),
      peerGapP99Ms: quantile(gaps, 0.99),
      sampled: gaps.length,
      peerGapBeforeFreezeMs: median(beforeFreeze),
      peerGapAfterLiveMs: median(afterLive),
      baselineGapMs: Math.max(...baseline),
      peerRtoMs: rto,
      peerRetrans: cs.totals.totalRetrans - before.totals.totalRetrans,
      verifiedConnections: n,
      setupMs,
    };
  });
}

// ---- CRIU ----------------------------------------------------------------------------------------

export interface CriuStatus {
  usable: boolean;
  /** `criu --version`'s first line, or why criu is not there */
  version: string;
  /** why it is not usable: criu's own error line */
  reason?: string;
}

export function criuStatus(): CriuStatus {
  const v = spawnSync('criu', ['--version'], { encoding: 'utf8' });
  if (v.error) return { usable: false, version: 'not installed', reason: 'criu is not installed (Debian package criu)' };
  const version = (v.stdout.split('\n')[0] ?? '').replace(/^Version:\s*/, 'criu ');
  const c = spawnSync('criu', ['check'], { encoding: 'utf8', timeout: 60_000 });
  if (c.status === 0) return { usable: true, version };
  const lines = `${c.stderr}\n${c.stdout}`.split('\n').filter((l) => /Error/.test(l));
  const first = lines.find((l) => !/exited, status/.test(l)) ?? lines[0] ?? `exit status ${c.status}`;
  return { usable: false, version, reason: `criu check failed: ${first.trim()}` };
}

export interface CriuResult {
  n: number;
  dumpMs: number;
  restoreMs: number;
  totalMs: number;
}

/**
 * CRIU's time for the same N connections: a holder process in A (bench/holder.ts) with N connections
 * from a clients fixture in C, dumped with --tcp-established and the nftables network lock, then
 * restored in the same namespace. The peers must see no error afterwards.
 */
async function runCriu(n: number, dir: string): Promise<CriuResult> {
  const lan = Lan.create();
  let holder: ChildProcess | undefined;
  let restoredPid = 0;
  let holderPid = 0;
  const images = mkdtempSync(path.join(dir, 'criu-'));
  try {
    tuneNamespace(lan.ns.A);
    tuneNamespace(lan.ns.C);
    const ready = path.join(images, 'holder.ready');
    // detached: a session of its own (setsid), as criu wants the tree it dumps; `ip netns exec` execs node.
    holder = spawn('ip', ['netns', 'exec', lan.ns.A, process.execPath, HOLDER_JS, SERVICE_V4, String(PORT), String(n), ready], { stdio: 'ignore', detached: true });
    for (let i = 0; i < 200 && !existsSync(ready); i++) await sleep(50);
    const connectMs = 30_000 + 10 * n;
    const clients = await MultiFixture.start(lan.ns.C, { mode: 'clients', ip: SERVICE_V4, port: PORT, count: n, connectTimeoutMs: connectMs, reading: true });
    await clients.waitConnected(connectMs);
    holderPid = Number(readFileSync(ready, 'utf8'));
    for (let i = 0; i < 400; i++) {
      const accepted = spawnSync('ip', ['netns', 'exec', lan.ns.A, 'ss', '-tnH', 'state', 'established', 'src', `${SERVICE_V4}:${PORT}`], { encoding: 'utf8', maxBuffer: 64 << 20 });
      if (accepted.stdout.split('\n').filter((l) => l.trim()).length >= n) break;
      await sleep(50);
    }
    const criu = (args: string[], log: string): number => {
      const t = performance.now();
      const r = spawnSync('ip', ['netns', 'exec', lan.ns.A, 'criu', ...args, '-o', log], { encoding: 'utf8', timeout: 300_000 });
      if (r.status !== 0) {
        // criu writes its errors to the log file (-o, in the images directory).
        const logged = existsSync(path.join(images, log)) ? readFileSync(path.join(images, log), 'utf8') : '';
        const errors = `${logged}\n${r.stderr ?? ''}`.split('\n').filter((l) => /Error/.test(l));
        throw new Error(`criu ${args[0]} failed (exit ${r.status ?? r.signal}): ${errors.slice(0, 3).join(' | ') || 'no error line'}`);
      }
      return performance.now() - t;
    };
    const lock = ['--tcp-established', '--network-lock', 'nftables', '-D', images];
    const dumpMs = criu(['dump', '-t', String(holderPid), ...lock], 'dump.log');
    const pidfile = path.join(images, 'restored.pid');
    const restoreMs = criu(['restore', '-d', '--pidfile', pidfile, ...lock], 'restore.log');
    restoredPid = Number(readFileSync(pidfile, 'utf8'));
    await sleep(500);
    const s = await clients.status();
    if (s.totals.errors > 0 || s.totals.eofs > 0) throw new Error(`criu: ${s.totals.errors} peers saw errors, ${s.totals.eofs} EOF after the restore`);
    return { n, dumpMs, restoreMs, totalMs: dumpMs + restoreMs };
  } finally {
    for (const pid of new Set([restoredPid, holderPid, holder?.pid ?? 0])) {
      try {
        if (pid > 0) process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await cleanupAll();
    rmSync(images, { recursive: true, force: true });
  }
}

// ---- driver --------------------------------------------------------------------------------------

export interface MigrationRow {
  n: number;
  runs: number;
  freezeMs: number;
  totalMs: number;
  phases: Record<string, number>;
  connectionsPerSecond: number;
  peerGapMaxMs: number;
  peerGapMedianMs: number;
  peerGapBeforeFreezeMs: number;
  peerGapAfterLiveMs: number;
  baselineGapMs: number;
  peerRtoMs: number;
  criu?: CriuResult & { ratio: number };
  perRun: RunResult[];
}

export interface MigrationResults {
  machine: ReturnType<typeof machine>;
  command: string;
  criu: CriuStatus;
  sample: number;
  tickMs: number;
  tickBytes: number;
  rows: MigrationRow[];
  elapsedSeconds: number;
}

function parseCounts(): number[] {
  const i = process.argv.indexOf('--counts');
  if (i < 0) return DEFAULT_COUNTS;
  const counts = (process.argv[i + 1] ?? '').split(',').map((x) => Number(x.trim()));
  if (counts.length === 0 || counts.some((c) => !Number.isInteger(c) || c < 1 || c > 30_000)) {
    throw new BenchSetupError(`--counts takes a comma-separated list of connection counts from 1 to 30000, not ${process.argv[i + 1]}`);
  }
  return counts;
}

function parseRuns(): number | undefined {
  const i = process.argv.indexOf('--runs');
  if (i < 0) return undefined;
  const r = Number(process.argv[i + 1]);
  if (!Number.isInteger(r) || r < 1 || r > 20) throw new BenchSetupError(`--runs takes 1..20, not ${process.argv[i + 1]}`);
  return r;
}

const fmt = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : '-');

async function main(): Promise<void> {
  requireRoot();
  const counts = parseCounts();
  const forcedRuns = parseRuns();
  if (softFdLimit() < Math.max(...counts) + 2048) throw new BenchSetupError(`the open-file limit ${softFdLimit()} is too low for ${Math.max(...counts)} connections`);
  const started = Date.now();
  const host = machine();
  const criu = criuStatus();
  process.stdout.write(criu.usable ? `CRIU: ${criu.version}, check passed: compared\n` : `CRIU: ${criu.version}: ${criu.reason}; the CRIU column is skipped\n`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'soccrd-bench-'));
  const rows: MigrationRow[] = [];
  try {
    for (const n of counts) {
      const runs = forcedRuns ?? runsFor(n);
      const perRun: RunResult[] = [];
      for (let r = 0; r < runs; r++) {
        const res = await runOnce(n, dir);
        perRun.push(res);
        process.stdout.write(
          `N=${n} run ${r + 1}/${runs}: freeze ${fmt(res.freezeMs)} ms (${Object.entries(res.phases).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}), ` +
            `peer gap max ${fmt(res.peerGapMaxMs)} ms (baseline ${fmt(res.baselineGapMs)}; ${fmt(res.peerGapBeforeFreezeMs)} before the freeze, ${fmt(res.peerGapAfterLiveMs)} after live), ${fmt(res.connectionsPerSecond, 0)} conn/s, all ${res.verifiedConnections} exact\n`,
        );
      }
      const med = (f: (r: RunResult) => number): number => median(perRun.map(f));
      const phases: Record<string, number> = {};
      for (const name of Object.keys(perRun[0].phases)) phases[name] = med((r) => r.phases[name] ?? NaN);
      const row: MigrationRow = {
        n,
        runs,
        freezeMs: med((r) => r.freezeMs),
        totalMs: med((r) => r.totalMs),
        phases,
        connectionsPerSecond: med((r) => r.connectionsPerSecond),
        peerGapMaxMs: med((r) => r.peerGapMaxMs),
        peerGapMedianMs: med((r) => r.peerGapMedianMs),
        peerGapBeforeFreezeMs: med((r) => r.peerGapBeforeFreezeMs),
        peerGapAfterLiveMs: med((r) => r.peerGapAfterLiveMs),
        baselineGapMs: med((r) => r.baselineGapMs),
        peerRtoMs: med((r) => r.peerRtoMs),
        perRun,
      };
      if (criu.usable) {
        try {
          const c = await runCriu(n, dir);
          row.criu = { ...c, ratio: c.totalMs / row.freezeMs };
          process.stdout.write(`N=${n} CRIU: dump ${fmt(c.dumpMs)} ms + restore ${fmt(c.restoreMs)} ms = ${fmt(c.totalMs)} ms, ${fmt(row.criu.ratio, 2)}x soccrd's freeze\n`);
        } catch (err) {
          process.stdout.write(`N=${n} CRIU failed: ${err instanceof Error ? err.message : String(err)}\n`);
        }
      }
      rows.push(row);
    }
  } finally {
    await cleanupAll();
    rmSync(dir, { recursive: true, force: true });
  }
  const results: MigrationResults = {
    machine: host,
    command: `node dist/bench/migration.js${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}`,
    criu,
    sample: SAMPLE,
    tickMs: TICK_MS,
    tickBytes: TICK_BYTES,
    rows,
    elapsedSeconds: (Date.now() - started) / 1000,
  };
  writeFileSync(MIGRATION_RESULTS, `${JSON.stringify(results, null, 2)}\n`);
  printTable(results);
}

function printTable(r: MigrationResults): void {
  const out: string[] = [''];
  out.push(`migration: median of runs; peer gap = longest pause between received bytes at the clients (sample of <= ${r.sample} connections streaming ${r.tickBytes} B every ${r.tickMs} ms)`);
  out.push(`${'N'.padStart(6)}${'runs'.padStart(6)}${'freeze ms'.padStart(11)}${'cp+restore'.padStart(12)}${'hook'.padStart(8)}${'resume'.padStart(8)}${'release'.padStart(9)}${'peer gap'.padStart(10)}${'rto'.padStart(7)}${'conn/s'.padStart(10)}${'CRIU ms'.padStart(10)}${'CRIU/soccrd'.padStart(13)}`);
  for (const row of r.rows) {
    const p = (k: string): string => fmt(row.phases[k] ?? NaN);
    out.push(
      `${String(row.n).padStart(6)}${String(row.runs).padStart(6)}${fmt(row.freezeMs).padStart(11)}${p('checkpoint+restore').padStart(12)}${p('hook').padStart(8)}${p('resume-destination').padStart(8)}${p('release-source').padStart(9)}` +
        `${fmt(row.peerGapMaxMs).padStart(10)}${fmt(row.peerRtoMs, 0).padStart(7)}${fmt(row.connectionsPerSecond, 0).padStart(10)}${(row.criu ? fmt(row.criu.totalMs) : '-').padStart(10)}${(row.criu ? `${fmt(row.criu.ratio, 2)}x` : '-').padStart(13)}`,
    );
  }
  if (!r.criu.usable) out.push(`CRIU not compared: ${r.criu.reason}`);
  out.push(`results written to ${path.relative(process.cwd(), MIGRATION_RESULTS) || MIGRATION_RESULTS}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

cleanupOnSignals();

if (require.main === module) {
  let status: number | undefined;
  try {
    status = reexecWithFdLimit(__filename, FD_NEED, REEXEC_ENV);
  } catch (err) {
    failBench('bench:migration', err);
  }
  if (status !== undefined) process.exitCode = status;
  else main().then(() => process.exit(0), (err: unknown) => cleanupAll().finally(() => failBench('bench:migration', err)));
}
