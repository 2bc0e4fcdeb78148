// Writes bench/RESULTS.md and bench/freeze.svg from the raw results the benches left
// (bench/results-{engine,queues,migration}.json). Run by bench/run.ts after the benches; on its own
// (`node dist/bench/report.js`) it renders the last results again.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Machine } from './common';
import { kernelCallsOf } from './common';
import type { NativeBatchUse } from './common';
import type { MigrationResults, MigrationRow } from './migration';
import { DEFAULT_COUNTS, fillName } from './workload';
import type { QueueResults } from './queues';

const ROOT = path.resolve(__dirname, '..', '..');
export const RESULTS_MD = path.join(ROOT, 'bench', 'RESULTS.md');
export const FREEZE_SVG = path.join(ROOT, 'bench', 'freeze.svg');
export const RAW = {
  engine: path.join(ROOT, 'bench', 'results-engine.json'),
  queues: path.join(ROOT, 'bench', 'results-queues.json'),
  migration: path.join(ROOT, 'bench', 'results-migration.json'),
};

/** The goals of issue 10 (freeze time at scale). */
const GOAL_FLOOR_FACTOR = 1.5;
const GOAL_FLOOR_NS = [100, 1000];
const GOAL_LIGHT_N = 1000;
const GOAL_FREEZE_MS = 200;
const GOAL_ENGINE_FACTOR = 3;
const GOAL_STREAM_FACTOR = 0.8;
const GOAL_RSS_N = 1000;
const GOAL_STALL_MS = 50;
/** Issue 13: a same-host hand-off of 1000 connections and a listener. */
const GOAL_HANDOFF_MS = 20;

interface EnginePhase {
  soccrdUsPerConn: number;
  baselineUsPerConn: number;
  ratio: number;
  ffiCallsPerConn: number;
  /** kernel calls made inside batches (several per FFI call with the batch library) */
  batchedKernelCallsPerConn?: number;
}
interface EngineResults {
  date: string;
  /** which path the engine's kernel calls took (daemon/kernel/native.ts batchPath()) */
  kernelCallPath?: { native: boolean; reason: string };
  ffiCost: { soccrdNsPerCall: number; baselineNsPerCall: number; overheadUsPerCall: number };
  callSequence: { status: string };
  rows: Array<{ n: number; reps: number; rounds: number; checkpoint: EnginePhase; restore: EnginePhase; verified: string }>;
  /** the daemon's checkpoint path: every socket frozen, one socket-diagnostics lookup, then each saved */
  diagCheckpoint?: { n: number; rounds: number; usPerConn: number; ffiCallsPerConn: number };
}

/** A raw results file, as the bench that wrote it left it, or undefined if that bench did not run. */
function load(file: string): unknown {
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : undefined;
}

const f = (x: number | undefined, d = 1): string => (x !== undefined && Number.isFinite(x) ? x.toFixed(d) : '–');
/** A count per connection: whole numbers as such, fractions (a batch shared by many connections) to two significant digits. */
function calls(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x) || Math.abs(x - Math.round(x)) < 0.005) return f(x, 0);
  return x >= 1 ? x.toFixed(2) : String(Number(x.toPrecision(2)));
}

/** The engine bench's kernel-call path, in words. */
function engineCallPath(e: EngineResults): string {
  if (!e.kernelCallPath) return 'path not recorded';
  return e.kernelCallPath.native ? `batched (native/soccr_batch.c: ${e.kernelCallPath.reason})` : `one FFI call each (${e.kernelCallPath.reason})`;
}

/** A kernel-call path of runs, in words. */
function callPathWords(runs: ReadonlyArray<{ nativeBatch: NativeBatchUse }>): string {
  if (runs.length === 0) return 'no runs';
  const k = kernelCallsOf(runs);
  return k === 'batched'
    ? 'batched (native/soccr_batch.c)'
    : k === 'per-call'
      ? 'one FFI call per kernel call (the fallback)'
      : 'mixed: batched in some processes, per call in others';
}

/** The transports a set of rows used, in words. */
function transportWords(rows: readonly MigrationRow[]): string {
  const t = [...new Set(rows.flatMap((r) => r.perRun.flatMap((x) => (x.transport ? [x.transport] : []))))];
  return t.length ? t.join(' and ') : 'not recorded';
}
const ms = (x: number | undefined): string => f(x, x !== undefined && x >= 100 ? 0 : 1);

// ---- the plot ------------------------------------------------------------------------------------

interface Series {
  name: string;
  color: string;
  dash?: string;
  points: Array<[number, number]>;
}

/** A small log-log plot of freeze time against N, hand-written SVG. */
export function freezeSvg(rows: MigrationRow[]): string {
  const W = 640;
  const H = 340;
  const L = 64;
  const R = 210;
  const T = 28;
  const B = 44;
  const full = rows.filter((r) => r.series === 'full');
  const light = rows.filter((r) => r.series === 'light');
  const all: Series[] = [
    { name: 'soccrd freeze, full queues', color: '#1f77b4', points: full.map((r) => [r.n, r.soccrd.freezeMs]) },
    {
      name: 'floor (one process), full queues',
      color: '#9467bd',
      dash: '5 3',
      points: full.filter((r) => r.floor).map((r) => [r.n, r.floor?.freezeMs ?? NaN]),
    },
    { name: 'CRIU dump + restore, full queues', color: '#2ca02c', points: full.filter((r) => r.criu).map((r) => [r.n, r.criu?.totalMs ?? NaN]) },
    { name: 'soccrd freeze, light load', color: '#ff7f0e', points: light.map((r) => [r.n, r.soccrd.freezeMs]) },
    { name: 'peer stall, light load', color: '#d62728', dash: '2 2', points: light.map((r) => [r.n, r.peerGapMaxMs ?? NaN]) },
  ];
  const series = all.filter((x) => x.points.length > 0);
  const xs = rows.map((r) => r.n);
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter((y) => y > 0 && Number.isFinite(y));
  const xMin = 1;
  const xMax = 10 ** Math.max(1, Math.ceil(Math.log10(Math.max(...xs, 10))));
  const yMin = 10 ** Math.min(1, Math.floor(Math.log10(Math.min(...ys, GOAL_FREEZE_MS))));
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...ys, GOAL_FREEZE_MS * 2)));
  const px = (x: number): number => L + ((Math.log10(x) - Math.log10(xMin)) / (Math.log10(xMax) - Math.log10(xMin))) * (W - L - R);
  const py = (y: number): number => H - B - ((Math.log10(y) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * (H - T - B);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${L}" y="16" font-size="13" font-weight="bold">soccrd migration: freeze time against connections moved</text>`);
  for (let e = Math.log10(xMin); e <= Math.log10(xMax); e++) {
    const x = px(10 ** e).toFixed(1);
    out.push(`<line x1="${x}" y1="${T}" x2="${x}" y2="${H - B}" stroke="#ddd"/>`);
    out.push(`<text x="${x}" y="${H - B + 14}" text-anchor="middle">${(10 ** e).toLocaleString('en-US')}</text>`);
  }
  for (let e = Math.log10(yMin); e <= Math.log10(yMax); e++) {
    const y = py(10 ** e).toFixed(1);
    out.push(`<line x1="${L}" y1="${y}" x2="${W - R}" y2="${y}" stroke="#ddd"/>`);
    const label = 10 ** e >= 1000 ? `${10 ** (e - 3)} s` : `${10 ** e} ms`;
    out.push(`<text x="${L - 6}" y="${(Number(y) + 4).toFixed(1)}" text-anchor="end">${label}</text>`);
  }
  out.push(`<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle">connections migrated (N, log scale)</text>`);
  out.push(`<text transform="translate(14 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">time (log scale)</text>`);
  // The goal: GOAL_FREEZE_MS at GOAL_N.
  const gx = px(GOAL_LIGHT_N);
  const gy = py(GOAL_FREEZE_MS);
  out.push(
    `<path d="M ${(gx - 6).toFixed(1)} ${(gy - 6).toFixed(1)} L ${(gx + 6).toFixed(1)} ${(gy + 6).toFixed(1)} M ${(gx - 6).toFixed(1)} ${(gy + 6).toFixed(1)} L ${(gx + 6).toFixed(1)} ${(gy - 6).toFixed(1)}" stroke="#555" stroke-width="2"/>`,
  );
  out.push(`<text x="${(gx + 8).toFixed(1)}" y="${(gy + 14).toFixed(1)}" fill="#555">goal ${GOAL_FREEZE_MS} ms (light)</text>`);
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => p[1] > 0 && Number.isFinite(p[1]));
    if (pts.length) {
      out.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} points="${pts.map((p) => `${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(' ')}"/>`,
      );
      for (const p of pts) out.push(`<circle cx="${px(p[0]).toFixed(1)}" cy="${py(p[1]).toFixed(1)}" r="3" fill="${s.color}"/>`);
    }
    const ly = T + 10 + 16 * i;
    out.push(
      `<line x1="${W - R + 10}" y1="${ly}" x2="${W - R + 26}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`,
    );
    out.push(`<text x="${W - R + 30}" y="${ly + 4}" font-size="10">${s.name}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

// ---- RESULTS.md ----------------------------------------------------------------------------------

function machineSection(mig: MigrationResults | undefined, q: QueueResults | undefined, e: EngineResults | undefined, commands: string[]): string[] {
  const out = ['## Machine', ''];
  const m: Machine | undefined = mig?.machine ?? q?.machine;
  if (m) {
    out.push(`- Kernel: ${m.kernel}`);
    out.push(`- CPU: ${m.cpu}, ${m.cores} cores; ${m.memoryGiB} GiB memory`);
    out.push(`- Node.js: ${m.node}`);
    out.push(`- Date: ${m.date}`);
  }
  const loads = [
    q ? `${q.machine.loadAverage} when the queue bench started` : undefined,
    mig
      ? `${mig.machine.loadAverage} when the migration bench started${mig.loadAverageEnd !== undefined ? `, ${mig.loadAverageEnd} when it ended` : ''}`
      : undefined,
  ].filter((x): x is string => x !== undefined);
  if (loads.length)
    out.push(
      `- Machine load (1-minute load average): ${loads.join('; ')}. Other work on the machine shows in every figure; on ${m?.cores ?? 2} cores a load near or above ${m?.cores ?? 2} means the figures are not those of a quiet machine.`,
    );
  if (e) out.push(`- Kernel calls, engine bench: ${engineCallPath(e)}`);
  if (mig) {
    const runs = mig.rows.flatMap((r) => r.perRun);
    out.push(
      `- Kernel calls, migration bench (GetVersion features.nativeBatch of both daemons, every run): the daemons ${callPathWords(runs.filter((r) => r.mover === 'soccrd' && r.nativeBatch))}; the floor ${callPathWords(runs.filter((r) => r.mover === 'floor' && r.nativeBatch))}`,
    );
    const main = mig.rows.filter((r) => r.series !== 'relay');
    const relayRows = mig.rows.filter((r) => r.series === 'relay');
    out.push(
      `- Transport of the migrations' frames (MigrateReport.transport): ${transportWords(main)} in the ${[...new Set(main.map((r) => r.series))].join(', ')} series${relayRows.length ? `; ${transportWords(relayRows)} in the relay series` : ''}`,
    );
  }
  out.push('', '## Commands', '', '```sh', ...commands, '```', '');
  return out;
}

function engineSection(e: EngineResults | undefined): string[] {
  const out = ['## Engine: checkpoint and restore per connection (bench/engine.ts)', ''];
  if (!e) return [...out, 'Not run (or failed) in this run.', ''];
  out.push(
    `Loopback connections with 100 unread bytes each way; soccrd's engine through ffi-rs against \`bench/baseline.c\`, the same kernel calls in C (ratio = soccrd / C, lower is better). Kernel calls in this run: ${engineCallPath(e)}.`,
    '',
  );
  out.push(
    '| N | checkpoint µs/conn | C µs/conn | ratio | restore µs/conn | C µs/conn | ratio | FFI calls/conn (cp + rs) | kernel calls in batches/conn (cp + rs) |',
  );
  out.push('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of e.rows) {
    out.push(
      `| ${r.n}${r.reps > 1 ? ` (median of ${r.reps})` : ` (median of ${r.rounds} runs)`} | ${f(r.checkpoint.soccrdUsPerConn)} | ${f(r.checkpoint.baselineUsPerConn)} | ${f(r.checkpoint.ratio, 1)}x | ${f(r.restore.soccrdUsPerConn)} | ${f(r.restore.baselineUsPerConn)} | ${f(r.restore.ratio, 1)}x | ${calls(r.checkpoint.ffiCallsPerConn)} + ${calls(r.restore.ffiCallsPerConn)} | ${calls(r.checkpoint.batchedKernelCallsPerConn)} + ${calls(r.restore.batchedKernelCallsPerConn)} |`,
    );
  }
  out.push('');
  const big = e.rows[e.rows.length - 1];
  const share = (p: EnginePhase): string =>
    f((100 * p.ffiCallsPerConn * e.ffiCost.overheadUsPerCall) / Math.max(1e-9, p.soccrdUsPerConn - p.baselineUsPerConn), 0);
  out.push(
    `A plain kernel call costs ${f(e.ffiCost.soccrdNsPerCall / 1000, 2)} µs as one FFI call through ffi-rs against ${f(e.ffiCost.baselineNsPerCall / 1000, 2)} µs in C: an overhead of ${f(e.ffiCost.overheadUsPerCall, 2)} µs per FFI call (a batch pays it once for all its kernel calls). ` +
      `At N=${big.n}, FFI calls × that overhead come to ${share(big.checkpoint)}% of the checkpoint's gap to C and ${share(big.restore)}% of the restore's${Number(share(big.checkpoint)) > 100 || Number(share(big.restore)) > 100 ? " (over 100%: the loop measure and the bench's calls differ in cost)" : ''}. Kernel call sequence against the baseline: ${e.callSequence.status}.`,
    '',
  );
  const d = e.diagCheckpoint;
  if (d) {
    out.push(
      `With socket diagnostics, as the daemon saves: every socket frozen, all looked up at once (daemon/kernel/sockdiag.ts: state, queue lengths, addresses, congestion control, buffer sizes, TOS and mark for many sockets per netlink round trip), and saved with that answer (here all in one batch; the daemon saves each socket in a batch of its own as its turn in the stream comes, one or two FFI calls more per connection). ` +
        `At N=${d.n}: ${f(d.usPerConn)} µs and ${calls(d.ffiCallsPerConn)} FFI calls per connection (median of ${d.rounds} runs), against ${f(big.checkpoint.soccrdUsPerConn)} µs and ${calls(big.checkpoint.ffiCallsPerConn)} FFI calls above: ${f(d.usPerConn / big.checkpoint.baselineUsPerConn, 1)}x the C baseline.`,
      '',
    );
  }
  return out;
}

function queuesSection(q: QueueResults | undefined): string[] {
  const out = ['## Full queues: one connection through Checkpoint and Restore (bench/queues.ts)', ''];
  if (!q) return [...out, 'Not run (or failed) in this run.', ''];
  const r0 = q.rounds[0];
  out.push(
    `One connection with ${f(r0.recvQueue / 2 ** 20)} MiB in its receive queue and ${f(r0.sendQueue / 2 ** 20)} MiB in its send queue (16 MiB buffers; ${f(q.queueBytes / 2 ** 20)} MiB in all, in chunks of at most 1 MiB). ` +
      'Checkpoint = the time from the call to the end of the stream out of daemon A (freeze, network lock and queue reads included); Restore = the time to stream the same frames into daemon B and get the held session back (checksums verified, socket rebuilt). ' +
      `Baseline: plain grpc-js in a process of its own streaming chunks of the same sizes over a Unix socket, no protobuf. Median of ${q.rounds.length} rounds; ratio = soccrd / grpc-js (higher is better, 1 = as fast as plain grpc-js).`,
    '',
  );
  out.push('| stream | soccrd MiB/s | plain grpc-js MiB/s | ratio |', '| --- | ---: | ---: | ---: |');
  out.push(`| Checkpoint (server stream out of daemon A) | ${f(q.checkpointMiBps)} | ${f(q.grpcDownMiBps)} | ${f(q.checkpointRatio, 2)}x |`);
  out.push(`| Restore (client stream into daemon B) | ${f(q.restoreMiBps)} | ${f(q.grpcUpMiBps)} | ${f(q.restoreRatio, 2)}x |`);
  out.push('', 'After each round the restore is aborted, the source resumed and the link restored: both streams arrive exactly (every byte checked).', '');
  return out;
}

const mib = (b: number | undefined): string => (b === undefined ? '–' : f(b / 2 ** 20, b >= 10 * 2 ** 20 ? 0 : 1));
const ratio = (x: number | undefined): string => (x !== undefined && Number.isFinite(x) ? `${f(x, 2)}x` : '–');

function rowTable(rows: MigrationRow[], withCriu: boolean): string[] {
  const out: string[] = [];
  out.push(
    `| N | queues | queue MiB moved | runs | soccrd freeze ms | checkpoint+restore | hook | resume-destination | floor freeze ms | floor save+rebuild | **soccrd / floor** |${withCriu ? ' CRIU dump + restore ms | **CRIU / soccrd** |' : ''}`,
  );
  out.push(`| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |${withCriu ? ' ---: | ---: |' : ''}`);
  for (const r of rows) {
    const p = (k: string): string => ms(r.soccrd.phases[k]);
    const criu = r.criu
      ? `${ms(r.criu.totalMs)} (${ms(r.criu.dumpMs)} + ${ms(r.criu.restoreMs)})${r.criu.exact ? '' : ', not exact'} | ${ratio(r.criu.ratio)}`
      : `${r.criuError ? 'failed' : '–'} | –`;
    out.push(
      `| ${r.n} | ${fillName(r.fill)} | ${mib(r.soccrd.queueBytes)} | ${r.soccrd.runs} | **${ms(r.soccrd.freezeMs)}** | ${p('checkpoint+restore')} | ${p('hook')} | ${p('resume-destination')} | ${ms(r.floor?.freezeMs)} | ${ms(r.floor?.phases['save+rebuild'])} | **${ratio(r.floorRatio)}** |${withCriu ? ` ${criu} |` : ''}`,
    );
  }
  return out;
}

function migrationSection(m: MigrationResults | undefined): string[] {
  const out = ['## Live migration of N connections (bench/migration.ts)', ''];
  if (!m) return [...out, 'Not run (or failed) in this run.', ''];
  out.push(
    'Two soccrd daemons in network namespaces A and B of a test LAN (a bridge; the peers in namespace C; the service address moved from A to B by the hook, with gratuitous ARP), ' +
      '`migrate()` from client/migrate.ts moving every connection of one process in A to a new owner process in B (bench/workload.ts). ' +
      'After every run all N connections are checked exact both ways: the new owner and the peers read everything that was queued, fresh bytes go both ways, every byte is checked against deterministic streams (no loss, no duplicate, no corruption, no RST, no FIN); a run that is not exact fails the bench.',
    '',
  );
  out.push(
    '- **soccrd freeze**: `MigrateReport.freezeMs`, from the Checkpoint call to the destination live (its phases follow; release-source runs after the freeze).',
  );
  out.push(
    `- **transport**: the destination daemon is started with \`--data-listen\` on its LAN address, as a user who configured direct transfers runs it, so \`migrate()\` sends the frames from daemon to daemon; this run's migrations used: ${transportWords(m.rows.filter((r) => r.series !== 'relay'))}.${m.rows.some((r) => r.series === 'relay') ? ' The relay series repeats one full-queue row with the frames relayed through the orchestrator (destination without `--data-listen`).' : ''}`,
  );
  out.push(
    `- **kernel calls**: the daemons' ${callPathWords(m.rows.flatMap((r) => r.perRun.filter((x) => x.mover === 'soccrd' && x.nativeBatch)))}; the floor's ${callPathWords(m.rows.flatMap((r) => r.perRun.filter((x) => x.mover === 'floor' && x.nativeBatch)))}.`,
  );
  out.push(
    '- **floor**: the same migration of the same workload in one process (bench/floor.ts): the engine (daemon/repair/engine.ts) imported directly takes the sockets, the same network-lock transactions (daemon/custody/netlock.ts) lock both sides, every connection is saved (its kernel calls in batches, as the daemon makes them) and rebuilt at once in B with its queues passed in memory, the same hook moves the address and the same hand-over delivers the sockets to the same kind of new owner. No gRPC, no second daemon, no frames or checksums. soccrd and floor runs alternate; **soccrd / floor** is the ratio of their medians.',
  );
  out.push('- **queue MiB moved**: receive and send queue bytes of all N connections at the freeze (median over soccrd runs; every run below).', '');
  const full = m.rows.filter((r) => r.series === 'full');
  const queues = m.rows.filter((r) => r.series === 'queues' || (r.series === 'full' && r.n === 1000)).sort((a, b) => a.soccrd.queueBytes - b.soccrd.queueBytes);
  const light = m.rows.filter((r) => r.series === 'light');
  out.push('### Freeze against N, full queues', '');
  out.push(
    "Every peer streams without pause, through the freeze. The owner read for 1.5 s while they streamed (receive buffers autotune), then stopped reading: its receive queues are full. On a third of the connections it also streamed while those peers stopped reading: their send queues are full too. Buffers autotune up to 256 KiB (tcp_rmem/tcp_wmem max in A and C; 256 MiB / N at most, at least 32 KiB, so the kernel's TCP memory stays bounded at 10 000 connections).",
    '',
  );
  out.push(...rowTable(full, true), '');
  const rss = full.find((r) => r.n === GOAL_RSS_N)?.peakRssKiB;
  if (rss)
    out.push(
      `Peak RSS (VmHWM, read right after the migration, largest over the runs) at ${GOAL_RSS_N} connections with full queues: source daemon ${f(rss.source / 1024, 0)} MiB, destination daemon ${f(rss.destination / 1024, 0)} MiB.`,
      '',
    );
  for (const r of full.filter((x) => x.peakRssKiB && x.n !== GOAL_RSS_N))
    out.push(
      `- N=${r.n}: peak RSS source ${f((r.peakRssKiB?.source ?? NaN) / 1024, 0)} MiB, destination ${f((r.peakRssKiB?.destination ?? NaN) / 1024, 0)} MiB`,
    );
  out.push('');
  out.push('### Freeze against queue bytes, 1000 connections', '');
  out.push(
    '0, 16 KiB and 256 KiB: exactly that many unread bytes in every receive queue of the owner (its receive buffer set to hold them), send queues empty, peers quiet during the freeze. full: as above.',
    '',
  );
  out.push(...rowTable(queues, false), '');
  out.push('### Light load (near-empty queues), freeze and peer stall against N', '');
  out.push(
    `Every connection carries 2 KiB each way before the move; a sample of ${m.sample} connections (all when N ≤ ${m.sample}) streams ${m.tickBytes} bytes every ${m.tickMs} ms each way without pause. ` +
      '**peer stall**: the longest pause between received bytes at the peers over the sample, around the migration; "cadence" the same statistic over 1 s without migration; "rto" the peers\' retransmission timeout (`ss -ti`).',
    '',
  );
  out.push(
    '| N | runs | freeze ms | checkpoint+restore | hook | resume-destination | release-source | peer stall ms (max) | stall before freeze | stall after live | cadence | rto |',
  );
  out.push('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of light) {
    const p = (k: string): string => ms(r.soccrd.phases[k]);
    out.push(
      `| ${r.n} | ${r.soccrd.runs} | **${ms(r.soccrd.freezeMs)}** | ${p('checkpoint+restore')} | ${p('hook')} | ${p('resume-destination')} | ${p('release-source')} | **${ms(r.peerGapMaxMs)}** | ${ms(r.peerGapBeforeFreezeMs)} | ${ms(r.peerGapAfterLiveMs)} | ${ms(r.baselineGapMs)} | ${f(r.peerRtoMs, 0)} |`,
    );
  }
  const relay = m.rows.filter((r) => r.series === 'relay');
  if (relay.length) {
    out.push('', '### Relay through the orchestrator, for comparison', '');
    out.push(
      'The same workload with the destination daemon started without `--data-listen`: `migrate()` relays the frames (Checkpoint stream out of A, Restore stream into B). ratio = relay freeze / direct freeze of the full series at the same N, same run.',
      '',
    );
    out.push(
      '| N | queues | queue MiB moved | runs | transport | relay freeze ms | checkpoint+restore | direct freeze ms (full series) | **relay / direct** |',
      '| ---: | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |',
    );
    for (const r of relay) {
      const twin = full.find((x) => x.n === r.n);
      out.push(
        `| ${r.n} | ${fillName(r.fill)} | ${mib(r.soccrd.queueBytes)} | ${r.soccrd.runs} | ${transportWords([r])} | **${ms(r.soccrd.freezeMs)}** | ${ms(r.soccrd.phases['checkpoint+restore'])} | ${ms(twin?.soccrd.freezeMs)} | **${ratio(twin ? r.soccrd.freezeMs / twin.soccrd.freezeMs : undefined)}** |`,
      );
    }
  }
  const handoff = m.rows.filter((r) => r.series === 'handoff');
  if (handoff.length) {
    out.push('', '### Hand-off on one host (issue 13: goal <= 20 ms for 1000 connections and a listener)', '');
    out.push(
      'The same full-queue workload and the listener, upgraded on one host: `migrate()` from the daemon to itself hands the live sockets to a new owner beside the old one (`Handoff`: no repair mode, no copy). The sockets are taken (pidfd_getfd) and handed over (16 fds per sendmsg) while the old owner still runs, and the new owner (a Node fixture polling every millisecond) acknowledges holding them; then the old owner is stopped, its fds are checked against ours (kcmp, one batch; with --all, any fd new since the take looked at), and "live" is sent. **freeze**: the daemon\'s own figure, from the stop to "live" sent; **new owner live**: from the stop to the new owner reading "live" (its clock; the same host). Had the owner changed its sockets before the stop (closed one, accepted one), they would be taken and handed over again while it is stopped (take, deliver+ack: 0 when not needed; **early** counts the runs that did without). **floor**: bench/handoff-floor.c on the same owner in the same run, the kernel work of the hand-off done while the owner is stopped, in C with nothing else (stop, pidfd_getfd + fstat each fd, the same sends, a receiver in C blocking in recvmsg, one ack), soccrd and floor runs alternating.',
      '',
    );
    out.push(
      '| N | runs | early | **freeze ms** | new owner live | stop | check | take | deliver+ack | live | daemon CPU ms | floor freeze ms (stop, take, pass+ack) | **soccrd / floor** | queue bytes copied |',
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const r of handoff) {
      const p = (k: string): string => ms(r.soccrd.phases[k]);
      const f = r.floor;
      const fp = (k: string): string => ms(f?.phases[k]);
      const early = r.perRun.filter((x) => x.mover === 'soccrd' && x.phases.early === 1).length;
      out.push(
        `| ${r.n} + listener | ${r.soccrd.runs} | ${early} | **${ms(r.soccrd.freezeMs)}** | ${p('new owner live')} | ${p('stop')} | ${p('check')} | ${p('take')} | ${p('deliver+ack')} | ${p('live')} | ${p('daemon CPU')} | ${f ? `${ms(f.freezeMs)} (${fp('stop')}, ${fp('take')}, ${fp('pass+ack')})` : '–'} | **${ratio(r.floorRatio)}** | ${r.soccrd.queueBytes} |`,
      );
    }
  }
  out.push('', '### Every run', '');
  out.push(
    '| series | N | queues | mover | transport | kernel calls | freeze ms | queue bytes moved | owner receive / send queues before (ss) | peer retransmissions |',
    '| --- | ---: | --- | --- | --- | --- | ---: | ---: | ---: | ---: |',
  );
  for (const r of m.rows) {
    for (const x of r.perRun) {
      const kc = x.nativeBatch ? kernelCallsOf([x]) : 'not recorded';
      out.push(
        `| ${r.series} | ${x.n} | ${fillName(x.fill)} | ${x.mover} | ${x.transport ?? '–'} | ${kc} | ${ms(x.freezeMs)} | ${x.queueBytes} | ${x.ownerRecvQueue} / ${x.ownerSendQueue} | ${x.peerRetrans} |`,
      );
    }
  }
  out.push('');
  if (m.failures.length) out.push('**Runs that failed or were not exact:**', '', ...m.failures.map((x) => `- ${x}`), '');
  if (!m.complete)
    out.push(
      '**Incomplete:** the migration bench stopped (its time bound, or a signal) before every series was measured; the rows above are those it finished.',
      '',
    );
  out.push('![freeze time against N](freeze.svg)', '');
  out.push(
    'To see where the time goes: `node dist/bench/migration.js --series full --counts 1000 --runs 1 --profile /tmp/prof` writes a V8 CPU profile of each daemon (open in Chrome DevTools or speedscope); `node --cpu-prof dist/bench/migration.js ...` profiles the orchestrator and the floor (both run in the bench process).',
    '',
  );
  out.push(...criuSection(m));
  return out;
}

function criuSection(m: MigrationResults): string[] {
  const out = ['### CRIU', ''];
  if (m.criu.usable) {
    out.push(
      `${m.criu.version}, in the same run, for every N of the full-queue series: one process (bench/holder.ts) holds the same N connections with the same workload (peers streaming, its receive queues full, a third of its send queues full), ` +
        "and is dumped with `criu dump --tcp-established --network-lock nftables` and restored with `criu restore --tcp-established --network-lock nftables -d` in the same namespace; the time is the two commands' wall time. " +
        "Afterwards the restored process reads everything and every connection is checked exact both ways like soccrd's. Ratio = CRIU dump + restore / soccrd freeze.",
      '',
    );
    const failures = m.rows.flatMap((r) => (r.criuError ? [`- CRIU failed at N=${r.n}: ${r.criuError}`] : []));
    out.push(...failures);
    if (failures.length) out.push('');
  } else {
    out.push(`Not compared in this run: ${m.criu.version}; ${m.criu.reason}.`, '');
  }
  out.push(
    '**Setting CRIU up.** The bench uses whatever `criu` is on PATH (nothing else), and compares it when `criu check` and `criu check --feature nftables` pass. ' +
      'On kernels 6.16 and newer it needs **CRIU 4.2.1** or later: 3.17 (Debian 12) fails `criu check` from kernel 6.13 on ("vdso: Unexpected rt vDSO area bounds": the vDSO data was split in two areas; fixed in 4.1); ' +
      '4.1.x passes `criu check` but cannot dump any TCP socket on 6.16+ ("sockets: Can\'t get 1:16 opt": getsockopt(SO_PASSCRED) now fails with EOPNOTSUPP on non-Unix sockets; fixed in 4.2). ' +
      "With the nftables lock and more than about 250 connections it also needs a libnftables newer than Debian 12's 1.0.6, which aborts once criu holds descriptors above 1024 (select()). " +
      'To install: a distribution package of 4.2.1 or later where there is one (Debian sid, Ubuntu 25.10, Fedora 42), or from source as root: install the build dependencies (Debian names: `build-essential pkg-config libprotobuf-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler python3-protobuf libnl-3-dev libnet1-dev libcap-dev libnftables-dev libbsd-dev libgnutls28-dev libaio-dev uuid-dev`), ' +
      'then `curl -LO https://github.com/checkpoint-restore/criu/archive/refs/tags/v4.2.1.tar.gz && tar xf v4.2.1.tar.gz && make -C criu-4.2.1 -j$(nproc) && make -C criu-4.2.1 install-criu PREFIX=/usr/local`; `criu --version` must then say 4.2.1 and `criu check` "Looks good.". ' +
      'CRIU must run inside the connections\' network namespace with `nsenter --net=/run/netns/NAME criu ...`, not `ip netns exec NAME criu ...`: `ip netns exec` also unshares the mount namespace, and criu then fails on mount sharing ("has unreachable sharing"); the process it dumps must be started the same way (bench/criu.ts does both).',
    '',
  );
  return out;
}

function goalsSection(m: MigrationResults | undefined, e: EngineResults | undefined, q: QueueResults | undefined): string[] {
  const out = ['## Goals (issue 10, and issue 13 for the hand-off)', ''];
  const verdict = (ok: boolean | undefined): string => (ok === undefined ? 'not measured' : ok ? '**met**' : '**not met**');
  out.push('| goal | measured (this run) | verdict |', '| --- | --- | --- |');
  const full = m?.rows.filter((r) => r.series === 'full') ?? [];
  for (const n of GOAL_FLOOR_NS) {
    const r = full.find((x) => x.n === n);
    const text =
      r?.floorRatio !== undefined
        ? `${ms(r.soccrd.freezeMs)} ms against ${ms(r.floor?.freezeMs)} ms: ${ratio(r.floorRatio)} (${mib(r.soccrd.queueBytes)} MiB queued; transport ${transportWords([r])})`
        : `N=${n} not measured`;
    out.push(
      `| freeze ≤ ${GOAL_FLOOR_FACTOR}x the in-process floor, ${n} connections, full queues | ${text} | ${verdict(r?.floorRatio !== undefined ? r.floorRatio <= GOAL_FLOOR_FACTOR : undefined)} |`,
    );
  }
  const criuRows = full.filter((r) => r.criu);
  const criu = m?.criu;
  const criuText = criuRows.length
    ? criuRows.map((r) => `N=${r.n}: CRIU ${ms(r.criu?.totalMs)} ms, soccrd ${ms(r.soccrd.freezeMs)} ms`).join('; ')
    : criu?.usable
      ? 'CRIU failed (see the CRIU section)'
      : `CRIU not usable here (${criu ? criu.reason : 'not run'})`;
  out.push(
    `| freeze below CRIU's dump + restore of the same connections (full queues) | ${criuText} | ${verdict(criuRows.length ? criuRows.every((r) => (r.criu?.totalMs ?? 0) > r.soccrd.freezeMs) : undefined)} |`,
  );
  // Light rows by their workload (fill), whatever series label the results carry.
  const light = m?.rows.find((r) => (r.fill === 'light' || r.series === 'light') && r.n === GOAL_LIGHT_N);
  out.push(
    `| ${GOAL_LIGHT_N} connections, near-empty queues: freeze ≤ ${GOAL_FREEZE_MS} ms | ${light ? `${ms(light.soccrd.freezeMs)} ms` : 'not measured'} | ${verdict(light ? light.soccrd.freezeMs <= GOAL_FREEZE_MS : undefined)} |`,
  );
  const handoff = m?.rows.find((r) => r.series === 'handoff');
  out.push(
    `| (issue 13) hand-off on one host of ${handoff ? handoff.n : 1000} connections and a listener, full queues: freeze ≤ ${GOAL_HANDOFF_MS} ms | ${handoff ? `${ms(handoff.soccrd.freezeMs)} ms (new owner read "live" after ${ms(handoff.soccrd.phases['new owner live'])} ms; the old order's kernel work in C: ${ms(handoff.floor?.freezeMs)} ms)` : 'not measured'} | ${verdict(handoff ? handoff.soccrd.freezeMs <= GOAL_HANDOFF_MS : undefined)} |`,
  );
  const big = e?.rows[e.rows.length - 1];
  if (big) {
    const cp = e?.diagCheckpoint ? e.diagCheckpoint.usPerConn / big.checkpoint.baselineUsPerConn : big.checkpoint.ratio;
    out.push(
      `| engine per connection ≤ ${GOAL_ENGINE_FACTOR}x bench/baseline.c (N=${big.n}) | checkpoint ${f(cp, 1)}x${e?.diagCheckpoint ? ' (with socket diagnostics)' : ''}, restore ${f(big.restore.ratio, 1)}x | ${verdict(cp <= GOAL_ENGINE_FACTOR && big.restore.ratio <= GOAL_ENGINE_FACTOR)} |`,
    );
  } else out.push(`| engine per connection ≤ ${GOAL_ENGINE_FACTOR}x bench/baseline.c | engine bench not run | not measured |`);
  if (q) {
    out.push(
      `| one connection, ${f(q.queueBytes / 2 ** 20, 0)} MiB of queues: Checkpoint and Restore streams ≥ ${GOAL_STREAM_FACTOR}x plain grpc-js | Checkpoint ${f(q.checkpointRatio, 2)}x, Restore ${f(q.restoreRatio, 2)}x | ${verdict(q.checkpointRatio >= GOAL_STREAM_FACTOR && q.restoreRatio >= GOAL_STREAM_FACTOR)} |`,
    );
  } else out.push(`| one connection with 40 MiB of queues: streams ≥ ${GOAL_STREAM_FACTOR}x plain grpc-js | queue bench not run | not measured |`);
  if (m) {
    const runs = m.rows.reduce((a, r) => a + r.perRun.length, 0);
    const rss = full.find((r) => r.n === GOAL_RSS_N)?.peakRssKiB;
    out.push(
      `| every run byte-exact both ways, no RST, no FIN; memory bounded (peak RSS at ${GOAL_RSS_N} full-queue connections) | ${runs} runs exact, ${m.failures.length} failed${rss ? `; peak RSS source ${f(rss.source / 1024, 0)} MiB, destination ${f(rss.destination / 1024, 0)} MiB` : ''} | ${verdict(m.failures.length === 0)} |`,
    );
  }
  const one = m?.rows.find((r) => (r.fill === 'light' || r.series === 'light') && r.n === 1);
  if (one?.peerRtoMs !== undefined && one.peerGapMaxMs !== undefined) {
    const bound = GOAL_STALL_MS + one.peerRtoMs;
    out.push(
      `| (earlier goal) peer-observed stall of one migrated connection < ${GOAL_STALL_MS} ms + one RTO (${f(bound, 0)} ms here) | ${ms(one.peerGapMaxMs)} ms (freeze ${ms(one.soccrd.freezeMs)} ms) | ${verdict(one.peerGapMaxMs < bound)} |`,
    );
  }
  out.push('');
  return out;
}

/** What bounds the freeze: the FFI floor from this run's engine figures, and where the rest goes. */
function boundsSection(e: EngineResults | undefined, m: MigrationResults | undefined): string[] {
  const out = ['## What bounds the freeze', ''];
  const big = e?.rows[e.rows.length - 1];
  if (e && big) {
    const dc = e.diagCheckpoint;
    const saveCalls = dc ? dc.ffiCallsPerConn : big.checkpoint.ffiCallsPerConn;
    const cpAll = dc ? (dc.usPerConn * big.n) / 1000 : (big.checkpoint.soccrdUsPerConn * big.n) / 1000;
    const rs = (big.restore.soccrdUsPerConn * big.n) / 1000;
    const inBatches = (x: number | undefined): string => (x !== undefined && e.kernelCallPath?.native ? ` (${calls(x)} kernel calls inside batches)` : '');
    out.push(
      `- **Per connection.** Kernel calls in the engine bench: ${engineCallPath(e)}. Saving one socket takes ${calls(saveCalls)} FFI calls${dc ? ' with socket diagnostics, all sockets in one batch (the daemon: one batch per socket)' : inBatches(big.checkpoint.batchedKernelCallsPerConn)} and rebuilding it ${calls(big.restore.ffiCallsPerConn)}${inBatches(big.restore.batchedKernelCallsPerConn)}; ` +
        `one FFI call costs ${f(e.ffiCost.soccrdNsPerCall / 1000, 1)} µs through ffi-rs against ${f(e.ffiCost.baselineNsPerCall / 1000, 1)} µs for the same kernel call in C. ` +
        `For ${big.n} connections the engine alone takes ${ms(cpAll)} ms to save and ${ms(rs)} ms to rebuild (engine bench, this run: ${f(dc ? dc.usPerConn / big.checkpoint.baselineUsPerConn : big.checkpoint.ratio, 1)}x and ${f(big.restore.ratio, 1)}x the C baseline).`,
    );
  }
  // The largest full-queue row with a floor: where the per-byte cost shows most.
  const full = m?.rows.filter((r) => r.series === 'full' && r.floor).sort((a, b) => b.n - a.n)[0];
  if (full?.floor) {
    const perMiB = (x: number, bytes: number): string => f(x / (bytes / 2 ** 20), 1);
    const transports = full.soccrd.transports;
    const path =
      transports.length === 1 && transports[0] === 'direct'
        ? 'the queue bytes go from the source daemon straight to the destination daemon over the direct data path (framed, sealed and checked: daemon/server/data-path.ts)'
        : transports.length === 1 && transports[0] === 'relay'
          ? 'the queue bytes cross the source daemon, the orchestrator and the destination daemon (frames, checksums, two gRPC hops)'
          : `the runs used the ${transports.join(' and ')} transports`;
    out.push(
      `- **Per byte.** At ${full.n} connections with full queues (${mib(full.soccrd.queueBytes)} MiB) soccrd's freeze comes to ${perMiB(full.soccrd.freezeMs, full.soccrd.queueBytes)} ms per MiB queued, the floor's to ${perMiB(full.floor.freezeMs, full.floor.queueBytes)} ms per MiB (its runs: ${mib(full.floor.queueBytes)} MiB): ${path}, where the floor copies them once from one socket into the other in one process.`,
    );
  }
  const relay = m?.rows.find((r) => r.series === 'relay');
  const directTwin = relay && m?.rows.find((r) => r.series === 'full' && r.n === relay.n);
  if (relay && directTwin) {
    out.push(
      `- **Relay against direct.** The same ${relay.n} full-queue connections relayed through the orchestrator (destination without --data-listen): ${ms(relay.soccrd.freezeMs)} ms against ${ms(directTwin.soccrd.freezeMs)} ms direct, ${ratio(relay.soccrd.freezeMs / directTwin.soccrd.freezeMs)} (same run).`,
    );
  }
  const relayed = m?.rows.some((r) => r.soccrd.transports.includes('relay'));
  out.push(
    `- **One machine, two cores.** Both daemons, the orchestrator${relayed ? ' (which relays the frames only in relay runs)' : ''}, and the owner, the peers and the new owner (all streaming) share two cores: every copy, hash, (de)serialization and FFI call adds to the freeze. The floor shares the machine with the same fixtures, in the same run.`,
    '',
  );
  return out;
}

/** The commands a full run is made of, for the report. */
export const BENCH_COMMANDS = [
  'npm run bench                   # all of the below in sequence, then this file and freeze.svg',
  'node dist/bench/engine.js       # npm run bench:engine',
  'node dist/bench/queues.js       # npm run bench:queues',
  `node dist/bench/migration.js    # npm run bench:migration [-- --series full,queues,light,relay,handoff] [--counts ${DEFAULT_COUNTS.join(',')}] [--runs K] [--profile DIR]`,
  `# 10 000 connections by flag only (--counts ${[...DEFAULT_COUNTS, 10_000].join(',')}): with them npm run bench takes well over 20 minutes on 2 cores`,
];

export interface RunInfo {
  commands: string[];
  failures: string[];
  elapsedSeconds?: number;
}

export function writeReport(info: RunInfo): void {
  const engine = load(RAW.engine) as EngineResults | undefined;
  const queues = load(RAW.queues) as QueueResults | undefined;
  const migration = load(RAW.migration) as MigrationResults | undefined;
  const out: string[] = ['# soccrd benchmark results', ''];
  out.push(
    `Generated by \`npm run bench\` (bench/run.ts, bench/report.ts)${info.elapsedSeconds ? ` in ${f(info.elapsedSeconds / 60, 1)} minutes` : ''}; every ratio is against a baseline measured in the same run. Raw results: bench/results-*.json (not committed).`,
    '',
  );
  if (info.failures.length) out.push(`**Failed in this run:** ${info.failures.join('; ')}`, '');
  out.push(...goalsSection(migration, engine, queues));
  out.push(...boundsSection(engine, migration));
  out.push(...machineSection(migration, queues, engine, info.commands));
  out.push(...migrationSection(migration));
  out.push(...queuesSection(queues));
  out.push(...engineSection(engine));
  writeFileSync(RESULTS_MD, `${out.join('\n').trimEnd()}\n`);
  if (migration) writeFileSync(FREEZE_SVG, freezeSvg(migration.rows));
}

if (require.main === module) {
  writeReport({ commands: BENCH_COMMANDS, failures: [] });
  process.stdout.write(`wrote ${path.relative(process.cwd(), RESULTS_MD)} and ${path.relative(process.cwd(), FREEZE_SVG)}\n`);
}
