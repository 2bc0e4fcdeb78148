#!/usr/bin/env node
// soccrctl: the command line of soccrd. Talks to the daemon over gRPC (client.ts), and decodes
// checkpoint files offline (`show`). Human-readable output by default, one JSON document with --json;
// on failure, exit code 1 and one line on stderr: "soccrctl: NOT_FOUND: ...".
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import cliProgress from 'cli-progress';
import Table from 'cli-table3';
import { Command, InvalidArgumentError, Option } from 'commander';
import { formatAddressMsg } from '../protocol/address';
import { stateName } from '../protocol/saved-state';
import type { AddressMsg } from '../protocol/messages';
import {
  CheckpointFileDescription,
  DEFAULT_ADDRESS,
  DEFAULT_TIMEOUT_MS,
  GetVersionResponseMsg,
  SessionInfoMsg,
  SessionKind,
  SessionState,
  SocketEntryMsg,
  SoccrClient,
  SoccrClientOptions,
  TransferProgress,
  describeCheckpointFile,
  describeError,
  sessionKindName,
  sessionStateName,
  tlsCredentials,
} from './client';
import { formatBytes, formatMs, phaseLine } from './format';
import { DEFAULT_HOOK_TIMEOUT_MS, MigrateError, MigrateReport, migrate } from './migrate';

const MiB = 1024 * 1024;

interface GlobalOptions {
  daemon: string;
  json: boolean;
  timeout: number;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsServerName?: string;
}

/** mTLS to a TCP daemon when any --tls-* option is given; insecure otherwise (a Unix socket). */
function connectionOptions(g: GlobalOptions): Pick<SoccrClientOptions, 'credentials' | 'channelOptions'> {
  const given = (v: string | undefined): string | undefined => (v ? v : undefined); // an empty $SOCCRD_TLS_* is no option
  const [ca, cert, key, serverName] = [given(g.tlsCa), given(g.tlsCert), given(g.tlsKey), given(g.tlsServerName)];
  if (ca === undefined && cert === undefined && key === undefined && serverName === undefined) return {};
  const credentials = tlsCredentials({ ca, cert, key, serverName });
  // The override also sends the name in SNI (the credentials alone check it, e.g. in migrate).
  return { credentials, channelOptions: serverName ? { 'grpc.ssl_target_name_override': serverName } : undefined };
}

/** A failure already explained on stdout (e.g. `show` of a corrupt file): only its line goes to stderr. */
class CliFailure extends Error {}

// ---- output ---------------------------------------------------------------------------------------

function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

function note(text: string): void {
  process.stderr.write(`${text}\n`);
}

function printJson(doc: unknown): void {
  print(JSON.stringify(doc, null, 2));
}

function table(head: string[]): Table.Table {
  // no colours: output is read by scripts and tests as often as by people
  return new Table({ head, style: { head: [], border: [] } });
}

function formatTime(ms: number): string {
  return ms ? new Date(ms).toISOString() : '-';
}

function formatLease(ms: number): string {
  if (!ms) return '-';
  const d = Math.round((ms - Date.now()) / 1000);
  return `${new Date(ms).toISOString()} (${d >= 0 ? `in ${d}s` : `${-d}s ago`})`;
}

function familyName(f: number): string {
  return f === 1 ? 'ipv4' : f === 2 ? 'ipv6' : 'unspecified';
}

function addressJson(a: AddressMsg | null | undefined): { family: string; ip: string; port: number } | null {
  return a ? { family: familyName(a.family), ip: a.ip, port: a.port } : null;
}

function sessionJson(s: SessionInfoMsg): Record<string, unknown> {
  return {
    sessionId: s.sessionId,
    kind: sessionKindName(s.kind),
    state: sessionStateName(s.state),
    pid: s.pid,
    createdUnixMs: s.createdUnixMs,
    leaseExpiresUnixMs: s.leaseExpiresUnixMs,
    netns: s.netns,
    deliverUnixPath: s.deliverUnixPath,
    reason: s.reason,
    connections: s.connections.map((c) => ({
      id: c.id,
      fd: c.fd,
      state: stateName(c.state),
      local: addressJson(c.local),
      remote: addressJson(c.remote),
      recvQueueLen: c.recvQueueLen,
      sendQueueLen: c.sendQueueLen,
      delivered: c.delivered,
    })),
  };
}

function printSession(s: SessionInfoMsg): void {
  const lines: [string, string][] = [
    ['session', s.sessionId],
    ['kind', sessionKindName(s.kind)],
    ['state', sessionStateName(s.state)],
    ['pid', String(s.pid)],
    ['created', formatTime(s.createdUnixMs)],
    ['lease', formatLease(s.leaseExpiresUnixMs)],
  ];
  if (s.kind === SessionKind.RESTORE) lines.push(['netns', s.netns || '-'], ['deliver', s.deliverUnixPath || '-']);
  if (s.reason) lines.push(['reason', s.reason]);
  print(lines.map(([k, v]) => `${k.padEnd(12)}${v}`).join('\n'));
  if (s.connections.length === 0) return;
  const t = table(['id', 'fd', 'state', 'local', 'remote', 'recv-q', 'send-q', 'delivered']);
  for (const c of s.connections) {
    t.push([c.id, s.kind === SessionKind.SOURCE ? String(c.fd) : '-', stateName(c.state), formatAddressMsg(c.local), formatAddressMsg(c.remote), String(c.recvQueueLen), String(c.sendQueueLen), c.delivered ? 'yes' : 'no']);
  }
  print(t.toString());
}

/** One line after an action on a session. */
function sessionLine(s: SessionInfoMsg): string {
  let line = `session ${s.sessionId}: ${sessionStateName(s.state)}`;
  if (s.leaseExpiresUnixMs) line += `, lease until ${formatLease(s.leaseExpiresUnixMs)}`;
  if (s.state === SessionState.RESUMED && s.kind === SessionKind.RESTORE && s.deliverUnixPath) line += `, delivered to ${s.deliverUnixPath}`;
  if (s.reason) line += ` (${s.reason})`;
  return line;
}

function printVersion(clientVersion: string, v: GetVersionResponseMsg): void {
  print(
    [
      ['soccrctl', clientVersion],
      ['soccrd', v.version],
      ['kernel', v.kernelRelease],
      ['data path', v.dataEndpoint || '-'],
      ['format', String(v.streamFormat)],
    ]
      .map(([k, val]) => `${k.padEnd(12)}${val}`)
      .join('\n'),
  );
  const f = v.features;
  if (!f) return;
  const t = table(['feature', 'available']);
  const rows: [string, boolean][] = [
    ['tcp_repair', f.tcpRepair],
    ['repair_window', f.repairWindow],
    ['pidfd_getfd', f.pidfdGetfd],
    ['buf_lock', f.bufLock],
    ['raw_socket', f.rawSocket],
    ['network_lock', f.networkLock],
    ['native_batch', f.nativeBatch],
  ];
  for (const [name, ok] of rows) t.push([name, ok ? 'yes' : 'no']);
  print(t.toString());
}

function printSockets(pid: number, sockets: SocketEntryMsg[]): void {
  if (sockets.length === 0) {
    print(`no TCP sockets in pid ${pid}`);
    return;
  }
  const t = table(['fd', 'inode', 'family', 'state', 'local', 'remote', 'recv-q', 'send-q']);
  for (const s of sockets) {
    t.push([String(s.fd), String(s.inode), familyName(s.family), stateName(s.state), formatAddressMsg(s.local), formatAddressMsg(s.remote), String(s.recvQueue), String(s.sendQueue)]);
  }
  print(t.toString());
}

function printDescription(d: CheckpointFileDescription): void {
  const h = d.session;
  const lines: [string, string][] = [
    ['file', `${d.file} (${formatBytes(d.fileBytes)}, format ${d.format})`],
    ['session', h ? h.sessionId : '-'],
  ];
  if (h) {
    lines.push(
      ['source', `pid ${h.pid} on ${h.hostname || '?'}`],
      ['created', formatTime(h.createdUnixMs)],
      ['lease', h.leaseExpiresUnixMs ? new Date(h.leaseExpiresUnixMs).toISOString() : '-'],
      ['connections', `${d.connections.length} of ${h.connectionCount}, ${formatBytes(d.queueBytes)} of queues`],
    );
  }
  lines.push(['status', d.verified ? 'verified' : `NOT VERIFIED: ${d.error ?? 'unknown problem'}`]);
  print(lines.map(([k, v]) => `${k.padEnd(12)}${v}`).join('\n'));
  if (d.connections.length === 0) return;
  const short = (hex: string | null): string => (hex ? `${hex.slice(0, 16)}…` : '-');
  const t = table(['#', 'id', 'fd', 'state', 'local', 'remote', 'recv-q', 'send-q (unsent)', 'recv sha256', 'send sha256', 'verified']);
  for (const c of d.connections) {
    const verdict = c.verified ? 'yes' : c.recvSha256 === null ? 'INCOMPLETE' : 'MISMATCH';
    t.push([String(c.index), c.id, String(c.fd), c.state, c.local, c.remote, String(c.recvQueueLen), `${c.sendQueueLen} (${c.unsentLen})`, short(c.recvSha256), short(c.sendSha256), verdict]);
  }
  print(t.toString());
}

/** A progress bar on stderr for transfers over 1 MiB, when stderr is a terminal. */
class TransferBar {
  private bar: cliProgress.SingleBar | undefined;
  constructor(private readonly label: string) {}

  update(p: TransferProgress): void {
    if (!process.stderr.isTTY) return;
    const byBytes = p.totalBytes !== undefined;
    const total = byBytes ? (p.totalBytes as number) : (p.totalConnections ?? 0);
    const value = byBytes ? p.bytes : p.connections;
    const payload = { conns: `${p.connections}/${p.totalConnections ?? '?'}`, xfer: byBytes ? `${formatBytes(p.bytes)}/${formatBytes(total)}` : formatBytes(p.bytes) };
    if (!this.bar) {
      if ((p.totalBytes ?? p.bytes) <= MiB) return;
      this.bar = new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: `${this.label} [{bar}] {percentage}% | {conns} connections | {xfer}`,
          hideCursor: true,
          clearOnComplete: true,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(total, value, payload);
      return;
    }
    this.bar.setTotal(total);
    this.bar.update(value, payload);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}

function migrateSummary(r: MigrateReport): string {
  return (
    `migrated ${r.connections} connection(s) of pid ${r.pid} (${formatBytes(r.queueBytes)} of queues) from ${r.from} to ${r.to}: ` +
    `frozen for ${formatMs(r.freezeMs)}, ${formatMs(r.totalMs)} in all`
  );
}

// ---- argument parsing ----------------------------------------------------------------------------

function parseUint(what: string, max = 0xffffffff): (v: string) => number {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) > max) throw new InvalidArgumentError(`${what} must be a whole number${max < 0xffffffff ? ` up to ${max}` : ''}.`);
    return Number(v);
  };
}

function collectFds(v: string, acc: number[] = []): number[] {
  const fds = v.split(',').map((s) => parseUint('an fd', 0x7fffffff)(s.trim()));
  return [...acc, ...fds];
}

/** unix:PATH (also unix:///PATH, or a bare absolute path) to an absolute path. */
function parseDeliver(v: string): string {
  let p: string;
  if (v.startsWith('unix://')) p = v.slice('unix://'.length);
  else if (v.startsWith('unix:')) p = v.slice('unix:'.length);
  else if (v.startsWith('/')) p = v;
  else throw new InvalidArgumentError('expected unix:PATH (the Unix socket of the process that takes the connections).');
  if (!p) throw new InvalidArgumentError('the Unix socket path is empty.');
  return path.resolve(p);
}

/** A path, or the name of a named network namespace (ip netns): NAME means /run/netns/NAME. */
function parseNetns(v: string): string {
  if (!v) throw new InvalidArgumentError('empty network namespace.');
  return v.includes('/') ? path.resolve(v) : `/run/netns/${v}`;
}

function clientVersion(): string {
  for (const p of [path.resolve(__dirname, '..', '..', 'package.json'), path.resolve(__dirname, '..', 'package.json')]) {
    try {
      const v = (JSON.parse(readFileSync(p, 'utf8')) as { version?: unknown }).version;
      if (typeof v === 'string') return v;
    } catch {
      // try the next location
    }
  }
  return 'unknown';
}

// ---- commands --------------------------------------------------------------------------------------

export function buildProgram(): Command {
  const program = new Command('soccrctl');
  const version = clientVersion();
  program
    .description('Control soccrd: checkpoint, restore and hand over live TCP connections.')
    .version(version, '-V, --client-version', "print soccrctl's own version")
    .addOption(new Option('--daemon <addr>', 'daemon address: unix:///path or host:port').env('SOCCRD_ADDRESS').default(DEFAULT_ADDRESS))
    .option('--json', 'print one JSON document on stdout', false)
    .option('--timeout <ms>', 'deadline of each call, and how long to wait for a connection (0: none)', parseUint('--timeout'), DEFAULT_TIMEOUT_MS)
    .addOption(new Option('--tls-ca <file>', "TLS: CA certificates (PEM) of the daemon's certificate (TCP daemons)").env('SOCCRD_TLS_CA'))
    .addOption(new Option('--tls-cert <file>', 'TLS: client certificate chain (PEM)').env('SOCCRD_TLS_CERT'))
    .addOption(new Option('--tls-key <file>', "TLS: the client certificate's key (PEM)").env('SOCCRD_TLS_KEY'))
    .addOption(new Option('--tls-server-name <name>', "TLS: the name the daemon's certificate carries, if not the address's host").env('SOCCRD_TLS_SERVER_NAME'))
    .showSuggestionAfterError()
    .configureOutput({
      outputError: (str, write) => write(`soccrctl: ${str.replace(/^error: /, '')}`),
    });

  const globals = (cmd: Command): GlobalOptions => cmd.optsWithGlobals<GlobalOptions>();

  /** Runs `fn` with a client, closed afterwards. */
  const withClient = async <T>(cmd: Command, fn: (client: SoccrClient, g: GlobalOptions) => Promise<T>): Promise<T> => {
    const g = globals(cmd);
    const client = new SoccrClient(g.daemon, { timeoutMs: g.timeout, ...connectionOptions(g) });
    try {
      return await fn(client, g);
    } finally {
      client.close();
    }
  };

  /** resume, release, abort, renew: one session in, one session out. */
  const sessionAction = (name: string, description: string, call: (c: SoccrClient, id: string, opts: { deliver?: string }) => Promise<SessionInfoMsg>): Command =>
    program
      .command(name)
      .description(description)
      .argument('<id>', 'session id')
      .action(async (id: string, opts: { deliver?: string }, cmd: Command) => {
        await withClient(cmd, async (client, g) => {
          const s = await call(client, id, opts);
          if (g.json) printJson(sessionJson(s));
          else print(sessionLine(s));
        });
      });

  program
    .command('version')
    .description("the daemon's version, kernel and features")
    .action(async (_opts: object, cmd: Command) => {
      await withClient(cmd, async (client, g) => {
        const v = await client.getVersion();
        if (g.json) printJson({ client: version, daemon: v.version, kernelRelease: v.kernelRelease, streamFormat: v.streamFormat, features: v.features });
        else printVersion(version, v);
      });
    });

  program
    .command('sockets')
    .description('the TCP sockets a process holds')
    .requiredOption('--pid <pid>', 'process id', parseUint('--pid'))
    .action(async (opts: { pid: number }, cmd: Command) => {
      await withClient(cmd, async (client, g) => {
        const sockets = await client.listSockets(opts.pid);
        if (g.json) {
          printJson({
            pid: opts.pid,
            sockets: sockets.map((s) => ({ ...s, family: familyName(s.family), state: stateName(s.state), local: addressJson(s.local), remote: addressJson(s.remote) })),
          });
        } else {
          printSockets(opts.pid, sockets);
        }
      });
    });

  program
    .command('checkpoint')
    .description('freeze connections of a process and save them to a file; prints the source session id')
    .requiredOption('--pid <pid>', 'process that owns the connections', parseUint('--pid'))
    .option('--fd <n>', 'fd to checkpoint (repeatable, or comma-separated)', collectFds)
    .option('--all', 'every connection the process holds', false)
    .option('--lease-ms <ms>', "how long the sockets stay frozen without release or resume (default: the daemon's)", parseUint('--lease-ms'))
    .option('--stop-owner', 'stop the owner (SIGSTOP) while its connections are frozen; continued on resume, left stopped on release', false)
    .option('--no-network-lock', 'do not lock the network around the connections (the caller keeps packets away from them)')
    .requiredOption('--out <file>', 'checkpoint file to write')
    .action(async (opts: { pid: number; fd?: number[]; all: boolean; leaseMs?: number; stopOwner: boolean; networkLock: boolean; out: string }, cmd: Command) => {
      if (!opts.all && !opts.fd?.length) cmd.error('checkpoint needs --fd N or --all');
      if (opts.all && opts.fd?.length) cmd.error('--fd and --all exclude each other');
      await withClient(cmd, async (client, g) => {
        const bar = new TransferBar('checkpoint');
        try {
          const r = await client.checkpointToFile(
            opts.pid,
            { fds: opts.fd, all: opts.all, leaseMs: opts.leaseMs, stopOwner: opts.stopOwner, noNetworkLock: !opts.networkLock },
            opts.out,
            (p) => bar.update(p),
          );
          bar.stop();
          if (g.json) {
            printJson({ sessionId: r.header.sessionId, file: r.file, header: r.header, connections: r.connections, queueBytes: r.queueBytes, fileBytes: r.fileBytes });
          } else {
            print(r.header.sessionId);
            note(
              `checkpointed ${r.connections} connection(s) of pid ${r.header.pid} (${formatBytes(r.queueBytes)} of queues) into ${r.file}; ` +
                `frozen until ${formatLease(r.header.leaseExpiresUnixMs)}: release or resume the session`,
            );
          }
        } finally {
          bar.stop();
        }
      });
    });

  program
    .command('restore')
    .description('rebuild the connections of a checkpoint file; prints the restore session id')
    .requiredOption('--in <file>', 'checkpoint file to read')
    .option('--netns <path>', 'network namespace to rebuild in: /proc/PID/ns/net, /run/netns/NAME or NAME')
    .option('--deliver <unix:path>', 'Unix socket of the process that takes the restored sockets', parseDeliver)
    .option('--hold', 'keep the rebuilt sockets in repair mode until `resume`', false)
    .option('--transparent', 'rebuild before the local address has moved here (IP_TRANSPARENT)', false)
    .option('--lease-ms <ms>', "how long a held session waits for resume (default: the daemon's)", parseUint('--lease-ms'))
    .option('--no-network-lock', 'do not lock the network around the rebuilt connections (the caller keeps packets away from them)')
    .action(async (opts: { in: string; netns?: string; deliver?: string; hold: boolean; transparent: boolean; leaseMs?: number; networkLock: boolean }, cmd: Command) => {
      if (!opts.hold && !opts.deliver) cmd.error('restore needs --deliver unix:PATH to go live, or --hold to wait for `resume`');
      const netns = opts.netns === undefined ? undefined : parseNetns(opts.netns);
      await withClient(cmd, async (client, g) => {
        const bar = new TransferBar('restore');
        try {
          const s = await client.restoreFromFile(
            opts.in,
            { netns, deliverUnixPath: opts.deliver, goLive: !opts.hold, transparent: opts.transparent, leaseMs: opts.leaseMs, noNetworkLock: !opts.networkLock },
            (p) => bar.update(p),
          );
          bar.stop();
          if (g.json) {
            printJson(sessionJson(s));
          } else {
            print(s.sessionId);
            note(`restored ${s.connections.length} connection(s): ${sessionLine(s)}${s.state === SessionState.HELD ? '; `resume` makes them live' : ''}`);
          }
        } finally {
          bar.stop();
        }
      });
    });

  sessionAction('resume', 'source session: thaw; held restore session: go live and deliver', (c, id, o) => c.resume(id, o.deliver)).option(
    '--deliver <unix:path>',
    'held restore session: deliver to this Unix socket instead of the one given at restore',
    parseDeliver,
  );
  sessionAction('release', 'source session: commit; the sockets stay frozen and silent', (c, id) => c.release(id));
  sessionAction('abort', 'restore session: close the sockets silently; source session: resume', (c, id) => c.abort(id));
  sessionAction('renew', "push a session's lease forward", (c, id) => c.renewLease(id));

  program
    .command('sessions')
    .description('the sessions the daemon holds')
    .action(async (_opts: object, cmd: Command) => {
      await withClient(cmd, async (client, g) => {
        const sessions = await client.listSessions();
        if (g.json) {
          printJson({ sessions: sessions.map(sessionJson) });
          return;
        }
        if (sessions.length === 0) {
          print('no sessions');
          return;
        }
        const t = table(['id', 'kind', 'state', 'pid', 'conns', 'created', 'lease', 'reason']);
        for (const s of sessions) {
          t.push([s.sessionId, sessionKindName(s.kind), sessionStateName(s.state), String(s.pid), String(s.connections.length), formatTime(s.createdUnixMs), formatLease(s.leaseExpiresUnixMs), s.reason || '-']);
        }
        print(t.toString());
      });
    });

  program
    .command('session')
    .description('one session and its connections')
    .argument('<id>', 'session id')
    .action(async (id: string, _opts: object, cmd: Command) => {
      await withClient(cmd, async (client, g) => {
        const s = await client.getSession(id);
        if (g.json) printJson(sessionJson(s));
        else printSession(s);
      });
    });

  program
    .command('migrate')
    .description('move the connections of a process to another daemon: checkpoint streamed into a held restore, hook, resume there, release here')
    .requiredOption('--from <addr>', 'source daemon: unix:///path or host:port')
    .requiredOption('--to <addr>', 'destination daemon: unix:///path or host:port')
    .requiredOption('--pid <pid>', 'process that owns the connections, on the source host', parseUint('--pid'))
    .option('--fd <n>', 'fd to migrate (repeatable, or comma-separated; default: every connection)', collectFds)
    .option('--netns <path>', 'network namespace to rebuild in at the destination: /proc/PID/ns/net, /run/netns/NAME or NAME')
    .option('--deliver <unix:path>', 'Unix socket of the process that takes the connections at the destination', parseDeliver)
    .option(
      '--before-resume <cmd>',
      'shell command (sh -c) run once the destination holds the connections, before they go live; ' +
        'env: SOCCR_SOURCE_SESSION, SOCCR_DEST_SESSION, SOCCR_PID, SOCCR_CONNECTIONS (JSON [{local, remote}]); non-zero exit rolls back',
    )
    .option('--hook-timeout-ms <ms>', 'how long --before-resume may run', parseUint('--hook-timeout-ms'), DEFAULT_HOOK_TIMEOUT_MS)
    .option('--no-stop-owner', 'leave the owner running while its connections are frozen')
    .option('--no-network-lock', 'lock the network on neither side (the caller keeps packets away from the connections)')
    .option('--no-direct-data', "relay the frames through this process even when the destination takes direct transfers")
    .option('--lease-ms <ms>', "lease of both sessions (default: each daemon's)", parseUint('--lease-ms'))
    .action(
      async (
        opts: {
          from: string;
          to: string;
          pid: number;
          fd?: number[];
          netns?: string;
          deliver?: string;
          beforeResume?: string;
          hookTimeoutMs: number;
          stopOwner: boolean;
          networkLock: boolean;
          directData: boolean;
          leaseMs?: number;
        },
        cmd: Command,
      ) => {
        if (opts.hookTimeoutMs === 0) cmd.error('--hook-timeout-ms must be positive');
        const g = globals(cmd);
        const show = g.json ? note : print;
        try {
          const r = await migrate({
            from: opts.from,
            to: opts.to,
            pid: opts.pid,
            fds: opts.fd,
            netns: opts.netns === undefined ? undefined : parseNetns(opts.netns),
            deliverUnixPath: opts.deliver,
            beforeResume: opts.beforeResume,
            hookTimeoutMs: opts.hookTimeoutMs,
            stopOwner: opts.stopOwner,
            networkLock: opts.networkLock,
            directData: opts.directData,
            leaseMs: opts.leaseMs,
            timeoutMs: g.timeout,
            credentials: connectionOptions(g).credentials,
            onPhase: (e) => {
              const line = phaseLine(e);
              if (line) show(line);
            },
          });
          if (g.json) printJson(r);
          else print(migrateSummary(r));
          for (const w of r.warnings) note(`soccrctl: warning: ${w}`);
        } catch (err) {
          if (g.json && err instanceof MigrateError) {
            printJson({ error: { phase: err.phase, reason: err.reason, rolledBack: err.rolledBack, rollbackFailures: err.rollbackFailures }, report: err.report });
          }
          throw err;
        }
      },
    );

  program
    .command('show')
    .description('decode and verify a checkpoint file offline (no daemon needed)')
    .argument('<file>', 'checkpoint file')
    .action(async (file: string, _opts: object, cmd: Command) => {
      const g = globals(cmd);
      const d = await describeCheckpointFile(file);
      if (g.json) printJson(d);
      else printDescription(d);
      if (!d.verified) throw new CliFailure(d.error ?? 'the checkpoint file did not verify');
    });

  return program;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (err) {
    note(`soccrctl: ${err instanceof CliFailure ? err.message : describeError(err)}`);
    return 1;
  }
}

/**
 * grpc-js sends the host of a TCP address as the TLS server name even when it is an IP address, which
 * Node reports once per process (DEP0123) on stderr; soccrctl keeps stderr to its own lines.
 */
function quietIpServerNameWarning(): void {
  const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((...args: unknown[]) => {
    const code = args.find((a) => a === 'DEP0123' || (typeof a === 'object' && a !== null && (a as { code?: unknown }).code === 'DEP0123'));
    if (code === undefined) emitWarning(...args);
  }) as typeof process.emitWarning;
}

if (require.main === module) {
  quietIpServerNameWarning();
  void main().then((code) => {
    process.exitCode = code;
  });
}
