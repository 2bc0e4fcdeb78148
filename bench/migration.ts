// Migration bench (`npm run bench:migration [-- --counts 1,100,1000,10000] [--series full,queues,light,relay,handoff]`):
// N live connections of one process moved from one soccrd to another with migrate() (client/migrate.ts)
// on the test LAN (lab/lan.ts: hosts A and B, peers in C, the service address moved by the
// hook), against the floor (bench/floor.ts: the same migration in one process, engine imported
// directly) and CRIU (dump + restore of the same connections), all in the same run. Four series
// (bench/workload.ts describes the workloads):
//
//  - full: freeze against N (1, 100, 1000 by default; 10 000 with --counts) with full queues, peers
//    sending through the freeze;
//  - queues: freeze against queue bytes at 1000 connections (0, 16 KiB, 256 KiB in every receive queue,
//    and full);
//  - light: freeze against N with near-empty queues and a sample of connections streaming slowly, where
//    the stall the peers see is measured too;
//  - relay: 1000 connections (or the largest of --counts) with full queues once more, the destination
//    daemon without --data-listen, so the frames go through the orchestrator: the relay's cost, next to
//    the direct path of `full`.
//  - handoff: 1000 connections (or the largest of --counts) with full queues plus the listener, upgraded
//    on one host: migrate() with source and destination the same daemon hands the live sockets to a new
//    owner beside the old one (the Handoff call); the freeze is the daemon's own figure, from the old
//    owner stopped to the new owner's acknowledgement (holding every socket). Issue 13's goal: <= 20 ms.
//
// In every other series the destination daemon listens for direct transfers (`--data-listen`), as a
// user who configured it runs it: migrate() then sends the frames straight from daemon to daemon. The
// transport each run used (MigrateReport.transport) and whether each daemon makes its kernel calls in
// batches (GetVersion features.nativeBatch) are recorded per run.
//
// Every run ends with every connection checked exact both ways, or the bench fails: a benchmark of a
// broken migration is worthless. soccrd and floor runs alternate, so load on the machine hits both alike.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { SoccrClient } from '../client/client';
import { migrate, MigrateReport } from '../client/migrate';
import * as N from '../daemon/kernel/native';
import { processState } from '../daemon/repair/acquire';
import { DaemonProcess } from '../lab/daemon';
import { LAN_NODES, Lan, SERVICE_V4 } from '../lab/lan';
import type { MultiStatus } from '../lab/multi';
import { cleanupAll, cleanupOnSignals, measured } from './cleanup';
import {
  BenchSetupError,
  KernelCalls,
  NativeBatchUse,
  failBench,
  kernelCallsOf,
  machine,
  median,
  quantile,
  reexecWithFdLimit,
  requireRoot,
  sleep,
  softFdLimit,
  withTimeout,
} from './common';
import { CriuResult, CriuStatus, criuStatus, runCriu } from './criu';
import { floorMigrate } from './floor';
import { handoffFloor } from './handoff-floor';
import { DEFAULT_COUNTS, PORT, QueueFill, SAMPLE, TICK_BYTES, TICK_MS, Workload, fillName, queueBytesIn } from './workload';

const ROOT = path.resolve(__dirname, '..', '..');
export const MIGRATION_RESULTS = path.join(ROOT, 'bench', 'results-migration.json');

/** The queue series: 1000 connections with these queues. */
const QUEUE_SERIES_N = 1000;
/**
 * The relay series: this many connections with full queues, relayed by the orchestrator (the largest of
 * --counts instead when they do not include it, so that the row has its direct twin in the full series).
 */
const RELAY_SERIES_N = 1000;
const QUEUE_SERIES_FILLS: QueueFill[] = [0, 16 * 1024, 256 * 1024, 'full'];
/** Light mode: how long the steady stream runs before measuring, and the window of the cadence baseline. */
const SETTLE_MS = 500;
const BASELINE_MS = 1000;
/** Light mode: how long the stream runs after the destination is live before the gaps are read. */
const AFTER_MS = 1500;
/** Open files a process needs at most: one per connection (the floor's rebuilt sockets), plus a margin. */
const fdNeed = (): number => Math.max(...parseCounts()) + 4096;
const REEXEC_ENV = 'SOCCRD_BENCH_MIGRATION_FD_RAISED';

/** Bound on one run, setup and check included: a run that hangs fails, and its processes are killed. */
const runBoundMs = (n: number): number => 180_000 + 30 * n;

/** Runs per row (each mover): fewer where one run moves hundreds of MiB. */
const runsFor = (n: number, series: SeriesName): number =>
  series === 'handoff' ? 3 : n >= 10_000 || series === 'queues' || series === 'relay' ? 1 : series === 'full' && n >= 1000 ? 2 : 3;

/** `--profile DIR`: the daemons write V8 CPU profiles there (bench/cpu-profile.ts), one per daemon and run. */
const profileDir = ((): string | undefined => {
  const i = process.argv.indexOf('--profile');
  return i >= 0 ? path.resolve(process.argv[i + 1] ?? 'bench/profiles') : undefined;
})();

export type SeriesName = 'full' | 'queues' | 'light' | 'relay' | 'handoff';
const SERIES: SeriesName[] = ['full', 'queues', 'light', 'relay', 'handoff'];
/** The hand-off series: this many connections (the largest of --counts when they do not include it), and the listener. */
const HANDOFF_SERIES_N = 1000;
export type Transport = MigrateReport['transport'];

/** Whether the daemon at `address` makes its kernel calls in batches (GetVersion features.nativeBatch). */
async function daemonNativeBatch(address: string): Promise<boolean> {
  const client = new SoccrClient(address, { timeoutMs: 10_000 });
  try {
    return (await client.getVersion()).features?.nativeBatch === true;
  } finally {
    client.close();
  }
}
export type Mover = 'soccrd' | 'floor';

// ---- one run -------------------------------------------------------------------------------------

export interface RunResult {
  mover: Mover;
  n: number;
  fill: QueueFill;
  freezeMs: number;
  totalMs: number;
  phases: Record<string, number>;
  /** queue bytes moved (the migrate report's, or the floor's own count) */
  queueBytes: number;
  /** the owner's receive and send queue bytes just before the hand-off (ss) */
  ownerRecvQueue: number;
  ownerSendQueue: number;
  /** soccrd runs with full queues: peak RSS (VmHWM) of the source and destination daemons right after the migration, KiB */
  peakRssKiB?: { source: number; destination: number };
  /** light mode, soccrd: the longest pause between received bytes at the clients, over the sampled connections (ms) */
  peerGapMaxMs?: number;
  peerGapMedianMs?: number;
  peerGapP99Ms?: number;
  sampled?: number;
  /** light: where the stall lies against the freeze (medians over the sample) */
  peerGapBeforeFreezeMs?: number;
  peerGapAfterLiveMs?: number;
  /** light: the same statistic in a window without migration: the stream's own cadence */
  baselineGapMs?: number;
  /** light: the peers' retransmission timeout (ss -ti rto, median over the sample), ms */
  peerRtoMs?: number;
  /** retransmissions by the peers during the run */
  peerRetrans: number;
  verifiedConnections: number;
  setupMs: number;
  /** soccrd runs: how the frames went (MigrateReport.transport) */
  transport?: Transport;
  /** whether the kernel calls went in batches through native/soccr_batch.c: each daemon's, or the floor's own process */
  nativeBatch: NativeBatchUse;
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

/**
 * Where a hand-off's freeze went, from the daemon's last `handed off` log line (ms): stopping the owner,
 * checking its fds (sockets handed over before the stop), taking them and the hand-over up to the ack
 * (when they were handed over again while it was stopped), up to "live" sent, and the daemon's own CPU
 * time in all that; `early` 1 when the sockets went before the stop. `stoppedAtUnixMs`: when the stop began.
 */
function handoffBreakdown(daemonOutput: string): { phases: Record<string, number>; stoppedAtUnixMs: number } {
  const line = daemonOutput
    .split('\n')
    .reverse()
    .find((l) => l.includes('"handed off"'));
  if (!line) return { phases: {}, stoppedAtUnixMs: NaN };
  const r = JSON.parse(line) as Record<string, unknown>;
  const ms = (k: string): number => (typeof r[k] === 'number' ? r[k] / 1000 : NaN);
  return {
    phases: {
      stop: ms('stopUs'),
      check: ms('checkUs'),
      take: ms('takeUs'),
      'deliver+ack': ms('deliverUs'),
      live: ms('liveUs'),
      'daemon CPU': ms('freezeCpuUs'),
      early: r.how === 'early' ? 1 : 0,
    },
    stoppedAtUnixMs: typeof r.stoppedAtUnixMs === 'number' ? r.stoppedAtUnixMs : NaN,
  };
}

/** Peak resident set (VmHWM) of a process, KiB. */
function peakRssKiB(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
  return m ? Number(m[1]) : NaN;
}

/**
 * A run that failed before anything moved (a daemon or fixture slow to start on a loaded machine): it
 * says nothing about the migration, and is tried again.
 */
class SetupFailure extends Error {}

/** `fn`'s failure as a SetupFailure. */
async function setup<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new SetupFailure(err instanceof Error ? err.message : String(err));
  }
}

/** How often a run whose set-up failed is tried again. */
const SETUP_ATTEMPTS = 3;

/**
 * `direct`: the destination daemon takes direct transfers (--data-listen on its LAN address). `handoff`:
 * one daemon, in A, and migrate() from it to itself (a hand-off, the listener included).
 */
function runOnce(mover: Mover, n: number, fill: QueueFill, dir: string, direct: boolean, handoff = false): Promise<RunResult> {
  return measured(async () => {
    const t0 = performance.now();
    const lan = Lan.create();
    const env = profileDir ? { NODE_OPTIONS: `--require ${path.join(__dirname, 'cpu-profile.js')}`, SOCCRD_CPU_PROFILE_DIR: profileDir } : undefined;
    const daemons = handoff
      ? mover === 'floor'
        ? undefined
        : await setup(async () => {
            const a = await DaemonProcess.start({ netns: lan.ns.A, args: ['--log-level', 'info'], env });
            return [a, a] as const;
          })
      : mover === 'soccrd'
        ? await setup(() =>
            Promise.all([
              DaemonProcess.start({ netns: lan.ns.A, args: ['--log-level', 'info'], env }),
              DaemonProcess.start({ netns: lan.ns.B, args: ['--log-level', 'info', ...(direct ? ['--data-listen', `${LAN_NODES.B.v4}:0`] : [])], env }),
            ]),
          )
        : undefined;
    const nativeBatch = daemons
      ? { source: await setup(() => daemonNativeBatch(daemons[0].address)), destination: await setup(() => daemonNativeBatch(daemons[1].address)) }
      : { source: N.batchPath().native, destination: N.batchPath().native };
    const w = await setup(() => Workload.start(lan, n, fill, dir, handoff));
    const light = fill === 'light';
    let rto = NaN;
    let baseline: number[] = [];
    let queued: { recv: number; send: number };
    if (light) {
      await w.startLight();
      await sleep(SETTLE_MS);
      rto = peerRtoMs(lan.ns.C);
      await w.clients.resetGaps();
      await sleep(BASELINE_MS);
      baseline = gapsOf(await w.clients.status(), w.stride);
      queued = queueBytesIn(lan.ns.A);
    } else {
      queued = await setup(() => w.fillQueues());
    }
    const setupMs = performance.now() - t0;

    const before = await w.clients.resetGaps();
    await w.handOff();
    let freezeMs: number;
    let totalMs: number;
    let queueBytes: number;
    let phases: Record<string, number> = {};
    let freezeStartUnix = NaN;
    let handoffStoppedAt = NaN;
    /** false: the hand-off floor, which leaves every socket with the old owner (nothing to verify) */
    let moved = true;
    let liveUnix = NaN;
    let peakRss: RunResult['peakRssKiB'];
    let transport: Transport | undefined;
    if (daemons) {
      const [a, b] = daemons;
      const report: MigrateReport = handoff
        ? await migrate({
            from: a.address,
            to: a.address,
            pid: w.server.pid,
            netns: lan.nsPath(lan.ns.A),
            deliverUnixPath: w.deliverPath,
            listeners: true,
            timeoutMs: 120_000,
          })
        : await migrate({
            from: a.address,
            to: b.address,
            pid: w.server.pid,
            netns: lan.nsPath(lan.ns.B),
            deliverUnixPath: w.deliverPath,
            beforeResume: lan.moveServiceCommand('A', 'B'),
            timeoutMs: 120_000,
          });
      // A hand-off passes the listener too.
      if (report.connections !== n + (handoff ? 1 : 0)) throw new Error(`N=${n}: migrate moved ${report.connections} connections`);
      const want: Transport = handoff ? 'handoff' : direct ? 'direct' : 'relay';
      if (report.transport !== want) throw new Error(`N=${n}: migrate used the ${report.transport} transport, ${want} was set up`);
      ({ freezeMs, totalMs, queueBytes, transport } = report);
      for (const p of report.phases) phases[p.name] = p.ms;
      if (handoff) {
        const b = handoffBreakdown(a.output);
        Object.assign(phases, b.phases);
        handoffStoppedAt = b.stoppedAtUnixMs;
      }
      const phase = (name: string): { startedAt: number; ms: number } => report.phases.find((p) => p.name === name) ?? { startedAt: NaN, ms: NaN };
      freezeStartUnix = phase(handoff ? 'handoff' : 'checkpoint+restore').startedAt;
      liveUnix = phase('resume-destination').startedAt + phase('resume-destination').ms;
      if (fill === 'full') peakRss = { source: peakRssKiB(a.pid), destination: peakRssKiB(b.pid) };
      if (handoff && processState(w.server.pid) !== 'T') throw new Error(`N=${n}: the old owner is not stopped after the hand-off`);
    } else if (handoff) {
      // The floor: the same kernel work in C on the same owner, which it continues afterwards.
      const f = handoffFloor(w.server.pid);
      if (f.sockets !== n + 1) throw new Error(`N=${n}: the hand-off floor took ${f.sockets} sockets`);
      ({ freezeMs, phases } = f);
      totalMs = freezeMs;
      queueBytes = 0;
      moved = false;
    } else {
      const startUnix = Date.now();
      const f = await floorMigrate({
        pid: w.server.pid,
        destNetns: lan.nsPath(lan.ns.B),
        deliverPath: w.deliverPath,
        hook: lan.moveServiceCommand('A', 'B'),
        lockTable: `soccrfloor${process.pid}`,
      });
      if (f.connections !== n) throw new Error(`N=${n}: the floor moved ${f.connections} connections`);
      ({ freezeMs, queueBytes } = f);
      totalMs = freezeMs;
      phases = { ...f.phases };
      freezeStartUnix = startUnix;
      liveUnix = startUnix + freezeMs;
    }
    if (moved) {
      const live = await w.receiver.waitEvent('handover-live', 60_000);
      // The freeze as the new owner saw it: from the daemon's stop to its reading "live" (its own clock).
      const liveAt = (live as { liveAtUnixMs?: unknown }).liveAtUnixMs;
      if (handoff && typeof liveAt === 'number') phases['new owner live'] = liveAt - handoffStoppedAt;
    }
    let gaps: Partial<RunResult> = {};
    if (light) {
      await sleep(AFTER_MS);
      const after = await w.clients.status();
      const g = gapsOf(after, w.stride);
      const sampled = after.connections.filter((c) => c.index % w.stride === 0 && c.maxGapEndUnixMs > 0);
      gaps = {
        peerGapMaxMs: Math.max(...g),
        peerGapMedianMs: median(g),
        peerGapP99Ms: quantile(g, 0.99),
        sampled: g.length,
        peerGapBeforeFreezeMs: median(sampled.map((c) => freezeStartUnix - (c.maxGapEndUnixMs - c.maxGapMs))),
        peerGapAfterLiveMs: median(sampled.map((c) => c.maxGapEndUnixMs - liveUnix)),
        baselineGapMs: Math.max(...baseline),
        peerRtoMs: rto,
      };
    }
    // Exactness: everything read on both sides, fresh bytes both ways, every connection checked.
    const cs = moved ? (await w.verify(60_000 + 10 * n + queueBytes / 20_000)).clients : undefined;
    return {
      mover,
      n,
      fill,
      freezeMs,
      totalMs,
      phases,
      queueBytes,
      ownerRecvQueue: queued.recv,
      ownerSendQueue: queued.send,
      peakRssKiB: peakRss,
      ...gaps,
      peerRetrans: cs ? cs.totals.totalRetrans - before.totals.totalRetrans : 0,
      verifiedConnections: cs ? n : 0,
      setupMs,
      transport,
      nativeBatch,
    };
  });
}

// ---- driver --------------------------------------------------------------------------------------

/** Medians over a mover's runs. */
export interface MoverSummary {
  runs: number;
  freezeMs: number;
  totalMs: number;
  phases: Record<string, number>;
  queueBytes: number;
  /** the transports the runs used ('direct', 'relay'; the floor: none) */
  transports: Transport[];
  /** the kernel-call path of the runs: batched (native/soccr_batch.c), per-call, or mixed */
  kernelCalls: KernelCalls;
}

export interface MigrationRow {
  series: SeriesName;
  n: number;
  fill: QueueFill;
  soccrd: MoverSummary;
  floor?: MoverSummary;
  /** soccrd's freeze / the floor's (medians) */
  floorRatio?: number;
  criu?: CriuResult & { ratio: number; problems: string[] };
  /** why CRIU has no figure here, when it was tried */
  criuError?: string;
  /** full queues: peak RSS of the daemons (largest over the runs), KiB */
  peakRssKiB?: { source: number; destination: number };
  /** light mode: medians of the peer-side figures */
  peerGapMaxMs?: number;
  peerGapMedianMs?: number;
  peerGapBeforeFreezeMs?: number;
  peerGapAfterLiveMs?: number;
  baselineGapMs?: number;
  peerRtoMs?: number;
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
  /** runs that were not exact (or failed otherwise): the bench exits non-zero when there are any */
  failures: string[];
  /** false while rows are still to come (a bench stopped by its time bound leaves it so) */
  complete: boolean;
  elapsedSeconds: number;
  /** 1-minute load average when the results were last written (machine.loadAverage: at the start) */
  loadAverageEnd: number;
}

function parseList(flag: string): string[] | undefined {
  const i = process.argv.indexOf(flag);
  if (i < 0) return undefined;
  return (process.argv[i + 1] ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x);
}

function parseCounts(): number[] {
  const given = parseList('--counts');
  if (!given) return DEFAULT_COUNTS;
  const counts = given.map(Number);
  if (counts.length === 0 || counts.some((c) => !Number.isInteger(c) || c < 1 || c > 30_000)) {
    throw new BenchSetupError(`--counts takes a comma-separated list of connection counts from 1 to 30000, not ${given.join(',')}`);
  }
  return counts;
}

function parseSeries(): SeriesName[] {
  const given = parseList('--series');
  if (!given) return SERIES;
  const bad = given.filter((x) => !(SERIES as string[]).includes(x));
  if (bad.length || given.length === 0) throw new BenchSetupError(`--series takes a comma-separated list of ${SERIES.join(', ')}, not ${given.join(',')}`);
  return given as SeriesName[];
}

function parseRuns(): number | undefined {
  const i = process.argv.indexOf('--runs');
  if (i < 0) return undefined;
  const r = Number(process.argv[i + 1]);
  if (!Number.isInteger(r) || r < 1 || r > 20) throw new BenchSetupError(`--runs takes 1..20, not ${process.argv[i + 1]}`);
  return r;
}

const fmt = (x: number | undefined, d = 1): string => (x !== undefined && Number.isFinite(x) ? x.toFixed(d) : '-');
const mib = (b: number): string => fmt(b / 2 ** 20, 1);

function summarize(runs: RunResult[]): MoverSummary {
  const med = (f: (r: RunResult) => number): number => median(runs.map(f));
  const phases: Record<string, number> = {};
  for (const name of Object.keys(runs[0].phases)) phases[name] = med((r) => r.phases[name] ?? NaN);
  const transports = [...new Set(runs.flatMap((r) => (r.transport ? [r.transport] : [])))];
  return {
    runs: runs.length,
    freezeMs: med((r) => r.freezeMs),
    totalMs: med((r) => r.totalMs),
    phases,
    queueBytes: med((r) => r.queueBytes),
    transports,
    kernelCalls: kernelCallsOf(runs),
  };
}

function describeRun(r: RunResult): string {
  const phases = Object.entries(r.phases)
    .map(([k, v]) => `${k} ${fmt(v)}`)
    .join(', ');
  const rss = r.peakRssKiB ? `, peak RSS ${fmt(r.peakRssKiB.source / 1024, 0)}/${fmt(r.peakRssKiB.destination / 1024, 0)} MiB` : '';
  const gap = r.peerGapMaxMs !== undefined ? `, peer gap max ${fmt(r.peerGapMaxMs)} ms (cadence ${fmt(r.baselineGapMs)})` : '';
  const how = `${r.transport ? `${r.transport}, ` : ''}${kernelCallsOf([r])} kernel calls`;
  return `${how}: freeze ${fmt(r.freezeMs)} ms (${phases}), ${mib(r.queueBytes)} MiB queued (owner recv ${mib(r.ownerRecvQueue)}, send ${mib(r.ownerSendQueue)})${rss}${gap}, ${r.verifiedConnections ? `all ${r.verifiedConnections} exact` : 'no migration (the owner continued)'}`;
}

/** Runs one row: soccrd and floor runs alternating (light: soccrd only), then CRIU where wanted. */
async function measureRow(
  series: SeriesName,
  n: number,
  fill: QueueFill,
  runs: number,
  dir: string,
  criu: CriuStatus,
  failures: string[],
): Promise<MigrationRow | undefined> {
  const label = `${series} N=${n} ${fillName(fill)}`;
  const movers: Mover[] = fill === 'light' || series === 'relay' ? ['soccrd'] : ['soccrd', 'floor'];
  const direct = series !== 'relay';
  const perRun: RunResult[] = [];
  for (let r = 0; r < runs; r++) {
    for (const mover of movers) {
      try {
        let res: RunResult | undefined;
        for (let attempt = 1; !res; attempt++) {
          try {
            res = await withTimeout(runOnce(mover, n, fill, dir, direct, series === 'handoff'), runBoundMs(n), `${label} ${mover} run ${r + 1}`);
          } catch (err) {
            if (!(err instanceof SetupFailure) || attempt >= SETUP_ATTEMPTS) throw err;
            process.stdout.write(`${label} ${mover} run ${r + 1}: set-up failed (${err.message.split('\n')[0].slice(0, 200)}), trying again\n`);
          }
        }
        perRun.push(res);
        process.stdout.write(`${label} ${mover} run ${r + 1}/${runs}: ${describeRun(res)}\n`);
      } catch (err) {
        const msg = `${label} ${mover} run ${r + 1}: ${err instanceof Error ? err.message : String(err)}`;
        failures.push(msg);
        process.stdout.write(`FAILED ${msg}\n`);
        await cleanupAll(); // a run that timed out still has its processes
      }
    }
  }
  const soccrdRuns = perRun.filter((r) => r.mover === 'soccrd');
  const floorRuns = perRun.filter((r) => r.mover === 'floor');
  if (soccrdRuns.length === 0) return undefined;
  const row: MigrationRow = { series, n, fill, soccrd: summarize(soccrdRuns), perRun };
  if (floorRuns.length) {
    row.floor = summarize(floorRuns);
    row.floorRatio = row.soccrd.freezeMs / row.floor.freezeMs;
  }
  const rss = soccrdRuns.filter((r) => r.peakRssKiB).map((r) => r.peakRssKiB as { source: number; destination: number });
  if (rss.length) row.peakRssKiB = { source: Math.max(...rss.map((x) => x.source)), destination: Math.max(...rss.map((x) => x.destination)) };
  if (fill === 'light') {
    const med = (f: (r: RunResult) => number | undefined): number => median(soccrdRuns.map((r) => f(r) ?? NaN));
    Object.assign(row, {
      peerGapMaxMs: med((r) => r.peerGapMaxMs),
      peerGapMedianMs: med((r) => r.peerGapMedianMs),
      peerGapBeforeFreezeMs: med((r) => r.peerGapBeforeFreezeMs),
      peerGapAfterLiveMs: med((r) => r.peerGapAfterLiveMs),
      baselineGapMs: med((r) => r.baselineGapMs),
      peerRtoMs: med((r) => r.peerRtoMs),
    });
  }
  process.stdout.write(
    `${label}: soccrd freeze ${fmt(row.soccrd.freezeMs)} ms${row.floor ? `, floor ${fmt(row.floor.freezeMs)} ms: ${fmt(row.floorRatio, 2)}x the floor` : ''}\n`,
  );
  if (series === 'full' && criu.usable) {
    try {
      const c = await withTimeout(runCriu(n, dir), 2 * runBoundMs(n), `${label} CRIU`);
      row.criu = { ...c, ratio: c.totalMs / row.soccrd.freezeMs };
      process.stdout.write(
        `${label} CRIU: dump ${fmt(c.dumpMs)} ms + restore ${fmt(c.restoreMs)} ms = ${fmt(c.totalMs)} ms (${mib(c.queueBytes)} MiB queued), ${fmt(row.criu.ratio, 2)}x soccrd's freeze, ${c.exact ? 'exact' : `NOT exact: ${c.problems.slice(0, 3).join('; ')}`}\n`,
      );
    } catch (err) {
      row.criuError = err instanceof Error ? err.message : String(err);
      await cleanupAll();
      process.stdout.write(`${label} CRIU failed: ${row.criuError}\n`);
    }
  }
  return row;
}

async function main(): Promise<void> {
  requireRoot();
  const counts = parseCounts();
  const series = parseSeries();
  const forcedRuns = parseRuns();
  if (softFdLimit() < fdNeed()) throw new BenchSetupError(`the open-file limit ${softFdLimit()} is too low for ${Math.max(...counts)} connections`);
  const started = Date.now();
  const host = machine();
  const criu = criuStatus();
  process.stdout.write(criu.usable ? `CRIU: ${criu.version}, check passed: compared\n` : `CRIU: ${criu.version}: ${criu.reason}; the CRIU column is skipped\n`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'soccrd-bench-'));
  const rows: MigrationRow[] = [];
  const failures: string[] = [];
  const plan: Array<{ series: SeriesName; n: number; fill: QueueFill }> = [];
  for (const s of series) {
    if (s === 'queues') {
      for (const fill of QUEUE_SERIES_FILLS)
        if (!(fill === 'full' && series.includes('full') && counts.includes(QUEUE_SERIES_N))) plan.push({ series: s, n: QUEUE_SERIES_N, fill });
    } else if (s === 'relay') plan.push({ series: s, n: counts.includes(RELAY_SERIES_N) ? RELAY_SERIES_N : Math.max(...counts), fill: 'full' });
    else if (s === 'handoff') plan.push({ series: s, n: counts.includes(HANDOFF_SERIES_N) ? HANDOFF_SERIES_N : Math.max(...counts), fill: 'full' });
    else for (const n of counts) plan.push({ series: s, n, fill: s === 'full' ? 'full' : 'light' });
  }
  // Written after every row, so that a bench stopped by its time bound still reports what it measured.
  const save = (complete: boolean): MigrationResults => {
    const results: MigrationResults = {
      machine: host,
      command: `node dist/bench/migration.js${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}`,
      criu,
      sample: SAMPLE,
      tickMs: TICK_MS,
      tickBytes: TICK_BYTES,
      rows,
      failures,
      complete,
      elapsedSeconds: (Date.now() - started) / 1000,
      loadAverageEnd: Math.round(os.loadavg()[0] * 100) / 100,
    };
    writeFileSync(MIGRATION_RESULTS, `${JSON.stringify(results, null, 2)}\n`);
    return results;
  };
  let results: MigrationResults;
  try {
    for (const p of plan) {
      const row = await measureRow(p.series, p.n, p.fill, forcedRuns ?? runsFor(p.n, p.series), dir, criu, failures);
      if (row) rows.push(row);
      save(false);
    }
    results = save(true);
  } finally {
    await cleanupAll();
    rmSync(dir, { recursive: true, force: true });
  }
  printTable(results);
  if (failures.length) throw new Error(`${failures.length} runs failed or were not exact:\n  ${failures.join('\n  ')}`);
}

function printTable(r: MigrationResults): void {
  const out: string[] = [''];
  out.push('migration: medians of runs; ratio = soccrd freeze / floor freeze (same workload, same run)');
  out.push(
    `${'series'.padEnd(8)}${'path'.padStart(8)}${'N'.padStart(6)}${'queues'.padStart(9)}${'MiB'.padStart(8)}${'runs'.padStart(6)}${'freeze ms'.padStart(11)}${'floor ms'.padStart(10)}${'ratio'.padStart(8)}${'CRIU ms'.padStart(10)}${'CRIU/soccrd'.padStart(13)}${'RSS src/dst MiB'.padStart(17)}`,
  );
  for (const row of r.rows) {
    const rss = row.peakRssKiB ? `${fmt(row.peakRssKiB.source / 1024, 0)}/${fmt(row.peakRssKiB.destination / 1024, 0)}` : '-';
    out.push(
      `${row.series.padEnd(8)}${(row.soccrd.transports.join('+') || '-').padStart(8)}${String(row.n).padStart(6)}${fillName(row.fill).padStart(9)}${mib(row.soccrd.queueBytes).padStart(8)}${String(row.soccrd.runs).padStart(6)}${fmt(row.soccrd.freezeMs).padStart(11)}${fmt(row.floor?.freezeMs).padStart(10)}` +
        `${(row.floorRatio ? `${fmt(row.floorRatio, 2)}x` : '-').padStart(8)}${(row.criu ? fmt(row.criu.totalMs) : '-').padStart(10)}${(row.criu ? `${fmt(row.criu.ratio, 2)}x` : '-').padStart(13)}${rss.padStart(17)}`,
    );
  }
  const callsOf = (mover: Mover): string => {
    const runs = r.rows.flatMap((x) => x.perRun.filter((p) => p.mover === mover));
    return runs.length ? kernelCallsOf(runs) : '-';
  };
  out.push(
    `kernel calls: soccrd daemons ${callsOf('soccrd')}, floor ${callsOf('floor')}; load average ${r.machine.loadAverage} at the start, ${r.loadAverageEnd} at the end`,
  );
  if (!r.criu.usable) out.push(`CRIU not compared: ${r.criu.reason}`);
  out.push(`results written to ${path.relative(process.cwd(), MIGRATION_RESULTS) || MIGRATION_RESULTS}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

cleanupOnSignals();

if (require.main === module) {
  let status: number | undefined;
  try {
    status = reexecWithFdLimit(__filename, fdNeed(), REEXEC_ENV);
  } catch (err) {
    failBench('bench:migration', err);
  }
  if (status !== undefined) process.exitCode = status;
  else
    main().then(
      () => process.exit(0),
      (err: unknown) => cleanupAll().finally(() => failBench('bench:migration', err)),
    );
}
