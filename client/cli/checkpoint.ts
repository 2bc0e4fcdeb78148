// `soccrctl checkpoint`: freeze connections of a process and save them to a file.
import type { Command } from 'commander';
import { formatBytes } from '../format';
import { collectFds, parseUint } from './args';
import { withClient } from './globals';
import { TransferBar, formatLease, note, print, printJson } from './output';

interface CheckpointFlags {
  pid: number;
  fd?: number[];
  all: boolean;
  leaseMs?: number;
  stopOwner: boolean;
  allowPartial: boolean;
  backlog: boolean;
  networkLock: boolean;
  out: string;
}

export function addCheckpointCommand(program: Command): void {
  program
    .command('checkpoint')
    .description('freeze connections of a process and save them to a file; prints the source session id')
    .requiredOption('--pid <pid>', 'process that owns the connections', parseUint('--pid'))
    .option('--fd <n>', 'fd to checkpoint (repeatable, or comma-separated)', collectFds)
    .option('--all', 'every connection the process holds', false)
    .option('--lease-ms <ms>', "how long the sockets stay frozen without release or resume (default: the daemon's)", parseUint('--lease-ms'))
    .option('--stop-owner', 'stop the owner (SIGSTOP) while its connections are frozen; continued on resume, left stopped on release', false)
    .option(
      '--allow-partial',
      'move what can be moved: connections that cannot be checkpointed stay with their owner and are listed (default: any such connection fails the call before anything freezes)',
      false,
    )
    .option(
      '--backlog',
      "with --all: accept the connections waiting in the process's accept queues on its behalf and checkpoint them too (the listeners stay)",
      false,
    )
    .option('--no-network-lock', 'do not lock the network around the connections (the caller keeps packets away from them)')
    .requiredOption('--out <file>', 'checkpoint file to write')
    .action(async (opts: CheckpointFlags, cmd: Command) => {
      if (!opts.all && !opts.fd?.length) cmd.error('checkpoint needs --fd N or --all');
      if (opts.all && opts.fd?.length) cmd.error('--fd and --all exclude each other');
      if (opts.backlog && !opts.all) cmd.error('--backlog goes with --all');
      await withClient(cmd, async (client, g) => {
        const bar = new TransferBar('checkpoint');
        try {
          const r = await client.checkpointToFile(
            opts.pid,
            {
              fds: opts.fd,
              all: opts.all,
              leaseMs: opts.leaseMs,
              stopOwner: opts.stopOwner,
              allowPartial: opts.allowPartial,
              takeBacklog: opts.backlog,
              noNetworkLock: !opts.networkLock,
            },
            opts.out,
            (p) => bar.update(p),
          );
          bar.stop();
          if (g.json) {
            printJson({
              sessionId: r.header.sessionId,
              file: r.file,
              header: r.header,
              connections: r.connections,
              queueBytes: r.queueBytes,
              fileBytes: r.fileBytes,
            });
          } else {
            print(r.header.sessionId);
            note(
              `checkpointed ${r.connections} connection(s) of pid ${r.header.pid} (${formatBytes(r.queueBytes)} of queues) into ${r.file}; ` +
                `frozen until ${formatLease(r.header.leaseExpiresUnixMs)}: release or resume the session`,
            );
            for (const s of r.header.skipped) note(`left with the owner: fd ${s.fd} (${s.kind}): ${s.reason}`);
          }
        } finally {
          bar.stop();
        }
      });
    });
}
