// `soccrctl migrate`: move the connections of a process to another daemon (client/migrate.ts), a line per phase.
import type { Command } from 'commander';
import { formatBytes, formatMs, phaseLine } from '../format';
import { DEFAULT_HOOK_TIMEOUT_MS, MigrateError, MigrateReport, migrate } from '../migrate';
import { collectFds, parseDeliver, parseNetns, parseUint } from './args';
import { CliFailure } from './failure';
import { connectionOptions, globals } from './globals';
import { note, print, printJson } from './output';

interface MigrateFlags {
  from: string;
  to: string;
  pid: number;
  fd?: number[];
  netns?: string;
  deliver?: string;
  beforeResume?: string;
  hookTimeoutMs: number;
  stopOwner: boolean;
  allowPartial: boolean;
  networkLock: boolean;
  directData: boolean;
  leaseMs?: number;
  handoff: boolean;
  listeners: boolean;
  backlog: boolean;
}

export function addMigrateCommand(program: Command): void {
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
    .option(
      '--allow-partial',
      'move what can be moved: connections that cannot be checkpointed stay with their owner and are listed (default: any such connection fails the call before anything freezes)',
      false,
    )
    .option(
      '--no-backlog',
      "leave the connections waiting in the old owner's accept queues there (default: accept them on its behalf and move them with the others)",
    )
    .option('--no-network-lock', 'lock the network on neither side (the caller keeps packets away from the connections)')
    .option('--no-direct-data', 'relay the frames through this process even when the destination takes direct transfers')
    .option('--lease-ms <ms>', "lease of both sessions (default: each daemon's)", parseUint('--lease-ms'))
    .option('--no-handoff', 'checkpoint and restore even when --from and --to are the same daemon and namespace (default: hand the sockets off)')
    .option('--listeners', 'hand-off only: listening sockets too, with the connections in their accept queues', false)
    .action(async (opts: MigrateFlags, cmd: Command) => {
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
          allowPartial: opts.allowPartial,
          networkLock: opts.networkLock,
          directData: opts.directData,
          leaseMs: opts.leaseMs,
          handoff: opts.handoff,
          listeners: opts.listeners,
          backlog: opts.backlog,
          timeoutMs: g.timeout,
          credentials: connectionOptions(g).credentials,
          onPhase: (e) => {
            const line = phaseLine(e);
            if (line) show(line);
          },
        });
        if (g.json) printJson(r);
        else {
          print(migrateSummary(r));
          for (const s of r.skipped) note(`soccrctl: left with the old owner: fd ${s.fd} (${s.kind}): ${s.reason}`);
        }
        for (const w of r.warnings) note(`soccrctl: warning: ${w}`);
      } catch (err) {
        if (!(err instanceof MigrateError)) throw err;
        throw new CliFailure(err.message, {
          cause: (err as { cause?: unknown }).cause,
          document: { report: err.report },
          errorFields: { phase: err.phase, reason: err.reason, rolledBack: err.rolledBack, rollbackFailures: err.rollbackFailures },
        });
      }
    });
}

function migrateSummary(r: MigrateReport): string {
  if (r.transport === 'handoff') {
    return (
      `handed ${r.connections} socket(s) of pid ${r.pid} off to the new owner on ${r.from} (same daemon and namespace): ` +
      `no process served them for ${formatMs(r.freezeMs)}; the old owner is left stopped: kill it`
    );
  }
  return (
    `migrated ${r.connections} connection(s) of pid ${r.pid} (${formatBytes(r.queueBytes)} of queues) from ${r.from} to ${r.to}: ` +
    `frozen for ${formatMs(r.freezeMs)}, ${formatMs(r.totalMs)} in all`
  );
}
