// `soccrctl handoff`: a same-host upgrade. The old owner's live sockets (listeners too, with
// --listeners) go to the new owner's hand-over receiver; the old owner is left stopped (or killed with
// --kill-old), never continued after a hand-off that succeeded.
import type { Command } from 'commander';
import { formatAddressMsg } from '../../protocol/address';
import { stateName } from '../../protocol/saved-state';
import { collectFds, parseDeliver, parseUint } from './args';
import { withClient } from './globals';
import { addressJson, note, print, printJson } from './output';

interface HandoffFlags {
  pid: number;
  fd?: number[];
  all: boolean;
  listeners: boolean;
  deliver: string;
  killOld: boolean;
}

export function addHandoffCommand(program: Command): void {
  program
    .command('handoff')
    .description("same host: pass a process's live sockets themselves to a new owner (no copy, no freeze of the connections)")
    .requiredOption('--pid <pid>', 'the old owner', parseUint('--pid'))
    .option('--fd <n>', 'fd to hand off (repeatable, or comma-separated)', collectFds)
    .option('--all', 'every connected TCP socket of the process', false)
    .option('--listeners', 'with --all: listening sockets too (the connections in their accept queues come along)', false)
    .requiredOption('--deliver <unix:path>', "Unix socket of the new owner's hand-over receiver", parseDeliver)
    .option('--kill-old', 'kill the old owner (SIGKILL) once the new one holds the sockets; otherwise it is left stopped for you to kill', false)
    .action(async (opts: HandoffFlags, cmd: Command) => {
      if (!opts.all && !opts.fd?.length) cmd.error('handoff needs --fd N or --all');
      if (opts.all && opts.fd?.length) cmd.error('--fd and --all exclude each other');
      if (opts.listeners && !opts.all) cmd.error('--listeners goes with --all (name a listening fd with --fd instead)');
      await withClient(cmd, async (client, g) => {
        const r = await client.handoff(opts.pid, opts.deliver, { fds: opts.fd, all: opts.all, listeners: opts.listeners, killOld: opts.killOld });
        if (g.json) {
          printJson({
            handoffId: r.handoffId,
            freezeUs: r.freezeUs,
            oldOwnerKilled: r.oldOwnerKilled,
            sockets: r.sockets.map((s) => ({ fd: s.fd, state: stateName(s.state), local: addressJson(s.local), remote: addressJson(s.remote) })),
            skipped: r.skipped.map((s) => ({ fd: s.fd, reason: s.reason })),
          });
          return;
        }
        for (const s of r.sockets) print(`fd ${s.fd}  ${stateName(s.state)}  ${formatAddressMsg(s.local)} ${formatAddressMsg(s.remote)}`);
        for (const s of r.skipped) note(`skipped fd ${s.fd}: ${s.reason}`);
        note(
          `handed ${r.sockets.length} socket(s) of pid ${opts.pid} to ${opts.deliver}; no process served them for ${(r.freezeUs / 1000).toFixed(1)} ms; ` +
            (r.oldOwnerKilled ? 'the old owner was killed' : `the old owner is left stopped: kill it (kill -KILL ${opts.pid}), do not continue it`),
        );
      });
    });
}
