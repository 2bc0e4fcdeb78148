// Prometheus metrics (the only prom-client importer). The instruments are always there and cost next
// to nothing: every labelled child a hot path touches is bound once, so counting allocates no label
// object. The daemon serves them on an opt-in plain-HTTP listener (--metrics-listen), GET /metrics.
import { status as GrpcStatus } from '@grpc/grpc-js';
import { IncomingMessage, Server, ServerResponse, createServer } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { SyscallError, errorMessage } from '../protocol/errors';
import { QueueKind } from '../protocol/messages';

export const registry = new Registry();

// ---- gRPC calls ---------------------------------------------------------------------------------

const grpcCalls = new Counter({
  name: 'soccrd_grpc_calls_total',
  help: 'soccr.v1.SocketRepairService calls finished, by method and final gRPC status',
  labelNames: ['method', 'code'] as const,
  registers: [registry],
});

const grpcDuration = new Histogram({
  name: 'soccrd_grpc_call_duration_seconds',
  help: 'Time from the start of a soccr.v1.SocketRepairService call to its final status (streams included), by method',
  labelNames: ['method'] as const,
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});

/** Per method: its duration child, and its counter child by status code (bound on first use). */
const callChildren = new Map<string, { duration: Histogram.Internal<'method'>; byCode: Array<Counter.Internal | undefined> }>();

/** A call of `method` ended with `code` (grpc.status); `startedAt` is its performance.now() at start. */
export function callFinished(method: string, code: GrpcStatus | undefined, startedAt: number): void {
  let c = callChildren.get(method);
  if (!c) callChildren.set(method, (c = { duration: grpcDuration.labels(method), byCode: [] }));
  const k = code ?? GrpcStatus.UNKNOWN;
  (c.byCode[k] ??= grpcCalls.labels(method, GrpcStatus[k] ?? String(k))).inc();
  c.duration.observe((performance.now() - startedAt) / 1000);
}

// ---- failed kernel calls ------------------------------------------------------------------------

const syscallErrors = new Counter({
  name: 'soccrd_syscall_errors_total',
  help: 'Failed libc/kernel calls that made a gRPC call fail, by call name and errno name (probes the daemon handles itself are not counted)',
  labelNames: ['syscall', 'errno'] as const,
  registers: [registry],
});

/**
 * Counts the failed kernel call behind a call's error, if any: the error itself or one in its cause
 * chain. Called once per failed gRPC call (by toStatus), so each failure counts once, and the many
 * SyscallErrors the daemon raises and handles as probes (ENOTCONN, ENOENT, EAGAIN...) do not count.
 */
export function countSyscallFailure(err: unknown): void {
  let e: unknown = err;
  for (let depth = 0; depth < 8 && e instanceof Error; depth++) {
    if (e instanceof SyscallError) {
      syscallErrors.labels(e.call || 'unknown', e.code).inc();
      return;
    }
    e = (e as { cause?: unknown }).cause;
  }
}

// ---- sessions and frozen connections --------------------------------------------------------------

/** What the session gauges read of a session: its kind, state and the descriptors it holds (-1 once let go). */
export interface WatchedSession {
  readonly kind: string;
  readonly state: string;
  readonly held: ReadonlyArray<{ readonly sock: { readonly fd: number } }>;
}

/** The daemon's sessions as the gauges see them (custody's SessionManager is one; metrics imports no wing). */
export interface WatchedSessions {
  /** frozen and held sessions */
  active(): readonly WatchedSession[];
  /** every session the daemon knows, ended ones too */
  list(): readonly WatchedSession[];
}

let sessionSource: WatchedSessions | undefined;

/** The daemon's sessions, read at scrape time by the session gauges. */
export function watchSessions(sessions: WatchedSessions): void {
  sessionSource = sessions;
}

new Gauge({
  name: 'soccrd_frozen_connections',
  help: 'Connections frozen in sessions the daemon holds: source sockets in repair mode, restored sockets not live yet',
  labelNames: ['kind'] as const,
  registers: [registry],
  collect() {
    let source = 0;
    let restore = 0;
    for (const s of sessionSource?.active() ?? []) {
      let n = 0;
      for (const h of s.held) if (h.sock.fd >= 0) n++;
      if (s.kind === 'source') source += n;
      else restore += n;
    }
    this.set({ kind: 'source' }, source);
    this.set({ kind: 'restore' }, restore);
  },
});

new Gauge({
  name: 'soccrd_sessions',
  help: 'Sessions the daemon knows, by kind and state (ended ones stay listed for 10 minutes)',
  labelNames: ['kind', 'state'] as const,
  registers: [registry],
  collect() {
    this.reset();
    const counts = new Map<string, { kind: string; state: string; n: number }>();
    for (const s of sessionSource?.list() ?? []) {
      const key = `${s.kind} ${s.state}`;
      const c = counts.get(key);
      if (c) c.n++;
      else counts.set(key, { kind: s.kind, state: s.state, n: 1 });
    }
    for (const c of counts.values()) this.set({ kind: c.kind, state: c.state }, c.n);
  },
});

const freezeDuration = new Histogram({
  name: 'soccrd_freeze_duration_seconds',
  help: 'How long a session kept its connections frozen, by kind and final state: source, from pause to resume or release; restore, from the session header of the Restore stream to going live or being closed',
  labelNames: ['kind', 'outcome'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});

/** A session ended (`outcome`: its final state); `frozenAt` is the performance.now() of its freeze. */
export function sessionThawed(kind: string, outcome: string, frozenAt: number): void {
  freezeDuration.labels(kind, outcome).observe((performance.now() - frozenAt) / 1000);
}

// ---- the daemon-wide budget ----------------------------------------------------------------------

/** What the budget gauges read (custody's ResourceBudget is one): per pool, its limit and what is taken. */
export interface WatchedBudget {
  usage(): ReadonlyArray<{ readonly pool: string; readonly limit: number; readonly used: number }>;
}

let budgetSource: WatchedBudget | undefined;

/** The daemon's resource budget, read at scrape time. */
export function watchBudget(budget: WatchedBudget): void {
  budgetSource = budget;
}

new Gauge({
  name: 'soccrd_budget_used_bytes',
  help: "Bytes taken from the daemon-wide budget, by pool: buffered (queue bytes streams hold in the daemon's memory), kernel (kernel memory of held rebuilt sockets)",
  labelNames: ['pool'] as const,
  registers: [registry],
  collect() {
    for (const p of budgetSource?.usage() ?? []) this.set({ pool: p.pool }, p.used);
  },
});

new Gauge({
  name: 'soccrd_budget_limit_bytes',
  help: 'The daemon-wide budget, by pool (--max-buffered-bytes, --max-held-socket-bytes)',
  labelNames: ['pool'] as const,
  registers: [registry],
  collect() {
    for (const p of budgetSource?.usage() ?? []) this.set({ pool: p.pool }, p.limit);
  },
});

// ---- queue bytes --------------------------------------------------------------------------------

const queueBytes = new Counter({
  name: 'soccrd_queue_bytes_total',
  help: 'TCP queue bytes moved: checkpoint, streamed out of frozen sockets; restore, written into rebuilt sockets',
  labelNames: ['direction', 'queue'] as const,
  registers: [registry],
});
const checkpointRecv = queueBytes.labels('checkpoint', 'recv');
const checkpointSend = queueBytes.labels('checkpoint', 'send');
const restoreRecv = queueBytes.labels('restore', 'recv');
const restoreSend = queueBytes.labels('restore', 'send');

/** A queue chunk of a Checkpoint stream was written to the caller. */
export function checkpointChunkSent(chunk: { queue: QueueKind; data: Uint8Array }): void {
  (chunk.queue === QueueKind.SEND ? checkpointSend : checkpointRecv).inc(chunk.data.length);
}

/** A connection was rebuilt with these queue lengths. */
export function queuesRestored(recvBytes: number, sendBytes: number): void {
  restoreRecv.inc(recvBytes);
  restoreSend.inc(sendBytes);
}

// ---- network lock -------------------------------------------------------------------------------

const lockDuration = new Histogram({
  name: 'soccrd_network_lock_duration_seconds',
  help: 'Time to lock or unlock a set of connections in the network lock (one nft transaction, more the first time in a namespace)',
  labelNames: ['op'] as const,
  buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
  registers: [registry],
});
const lockOp = lockDuration.labels('lock');
const unlockOp = lockDuration.labels('unlock');

/** A lock (or, `unlock`, an unlock) that began at performance.now() `startedAt` is done. */
export function networkLockTimed(op: 'lock' | 'unlock', startedAt: number): void {
  (op === 'lock' ? lockOp : unlockOp).observe((performance.now() - startedAt) / 1000);
}

// ---- the listener -------------------------------------------------------------------------------

let defaultMetrics = false;

/**
 * Serves GET /metrics (Prometheus text format) on host:port over plain HTTP; anything else is 404. The
 * Node default metrics (event-loop lag matters: every FFI call blocks it) start with the first listener.
 */
export async function listenMetrics(host: string, port: number): Promise<{ server: Server; bound: string }> {
  if (!defaultMetrics) {
    collectDefaultMetrics({ register: registry, prefix: 'soccrd_' });
    defaultMetrics = true;
  }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found: GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${errorMessage(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address();
  const bound = a && typeof a === 'object' ? (a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`) : `${host}:${port}`;
  return { server, bound };
}

/** Stops the listener and cuts its open (keep-alive) connections. */
export function closeMetrics(server: Server): void {
  server.close();
  server.closeAllConnections();
}
