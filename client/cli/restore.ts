// `soccrctl restore`: rebuild the connections of a checkpoint file, live or held.
import type { Command } from 'commander';
import { SessionState } from '../client';
import { parseDeliver, parseNetns, parseUint } from './args';
import { withClient } from './globals';
import { TransferBar, note, print, printJson, sessionJson, sessionLine } from './output';

interface RestoreFlags {
  in: string;
  netns?: string;
  deliver?: string;
  hold: boolean;
  transparent: boolean;
  leaseMs?: number;
  networkLock: boolean;
}

export function addRestoreCommand(program: Command): void {
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
    .action(async (opts: RestoreFlags, cmd: Command) => {
      if (!opts.hold && !opts.deliver) cmd.error('restore needs --deliver unix:PATH to go live, or --hold to wait for `resume`');
      const netns = opts.netns === undefined ? undefined : parseNetns(opts.netns);
      await withClient(cmd, async (client, g) => {
        const bar = new TransferBar('restore');
        try {
          const s = await client.restoreFromFile(
            opts.in,
            {
              netns,
              deliverUnixPath: opts.deliver,
              goLive: !opts.hold,
              transparent: opts.transparent,
              leaseMs: opts.leaseMs,
              noNetworkLock: !opts.networkLock,
            },
            (p) => bar.update(p),
          );
          bar.stop();
          if (g.json) {
            printJson(sessionJson(s));
          } else {
            print(s.sessionId);
            note(`restored ${s.connectionCount} connection(s): ${sessionLine(s)}${s.state === SessionState.HELD ? '; `resume` makes them live' : ''}`);
          }
        } finally {
          bar.stop();
        }
      });
    });
}
