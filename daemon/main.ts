#!/usr/bin/env node
// soccrd: the daemon. Settings come from flags and an optional JSON config file (flags win); it serves
// soccr.v1.SocketRepairService plus gRPC health and reflection, and on SIGTERM stops taking calls, resumes
// whatever it froze that was not released, and exits.
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { Command } from 'commander';
import { HealthImplementation } from 'grpc-health-check';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import * as path from 'node:path';
import { DataListener } from './server/data-path';
import { probeFeatures } from './kernel/features';
import { batchPath } from './kernel/native';
import { createLogger, Logger } from './log';
import { DEFAULT_LIMITS } from '../protocol/assembler';
import { encodeFrame } from '../protocol/frames';
import { SERVICE_NAME, loadPackageDefinition } from '../protocol/proto';
import { warmFrameCodecs } from '../protocol/session-frames';
import { SocketRepairService } from './server/service';
import { SessionManager } from './custody/sessions';
import { ResourceBudget, defaultBudgetLimits, hostBufferCaps, parseBytes } from './custody/budget';
import { CallerGate, OPEN_POLICY, PolicyBook, TargetPolicy } from './server/policy';
import { EMPTY_POLICY_FILE, PolicyFile, readPolicyFile } from './server/policy-file';
import { instanceOf } from './custody/instance';
import { NetworkLock, lockTableOf } from './custody/netlock';
import { SOCCR_MARK } from './repair/engine';
import { holdDaemonMarker } from './repair/acquire';
import { Journal } from './custody/journal';
import { checkStateDir, writeStateFile } from './custody/state-dir';
import { planRecovery } from './custody/recovery';
import { ConnectionRegistry, isLoopback, makeAuthorizer, splitHostPort } from './server/auth';
import {
  InheritedTcpAccess,
  Listener,
  hostPort,
  listenInheritedTcp,
  listenInheritedUnix,
  listenInsecureTcp,
  listenTls,
  listenUnix,
  resolveGroup,
  tlsServerCredentials,
} from './server/listeners';
import { closeMetrics, listenMetrics, watchBudget, watchSessions } from './metrics';
import { InheritedSocket, Notifier, inheritedSockets } from './server/systemd';
import { runServiceCommand } from './server/install';
import { removeSocketFile } from './kernel/socket-file';
import { errorMessage } from '../protocol/errors';

export interface DaemonSettings {
  /** unix:///path or host:port, as many as wanted */
  listen: string[];
  stateDir: string;
  /** default lease of a session, ms */
  leaseMs: number;
  maxLeaseMs: number;
  logLevel: string;
  /** mode of Unix listening sockets (default 0600, or 0660 with socketGroup) */
  socketMode: number;
  /** group (name or number) given to Unix listening sockets */
  socketGroup?: string;
  /** uids that may call over a Unix socket (root always may) */
  allowUids: number[];
  /** gids that may call over a Unix socket: the caller's gid or one of its supplementary groups */
  allowGids: number[];
  /** TLS for TCP listeners: the daemon's certificate chain and key, and the CA that signs client certificates (PEM files) */
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  /** client certificate identities (subject CN or a SAN) that may call over TLS; '*': any the CA signed */
  allowIdentities: string[];
  /** allow TCP listeners without TLS, on loopback addresses only (such callers are admins) */
  insecure: boolean;
  /** uids that are admins over Unix sockets (allowed, every session theirs, not narrowed by the policy file); root always is */
  adminUids: number[];
  /** client certificate identities that are admins over TLS */
  adminIdentities: string[];
  /** the per-identity policy file (JSON, policy-file.ts); absent: the built-in defaults for non-admin callers */
  policyFile?: string;
  /**
   * nftables table of the network lock, in every namespace the daemon locks in; by default
   * `soccrd_<instance id>` (instance.ts), so that every daemon has its own
   */
  lockTable?: string;
  /** how long a released source keeps its network lock, ms */
  lockGraceMs: number;
  /** which processes may be checkpointed and which namespaces restored into, for every caller (empty lists: any) */
  policy: TargetPolicy;
  /** the policy file as read and checked at start (parseSettings) */
  policies: PolicyFile;
  /** calls one caller may have running at once, and sessions it may hold */
  maxCallsPerCaller: number;
  maxSessionsPerCaller: number;
  /** host:port of the Prometheus endpoint (plain HTTP, GET /metrics); absent: none */
  metricsListen?: string;
  /** allow metricsListen on an address other than loopback (the endpoint has no authentication) */
  metricsAllowRemote: boolean;
  /** host:port where other daemons send direct transfers (port 0: any free one); absent: none */
  dataListen?: string;
  /** host:port of a plaintext gRPC listener serving only grpc.health.v1 (for kubelet's grpc probes); absent: none */
  healthListen?: string;
  /** queue bytes all streams together may buffer in the daemon's memory (budget.ts); default: an eighth of RAM */
  maxBufferedBytes: number;
  /** kernel memory the rebuilt sockets of all held restore sessions may hold; default: half of tcp_mem's pressure threshold */
  maxHeldSocketBytes: number;
}

const BUDGET_DEFAULTS = defaultBudgetLimits();

export const DEFAULTS: DaemonSettings = {
  listen: ['unix:///run/soccrd/soccrd.sock'],
  stateDir: '/var/lib/soccrd',
  leaseMs: 30_000,
  maxLeaseMs: 3_600_000,
  logLevel: 'info',
  socketMode: 0o600,
  allowUids: [],
  allowGids: [],
  allowIdentities: [],
  insecure: false,
  adminUids: [],
  adminIdentities: [],
  policies: EMPTY_POLICY_FILE,
  lockGraceMs: 10_000,
  policy: OPEN_POLICY,
  maxCallsPerCaller: 64,
  maxSessionsPerCaller: 256,
  metricsAllowRemote: false,
  maxBufferedBytes: BUDGET_DEFAULTS.bufferedBytes,
  maxHeldSocketBytes: BUDGET_DEFAULTS.kernelBytes,
};

const asMiB = (n: number): string => `${Math.round(n / (1024 * 1024))} MiB`;

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
    .option('--listen <addr>', 'listen on unix:///path or host:port (repeatable; replaces the default)', (v: string, acc: string[] | undefined) => [
      ...(acc ?? []),
      v,
    ])
    .option('--state-dir <dir>', `where the daemon keeps its state (default ${DEFAULTS.stateDir})`)
    .option('--config <file>', 'read settings from a JSON file (flags take precedence)')
    .option('--lease-ms <ms>', `default session lease in milliseconds (default ${DEFAULTS.leaseMs})`)
    .option('--log-level <level>', `error, warn, info or debug (default ${DEFAULTS.logLevel})`)
    .option('--lock-table <name>', 'nftables table of the network lock (default soccrd_ and the instance id kept in the state dir)')
    .option('--lock-grace-ms <ms>', `how long a released source keeps its network lock (default ${DEFAULTS.lockGraceMs})`)
    .option('--socket-group <group>', 'give Unix sockets this group (name or gid) and mode 0660')
    .option('--allow-uid <uid>', 'a uid that may call over Unix sockets (repeatable; root always may)', collect)
    .option('--allow-gid <gid>', 'a gid that may call over Unix sockets: primary or supplementary group of the caller (repeatable)', collect)
    .option('--tls-cert <file>', 'TLS certificate chain (PEM) for TCP listeners')
    .option('--tls-key <file>', 'TLS private key (PEM) for TCP listeners')
    .option('--tls-client-ca <file>', 'CA certificates (PEM) that sign client certificates; clients must present one')
    .option('--allow-identity <id>', "client certificate subject CN or SAN that may call over TLS (repeatable; '*': any the CA signed)", collect)
    .option('--insecure', 'allow TCP listeners without TLS, on loopback addresses only (every local user can call, as an admin)')
    .option(
      '--admin-uid <uid>',
      'a uid that may call over Unix sockets as an admin: acts on every session, not narrowed by --policy (repeatable; root always is)',
      collect,
    )
    .option('--admin-identity <id>', 'a client certificate CN or SAN that may call over TLS as an admin (repeatable)', collect)
    .option('--policy <file>', 'what each non-admin identity may touch (JSON; see the README, Security model)')
    .option('--checkpoint-uid <uid>', 'only processes of this uid may be checkpointed (repeatable)', collect)
    .option('--checkpoint-cgroup <path>', 'only processes under this cgroup v2 path may be checkpointed (repeatable)', collect)
    .option('--checkpoint-pid <pid>', 'only this pid may be checkpointed (repeatable)', collect)
    .option('--restore-netns <path>', 'only this network namespace may be restored into (repeatable)', collect)
    .option('--handover-prefix <dir>', 'hand-over sockets may only be named under this directory (repeatable; by real path)', collect)
    .option('--receiver-uid <uid>', 'a uid a hand-over receiver may run as, checked by SO_PEERCRED after connect (repeatable)', collect)
    .option('--max-calls-per-caller <n>', `calls one caller may have running at once (default ${DEFAULTS.maxCallsPerCaller})`)
    .option('--max-sessions-per-caller <n>', `active sessions one caller may hold (default ${DEFAULTS.maxSessionsPerCaller})`)
    .option(
      '--metrics-listen <host:port>',
      'serve Prometheus metrics over plain HTTP at http://HOST:PORT/metrics (loopback only unless --metrics-allow-remote)',
    )
    .option('--metrics-allow-remote', 'allow --metrics-listen on a non-loopback address (the endpoint has no authentication)')
    .option(
      '--health-listen <host:port>',
      'also serve the gRPC health service alone, in plaintext, here (for probes that cannot use the Unix socket or TLS, such as kubelet grpc probes)',
    )
    .option('--data-listen <host:port>', 'take direct transfers from other daemons here (the address they reach this host at; port 0: any free one)')
    .option(
      '--max-buffered-bytes <bytes>',
      `queue bytes all Checkpoint and Restore streams together may hold in the daemon's memory; past it a stream fails with RESOURCE_EXHAUSTED (K, M, G suffixes; default an eighth of RAM, here ${asMiB(DEFAULTS.maxBufferedBytes)})`,
    )
    .option(
      '--max-held-socket-bytes <bytes>',
      `kernel memory (restored queue bytes, and forced buffer sizes beyond the host's own maxima) all held restore sessions together may hold; past it a Restore fails with RESOURCE_EXHAUSTED (default half of tcp_mem's pressure threshold, here ${asMiB(DEFAULTS.maxHeldSocketBytes)})`,
    )
    .addHelpText(
      'after',
      '\nCommands:\n  install-service [--socket] [--unit-dir DIR | --prefix DIR] [-- FLAGS...]   install the systemd units\n  uninstall-service [--unit-dir DIR | --prefix DIR]                          remove them\n',
    )
    .exitOverride()
    .parse(argv);
  const flags = program.opts<{
    listen?: string[];
    stateDir?: string;
    config?: string;
    leaseMs?: string;
    logLevel?: string;
    lockTable?: string;
    lockGraceMs?: string;
    socketGroup?: string;
    allowUid?: string[];
    allowGid?: string[];
    tlsCert?: string;
    tlsKey?: string;
    tlsClientCa?: string;
    allowIdentity?: string[];
    insecure?: boolean;
    adminUid?: string[];
    adminIdentity?: string[];
    policy?: string;
    checkpointUid?: string[];
    checkpointCgroup?: string[];
    checkpointPid?: string[];
    restoreNetns?: string[];
    handoverPrefix?: string[];
    receiverUid?: string[];
    maxCallsPerCaller?: string;
    maxSessionsPerCaller?: string;
    metricsListen?: string;
    metricsAllowRemote?: boolean;
    dataListen?: string;
    healthListen?: string;
    maxBufferedBytes?: string;
    maxHeldSocketBytes?: string;
  }>();
  let file: Partial<DaemonSettings> = {};
  if (flags.config) {
    try {
      file = JSON.parse(readFileSync(flags.config, 'utf8')) as Partial<DaemonSettings>;
    } catch (err) {
      throw new Error(`config file ${flags.config}: ${errorMessage(err)}`, { cause: err });
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
    ...(flags.socketGroup !== undefined ? { socketGroup: flags.socketGroup } : {}),
    ...(flags.allowUid ? { allowUids: flags.allowUid.map((v) => idNumber('--allow-uid', v)) } : {}),
    ...(flags.allowGid ? { allowGids: flags.allowGid.map((v) => idNumber('--allow-gid', v)) } : {}),
    ...(flags.tlsCert ? { tlsCert: flags.tlsCert } : {}),
    ...(flags.tlsKey ? { tlsKey: flags.tlsKey } : {}),
    ...(flags.tlsClientCa ? { tlsClientCa: flags.tlsClientCa } : {}),
    ...(flags.allowIdentity ? { allowIdentities: flags.allowIdentity } : {}),
    ...(flags.insecure ? { insecure: true } : {}),
    ...(flags.adminUid ? { adminUids: flags.adminUid.map((v) => idNumber('--admin-uid', v)) } : {}),
    ...(flags.adminIdentity ? { adminIdentities: flags.adminIdentity } : {}),
    ...(flags.policy ? { policyFile: flags.policy } : {}),
    ...(flags.maxCallsPerCaller ? { maxCallsPerCaller: Number(flags.maxCallsPerCaller) } : {}),
    ...(flags.maxSessionsPerCaller ? { maxSessionsPerCaller: Number(flags.maxSessionsPerCaller) } : {}),
    ...(flags.metricsListen ? { metricsListen: flags.metricsListen } : {}),
    ...(flags.metricsAllowRemote ? { metricsAllowRemote: true } : {}),
    ...(flags.dataListen ? { dataListen: flags.dataListen } : {}),
    ...(flags.healthListen ? { healthListen: flags.healthListen } : {}),
    ...(flags.maxBufferedBytes ? { maxBufferedBytes: parseBytes('--max-buffered-bytes', flags.maxBufferedBytes) } : {}),
    ...(flags.maxHeldSocketBytes ? { maxHeldSocketBytes: parseBytes('--max-held-socket-bytes', flags.maxHeldSocketBytes) } : {}),
  };
  s.maxBufferedBytes = parseBytes('maxBufferedBytes', s.maxBufferedBytes);
  s.maxHeldSocketBytes = parseBytes('maxHeldSocketBytes', s.maxHeldSocketBytes);
  const filePolicy: Partial<TargetPolicy> = file.policy ?? {};
  s.policy = {
    checkpointUids: flags.checkpointUid?.map((v) => idNumber('--checkpoint-uid', v)) ?? filePolicy.checkpointUids ?? [],
    checkpointCgroups: flags.checkpointCgroup ?? filePolicy.checkpointCgroups ?? [],
    checkpointPids: flags.checkpointPid?.map((v) => idNumber('--checkpoint-pid', v)) ?? filePolicy.checkpointPids ?? [],
    restoreNetns: flags.restoreNetns ?? filePolicy.restoreNetns ?? [],
    handoverPrefixes: flags.handoverPrefix ?? filePolicy.handoverPrefixes ?? [],
    receiverUids: flags.receiverUid?.map((v) => idNumber('--receiver-uid', v)) ?? filePolicy.receiverUids ?? [],
  };
  for (const dir of s.policy.handoverPrefixes) {
    if (!dir.startsWith('/')) throw new Error(`--handover-prefix ${dir}: give an absolute directory`);
  }
  if (s.policyFile !== undefined && (typeof s.policyFile !== 'string' || !s.policyFile)) throw new Error('policyFile: give a path');
  s.policies = s.policyFile ? readPolicyFile(s.policyFile) : EMPTY_POLICY_FILE;
  for (const [name, n] of [
    ['max calls per caller', s.maxCallsPerCaller],
    ['max sessions per caller', s.maxSessionsPerCaller],
  ] as const) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: give a whole number of at least 1, not ${n}`);
  }
  // With a group, the socket is the group's unless the config file says otherwise.
  if (s.socketGroup !== undefined && file.socketMode === undefined) s.socketMode = 0o660;
  checkAccessSettings(s);
  checkMetricsSettings(s);
  checkDataListen(s.dataListen);
  if (s.lockTable !== undefined && (typeof s.lockTable !== 'string' || !/^[A-Za-z][A-Za-z0-9_]{0,31}$/.test(s.lockTable)))
    throw new Error(`lock table name ${s.lockTable}: letters, digits and _ only`);
  if (!Number.isInteger(s.lockGraceMs) || s.lockGraceMs < 0) throw new Error(`lock grace of ${s.lockGraceMs} ms: give 0 or more`);
  if (!Array.isArray(s.listen) || s.listen.length === 0) throw new Error('at least one --listen address is needed');
  if (!Number.isInteger(s.leaseMs) || s.leaseMs < 100) throw new Error(`lease of ${s.leaseMs} ms: give at least 100`);
  return s;
}

function collect(v: string, acc: string[] = []): string[] {
  return [...acc, v];
}

function idNumber(flag: string, v: string): number {
  if (!/^\d+$/.test(v) || Number(v) > 0xfffffffe) throw new Error(`${flag} ${v}: give a number`);
  return Number(v);
}

/** Who may call, and how: a TCP listener needs TLS (or --insecure on a loopback address). */
function checkAccessSettings(s: DaemonSettings): void {
  if (!Number.isInteger(s.socketMode) || s.socketMode < 0 || s.socketMode > 0o777) throw new Error(`socket mode ${s.socketMode}: give 0..0o777`);
  if (typeof s.socketGroup === 'number') s.socketGroup = String(s.socketGroup);
  if (s.socketGroup !== undefined && (typeof s.socketGroup !== 'string' || !s.socketGroup)) throw new Error('socketGroup: give a group name or gid');
  for (const [key, list] of [
    ['allowUids', s.allowUids],
    ['allowGids', s.allowGids],
    ['adminUids', s.adminUids],
  ] as const) {
    if (!Array.isArray(list) || !list.every((n) => Number.isInteger(n) && n >= 0 && n <= 0xfffffffe)) throw new Error(`${key}: give a list of numeric ids`);
  }
  for (const [key, list] of [
    ['allowIdentities', s.allowIdentities],
    ['adminIdentities', s.adminIdentities],
  ] as const) {
    if (!Array.isArray(list) || !list.every((i) => typeof i === 'string' && i.length > 0)) throw new Error(`${key}: give a list of names`);
  }
  const tlsFiles = [s.tlsCert, s.tlsKey, s.tlsClientCa].filter((f) => f !== undefined && f !== '').length;
  if (tlsFiles !== 0 && tlsFiles !== 3) throw new Error('TLS needs all of --tls-cert, --tls-key and --tls-client-ca');
  for (const addr of s.listen) {
    if (typeof addr !== 'string') throw new Error('listen: give a list of addresses');
    if (addr.startsWith('unix:')) continue;
    const { host } = splitHostPort(addr);
    if (tlsFiles === 3) {
      if (!s.allowIdentities.length && !s.adminIdentities.length && !s.policies.adminIdentities.length)
        throw new Error(`${addr}: a TLS listener needs --allow-identity (a client certificate CN or SAN, or '*' for any certificate the client CA signed)`);
    } else if (!s.insecure) {
      throw new Error(`${addr}: TCP needs TLS with client certificates (--tls-cert, --tls-key, --tls-client-ca), or --insecure on a loopback address`);
    } else if (!isLoopback(host)) {
      throw new Error(`${addr}: --insecure only on a loopback address (127.0.0.0/8 or [::1]); use TLS elsewhere`);
    }
  }
}

/** The metrics endpoint is unauthenticated: loopback only, unless the operator says otherwise. */
function checkMetricsSettings(s: DaemonSettings): void {
  if (typeof s.metricsAllowRemote !== 'boolean') throw new Error('metricsAllowRemote: give true or false');
  if (s.metricsListen === undefined) return;
  if (typeof s.metricsListen !== 'string') throw new Error('metricsListen: give host:port');
  const { host } = splitHostPort(s.metricsListen);
  if (!isLoopback(host) && !s.metricsAllowRemote) {
    throw new Error(
      `metrics on ${s.metricsListen}: metrics have no authentication, so only a loopback address (127.0.0.0/8 or [::1]) unless --metrics-allow-remote`,
    );
  }
}

/**
 * The data endpoint is advertised as bound (GetVersion) and dialled by other daemons as it is: a
 * wildcard address would name no host they can reach.
 */
function checkDataListen(addr: unknown): void {
  if (addr === undefined) return;
  if (typeof addr !== 'string') throw new Error('dataListen: give host:port');
  const { host } = splitHostPort(addr);
  if (!isIP(host) || host === '0.0.0.0' || host === '::')
    throw new Error(`data listener on ${addr}: give the IP address other daemons reach this host at, not a name or a wildcard`);
}

/** host:port as a listener reports it bound ([v6]:port), to match it against an inherited socket. */
function canonicalHostPort(addr: string): string {
  const { host, port } = splitHostPort(addr);
  return hostPort(host, port);
}

export interface RunningDaemon {
  server: grpc.Server;
  /** where it listens (inherited sockets included) */
  bound: string[];
  sessions: SessionManager;
  stop(reason: string): Promise<void>;
}

/**
 * Starts serving. `inherited`: listening sockets passed by socket activation; a configured address
 * that one of them is bound to is served by it (the .socket unit owns that socket file).
 */
export async function startDaemon(settings: DaemonSettings, log: Logger, inherited: InheritedSocket[] = []): Promise<RunningDaemon> {
  // Marked as a soccrd before anything else: no daemon checkpoints another (acquire.ts, DAEMON_MARKER).
  holdDaemonMarker();
  mkdirSync(settings.stateDir, { recursive: true, mode: 0o700 });
  checkStateDir(settings.stateDir);
  const version = packageVersion();
  // Crash safety (docs/crash-safety.md): what an earlier run left frozen or locked is taken back before
  // the lock table is reset (entries still needed stay, without a gap) and before anything is served.
  // The journal first: it refuses a state directory another running daemon uses, before any table is touched.
  const journal = Journal.open(settings.stateDir, log);
  const instance = instanceOf(settings.stateDir);
  const lockTable = settings.lockTable ?? lockTableOf(instance);
  const netlockCandidate = new NetworkLock({ table: lockTable, owner: instance, mark: SOCCR_MARK, log });
  const recovery = planRecovery(journal, log);
  const netlock = netlockCandidate.start(recovery.keepOwn) ? netlockCandidate : undefined;
  try {
    const features = { ...probeFeatures(), networkLock: netlock !== undefined };
    const kernelCalls = batchPath();
    if (kernelCalls.native) log.info('kernel calls: batched, one FFI call per engine step', { library: kernelCalls.reason });
    else log.warn('kernel calls: one FFI call each (slower per connection)', { reason: kernelCalls.reason });
    const sessions = new SessionManager({
      defaultLeaseMs: settings.leaseMs,
      maxLeaseMs: settings.maxLeaseMs,
      retainEndedMs: 10 * 60_000,
      lockGraceMs: settings.lockGraceMs,
      netlock,
      log,
      journal,
    });
    const registry = new ConnectionRegistry();
    const authorize = makeAuthorizer(
      {
        allowUids: settings.allowUids,
        allowGids: settings.allowGids,
        allowIdentities: settings.allowIdentities,
        adminUids: [...settings.adminUids, ...settings.policies.adminUids],
        adminIdentities: [...settings.adminIdentities, ...settings.policies.adminIdentities],
      },
      registry,
    );
    const policies = new PolicyBook(settings.policy, settings.policies);
    const gate = new CallerGate({ maxCalls: settings.maxCallsPerCaller, maxSessions: settings.maxSessionsPerCaller });
    const budget = new ResourceBudget({ bufferedBytes: settings.maxBufferedBytes, kernelBytes: settings.maxHeldSocketBytes });
    const bufferCaps = hostBufferCaps();
    watchBudget(budget);
    log.info('resource budget', { maxBufferedBytes: settings.maxBufferedBytes, maxHeldSocketBytes: settings.maxHeldSocketBytes, bufferCaps });
    let dataListener: DataListener | undefined;
    if (settings.dataListen) {
      const { host, port } = splitHostPort(settings.dataListen);
      try {
        dataListener = await DataListener.listen(host, port, log.child({ component: 'data-path' }));
      } catch (err) {
        throw new Error(`cannot take direct transfers on ${settings.dataListen}: ${errorMessage(err)}`, { cause: err });
      }
      log.info('taking direct transfers', { address: settings.dataListen, endpoint: dataListener.endpoint });
    }
    const service = new SocketRepairService({
      dataListener,
      version,
      features,
      sessions,
      log,
      limits: DEFAULT_LIMITS,
      eagerQueueBytes: 256 * 1024,
      eagerSessionBytes: 16 * 1024 * 1024,
      netlock,
      authorize,
      journal,
      policies,
      gate,
      budget,
      bufferCaps,
    });
    recovery.apply(netlock, sessions);
    watchSessions(sessions);
    const pkg = loadPackageDefinition();
    warmFrameCodecs(pkg);
    const proto = grpc.loadPackageDefinition(pkg) as unknown as { soccr: { v1: { SocketRepairService: grpc.ServiceClientConstructor } } };
    const server = new grpc.Server({ 'grpc.max_receive_message_length': 8 * 1024 * 1024, 'grpc.max_send_message_length': 8 * 1024 * 1024 });
    const definition = proto.soccr.v1.SocketRepairService.service;
    // The daemon's own frames have the proto's types already: encoded without proto-loader's fromObject.
    definition.Checkpoint.responseSerialize = encodeFrame as (value: unknown) => Buffer;
    server.addService(definition, service.handlers());
    const health = new HealthImplementation({ '': 'SERVING', [SERVICE_NAME]: 'SERVING' });
    health.addToServer(server);
    new ReflectionService(pkg).addToServer(server);

    // Unix sockets and insecure loopback TCP are accepted here (to know who connected), then injected.
    const listeners: Listener[] = [];
    const socketGid = settings.socketGroup !== undefined ? resolveGroup(settings.socketGroup) : undefined;
    const tlsCredentials =
      settings.tlsCert && settings.tlsKey && settings.tlsClientCa
        ? tlsServerCredentials({ cert: settings.tlsCert, key: settings.tlsKey, clientCa: settings.tlsClientCa })
        : undefined;
    let injector: grpc.ConnectionInjector | undefined;
    const inject = (): grpc.ConnectionInjector => (injector ??= server.createConnectionInjector(grpc.ServerCredentials.createInsecure()));
    let tlsInjector: grpc.ConnectionInjector | undefined;
    // An inherited TCP socket follows the rules of a configured TCP address (checkAccessSettings).
    const inheritedTcpAccess = (host: string): InheritedTcpAccess => {
      if (tlsCredentials) {
        if (!settings.allowIdentities.length && !settings.adminIdentities.length && !settings.policies.adminIdentities.length)
          return {
            kind: 'refused',
            reason: "a TLS listener needs --allow-identity (a client certificate CN or SAN, or '*' for any certificate the client CA signed)",
          };
        return { kind: 'tls', injector: (tlsInjector ??= server.createConnectionInjector(tlsCredentials)) };
      }
      if (!settings.insecure)
        return {
          kind: 'refused',
          reason: 'an inherited TCP socket needs TLS with client certificates (--tls-cert, --tls-key, --tls-client-ca), or --insecure on a loopback address',
        };
      if (!isLoopback(host)) return { kind: 'refused', reason: '--insecure only on a loopback address (127.0.0.0/8 or [::1]); use TLS elsewhere' };
      return { kind: 'insecure', injector: inject(), registry };
    };
    const failed = (what: string, err: unknown): Error => {
      for (const l of listeners) l.close();
      return new Error(`cannot listen on ${what}: ${errorMessage(err)}`, { cause: err });
    };
    for (const s of inherited) {
      try {
        listeners.push(
          s.kind === 'unix' ? await listenInheritedUnix(s.fd, s.path, inject(), registry, log) : await listenInheritedTcp(s.fd, inheritedTcpAccess, log),
        );
      } catch (err) {
        throw failed(`socket-activation fd ${s.fd} (${s.name})`, err);
      }
      log.info('listening on an inherited socket', { fd: s.fd, name: s.name, bound: listeners[listeners.length - 1].bound });
    }
    const inheritedBound = new Set(listeners.map((l) => l.bound));
    // Unix socket files this daemon made (and removes when it stops).
    const ownedPaths: string[] = [];
    for (const addr of settings.listen) {
      if (inheritedBound.has(addr) || (!addr.startsWith('unix:') && inheritedBound.has(canonicalHostPort(addr)))) {
        log.info('served by an inherited socket', { address: addr });
        continue;
      }
      try {
        if (addr.startsWith('unix://')) {
          const p = addr.slice('unix://'.length);
          if (!path.isAbsolute(p)) throw new Error(`${addr}: a Unix socket path must be absolute (unix:///run/...)`);
          listeners.push(await listenUnix(p, { mode: settings.socketMode, gid: socketGid }, inject(), registry, log));
          ownedPaths.push(p);
        } else if (addr.startsWith('unix:')) {
          throw new Error(`${addr}: write Unix addresses as unix:///absolute/path`);
        } else if (tlsCredentials) {
          listeners.push(await listenTls(server, addr, tlsCredentials));
        } else {
          listeners.push(await listenInsecureTcp(addr, inject(), registry, log)); // loopback only: checked by parseSettings
          log.warn('listening on TCP without TLS: every local user can call, as an admin', { address: addr });
        }
      } catch (err) {
        throw failed(addr, err);
      }
      const l = listeners[listeners.length - 1];
      log.info('listening', { address: addr, bound: l.bound, tls: !addr.startsWith('unix:') && tlsCredentials !== undefined });
    }
    // Health alone on its own server: what it reveals (serving or not) needs no caller identity.
    let healthServer: grpc.Server | undefined;
    let healthBound: string | undefined;
    if (settings.healthListen) {
      const { host, port } = splitHostPort(settings.healthListen);
      healthServer = new grpc.Server();
      health.addToServer(healthServer);
      try {
        const target = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
        const boundPort = await new Promise<number>((resolve, reject) =>
          (healthServer as grpc.Server).bindAsync(target, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
        );
        healthBound = host.includes(':') ? `[${host}]:${boundPort}` : `${host}:${boundPort}`;
      } catch (err) {
        healthServer.forceShutdown();
        for (const l of listeners) l.close();
        throw new Error(`cannot serve health on ${settings.healthListen}: ${errorMessage(err)}`, { cause: err });
      }
      log.info('serving health', { address: settings.healthListen, bound: healthBound });
    }
    let metrics: Awaited<ReturnType<typeof listenMetrics>> | undefined;
    if (settings.metricsListen) {
      const { host, port } = splitHostPort(settings.metricsListen);
      try {
        metrics = await listenMetrics(host, port);
      } catch (err) {
        for (const l of listeners) l.close();
        healthServer?.forceShutdown();
        throw new Error(`cannot serve metrics on ${settings.metricsListen}: ${errorMessage(err)}`, { cause: err });
      }
      log.info('serving metrics', { address: settings.metricsListen, bound: metrics.bound });
    }
    writeStateFile(
      path.join(settings.stateDir, 'daemon.json'),
      JSON.stringify({
        pid: process.pid,
        listen: settings.listen,
        bound: listeners.map((l) => l.bound),
        metrics: metrics?.bound,
        health: healthBound,
        version,
        startedAt: new Date().toISOString(),
      }),
    );

    let stopping: Promise<void> | undefined;
    const stop = (reason: string): Promise<void> => {
      stopping ??= (async () => {
        log.info('stopping', { reason });
        health.setStatus('', 'NOT_SERVING');
        health.setStatus(SERVICE_NAME, 'NOT_SERVING');
        for (const l of listeners) l.close();
        if (metrics) closeMetrics(metrics.server);
        // NOT_SERVING is what probes see until the process is gone, then nothing
        healthServer?.forceShutdown();
        void dataListener?.close();
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
        await sessions.shutdown();
        netlock?.stop();
        journal.shutdown();
        for (const p of ownedPaths) removeSocketFile(p);
        log.info('stopped');
      })();
      return stopping;
    };
    log.info('soccrd ready', { version, features, instance: instance.id, lockTable });
    return { server, bound: listeners.map((l) => l.bound), sessions, stop };
  } catch (err) {
    // A start that fails once the lock table exists removes it again, unless recovery kept entries in it
    // for frozen connections the next start must take back (their lock must not lapse meanwhile).
    if (netlock && recovery.keepOwn.length === 0) netlock.stop();
    throw err;
  }
}

/** The STATUS= line systemd shows for the daemon. */
function statusLine(d: RunningDaemon): string {
  const n = d.sessions.active().length;
  return `serving on ${d.bound.join(', ')}, ${n} active session${n === 1 ? '' : 's'}`;
}

async function main(): Promise<void> {
  if (await runServiceCommand(process.argv)) return;
  // Read (and removed from the environment) first, before anything could run a child process.
  const notifier = Notifier.fromEnvironment();
  notifier.startWatchdog();
  let settings: DaemonSettings;
  try {
    settings = parseSettings(process.argv);
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') process.exit(0);
    process.stderr.write(`soccrd: ${e.message ?? String(err)}\n`);
    notifier.send({ STATUS: `bad settings: ${e.message ?? String(err)}` });
    process.exit(2);
  }
  const log = createLogger(settings.logLevel);
  if (notifier.enabled) log.info('notifying the service manager', { socket: notifier.socketPath, watchdogIntervalMs: notifier.watchdogIntervalMs });
  let daemon: RunningDaemon;
  try {
    daemon = await startDaemon(settings, log, inheritedSockets());
  } catch (err) {
    log.error('cannot start', { error: err });
    notifier.send({ STATUS: `cannot start: ${errorMessage(err)}` });
    process.exit(1);
  }
  // Every listener accepts calls now.
  if (notifier.enabled && !notifier.ready(statusLine(daemon)))
    log.warn('cannot notify the service manager', { socket: notifier.socketPath, errno: notifier.lastError });
  const statusTimer = notifier.enabled ? setInterval(() => notifier.status(statusLine(daemon)), 5000).unref() : undefined;
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      if (statusTimer) clearInterval(statusTimer);
      notifier.stopping(`stopping (${sig})`);
      void daemon.stop(sig).then(() => {
        notifier.close();
        process.exit(0);
      });
    });
  }
}

if (require.main === module) void main();
