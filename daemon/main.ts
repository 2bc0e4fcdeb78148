#!/usr/bin/env node
// soccrd: the daemon. Settings come from flags and an optional JSON config file (flags win); it serves
// soccr.v1.SocketRepair plus gRPC health and reflection, and on SIGTERM stops taking calls, resumes
// whatever it froze that was not released, and exits.
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { Command } from 'commander';
import { HealthImplementation } from 'grpc-health-check';
import { chmodSync, existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import * as path from 'node:path';
import { probeFeatures } from './features';
import { createLogger, Logger } from './log';
import { DEFAULT_LIMITS, loadPackageDefinition } from './protocol';
import { SocketRepairService } from './service';
import { SessionManager } from './sessions';
import { NetworkLock } from './netlock';
import { SOCCR_MARK } from './engine';

export interface DaemonSettings {
  /** unix:///path or host:port, as many as wanted */
  listen: string[];
  stateDir: string;
  /** default lease of a session, ms */
  leaseMs: number;
  maxLeaseMs: number;
  logLevel: string;
  /** mode of Unix listening sockets */
  socketMode: number;
  /** nftables table of the network lock (one per daemon and namespace) */
  lockTable: string;
  /** how long a released source keeps its network lock, ms */
  lockGraceMs: number;
}

export const DEFAULTS: DaemonSettings = {
  listen: ['unix:///run/soccrd/soccrd.sock'],
  stateDir: '/var/lib/soccrd',
  leaseMs: 30_000,
  maxLeaseMs: 3_600_000,
  logLevel: 'info',
  socketMode: 0o600,
  lockTable: 'soccrd',
  lockGraceMs: 10_000,
};

function packageVersion(): string {
  for (const p of [path.resolve(__dirname, '..', '..', 'package.json'), path.resolve(__dirname, '..', 'package.json')]) {
    if (existsSync(p)) return (JSON.parse(readFileSync(p, 'utf8')) as { version: string }).version;
  }
  return '0.0.0';
}

export function parseSettings(argv: string[]): DaemonSettings {
  const program = new Command()
    .name('soccrd')
    .description('Checkpoint and restore live TCP connections over gRPC')
    .version(packageVersion())
    .option('--listen <addr>', 'listen on unix:///path or host:port (repeatable; replaces the default)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--state-dir <dir>', `where the daemon keeps its state (default ${DEFAULTS.stateDir})`)
    .option('--config <file>', 'read settings from a JSON file (flags take precedence)')
    .option('--lease-ms <ms>', `default session lease in milliseconds (default ${DEFAULTS.leaseMs})`)
    .option('--log-level <level>', `error, warn, info or debug (default ${DEFAULTS.logLevel})`)
    .option('--lock-table <name>', `nftables table of the network lock (default ${DEFAULTS.lockTable})`)
    .option('--lock-grace-ms <ms>', `how long a released source keeps its network lock (default ${DEFAULTS.lockGraceMs})`)
    .exitOverride()
    .parse(argv);
  const flags = program.opts<{ listen?: string[]; stateDir?: string; config?: string; leaseMs?: string; logLevel?: string; lockTable?: string; lockGraceMs?: string }>();
  let file: Partial<DaemonSettings> = {};
  if (flags.config) {
    try {
      file = JSON.parse(readFileSync(flags.config, 'utf8')) as Partial<DaemonSettings>;
    } catch (err) {
      throw new Error(`config file ${flags.config}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const s: DaemonSettings = {
    ...DEFAULTS,
    ...file,
    ...(flags.listen ? { listen: flags.listen } : {}),
    ...(flags.stateDir ? { stateDir: flags.stateDir } : {}),
    ...(flags.leaseMs ? { leaseMs: Number(flags.leaseMs) } : {}),
    ...(flags.logLevel ? { logLevel: flags.logLevel } : {}),
    ...(flags.lockTable ? { lockTable: flags.lockTable } : {}),
    ...(flags.lockGraceMs ? { lockGraceMs: Number(flags.lockGraceMs) } : {}),
  };
  if (!/^[A-Za-z][A-Za-z0-9_]{0,31}$/.test(s.lockTable)) throw new Error(`lock table name ${s.lockTable}: letters, digits and _ only`);
  if (!Number.isInteger(s.lockGraceMs) || s.lockGraceMs < 0) throw new Error(`lock grace of ${s.lockGraceMs} ms: give 0 or more`);
  if (!Array.isArray(s.listen) || s.listen.length === 0) throw new Error('at least one --listen address is needed');
  if (!Number.isInteger(s.leaseMs) || s.leaseMs < 100) throw new Error(`lease of ${s.leaseMs} ms: give at least 100`);
  return s;
}

/** grpc-js wants unix:///abs/path; a stale socket file from a dead daemon is removed first. */
async function prepareUnixPath(p: string, log: Logger): Promise<void> {
  mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 });
  if (!existsSync(p)) return;
  const alive = await new Promise<boolean>((resolve) => {
    const c = connect(p);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (alive) throw new Error(`another daemon is listening on ${p}`);
  log.info('removing stale socket file', { path: p });
  unlinkSync(p);
}

export interface RunningDaemon {
  server: grpc.Server;
  sessions: SessionManager;
  stop(reason: string): Promise<void>;
}

export async function startDaemon(settings: DaemonSettings, log: Logger): Promise<RunningDaemon> {
  mkdirSync(settings.stateDir, { recursive: true, mode: 0o700 });
  const version = packageVersion();
  const netlockCandidate = new NetworkLock({ table: settings.lockTable, mark: SOCCR_MARK, log });
  const netlock = netlockCandidate.start() ? netlockCandidate : undefined;
  const features = { ...probeFeatures(), networkLock: netlock !== undefined };
  const sessions = new SessionManager({ defaultLeaseMs: settings.leaseMs, maxLeaseMs: settings.maxLeaseMs, retainEndedMs: 10 * 60_000, lockGraceMs: settings.lockGraceMs, netlock, log });
  const service = new SocketRepairService({ version, features, sessions, log, limits: DEFAULT_LIMITS, eagerQueueBytes: 256 * 1024, eagerSessionBytes: 16 * 1024 * 1024, netlock });
  const pkg = loadPackageDefinition();
  const proto = grpc.loadPackageDefinition(pkg) as unknown as { soccr: { v1: { SocketRepair: grpc.ServiceClientConstructor } } };
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 8 * 1024 * 1024, 'grpc.max_send_message_length': 8 * 1024 * 1024 });
  server.addService(proto.soccr.v1.SocketRepair.service, service.handlers());
  const health = new HealthImplementation({ '': 'SERVING', 'soccr.v1.SocketRepair': 'SERVING' });
  health.addToServer(server);
  new ReflectionService(pkg).addToServer(server);

  for (const addr of settings.listen) {
    let target = addr;
    if (addr.startsWith('unix://')) {
      const p = addr.slice('unix://'.length);
      if (!path.isAbsolute(p)) throw new Error(`${addr}: a Unix socket path must be absolute (unix:///run/...)`);
      await prepareUnixPath(p, log);
      target = `unix://${p}`;
    } else if (addr.startsWith('unix:')) {
      throw new Error(`${addr}: write Unix addresses as unix:///absolute/path`);
    }
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(new Error(`cannot listen on ${addr}: ${err.message}`)) : resolve()));
    });
    if (addr.startsWith('unix://')) chmodSync(addr.slice('unix://'.length), settings.socketMode);
    log.info('listening', { address: addr });
  }
  writeFileSync(path.join(settings.stateDir, 'daemon.json'), JSON.stringify({ pid: process.pid, listen: settings.listen, version, startedAt: new Date().toISOString() }));

  let stopping: Promise<void> | undefined;
  const stop = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      log.info('stopping', { reason });
      health.setStatus('', 'NOT_SERVING');
      health.setStatus('soccr.v1.SocketRepair', 'NOT_SERVING');
      // Stop taking calls; give running ones a moment, then cut them.
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 3000);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      });
      sessions.shutdown();
      netlock?.stop();
      for (const addr of settings.listen) {
        if (addr.startsWith('unix://')) {
          try {
            unlinkSync(addr.slice('unix://'.length));
          } catch {
            /* already gone */
          }
        }
      }
      log.info('stopped');
    })();
    return stopping;
  };
  log.info('soccrd ready', { version, features });
  return { server, sessions, stop };
}

async function main(): Promise<void> {
  let settings: DaemonSettings;
  try {
    settings = parseSettings(process.argv);
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') process.exit(0);
    process.stderr.write(`soccrd: ${e.message ?? String(err)}\n`);
    process.exit(2);
  }
  const log = createLogger(settings.logLevel);
  let daemon: RunningDaemon;
  try {
    daemon = await startDaemon(settings, log);
  } catch (err) {
    log.error('cannot start', { error: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  }
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      void daemon.stop(sig).then(() => process.exit(0));
    });
  }
}

if (require.main === module) void main();
