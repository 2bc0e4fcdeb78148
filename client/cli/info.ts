// `soccrctl version` (the daemon's version, kernel and features) and `soccrctl sockets` (a process's TCP sockets).
import type { Command } from 'commander';
import { formatAddressMsg } from '../../protocol/address';
import { stateName } from '../../protocol/saved-state';
import * as grpc from '@grpc/grpc-js';
import { type GetVersionResponseMsg, type SocketEntryMsg, isServiceError } from '../client';
import { parseUint } from './args';
import { CliFailure } from './failure';
import { withClient } from './globals';
import { addressJson, familyName, print, printFields, printJson, table } from './output';
import { formatsRead } from '../../protocol/frames';

export function addVersionCommand(program: Command, clientVersion: string): void {
  program
    .command('version')
    .description("the daemon's version, kernel and features")
    .action(async (_opts: object, cmd: Command) => {
      await withClient(cmd, async (client, g) => {
        let v: GetVersionResponseMsg;
        try {
          v = await client.getVersion();
        } catch (err) {
          // Still an answer without a daemon: this client's own version, and why the daemon did not answer.
          if (!isServiceError(err) || err.code !== grpc.status.UNAVAILABLE) throw err;
          if (!g.json)
            printFields([
              ['soccrctl', clientVersion],
              ['soccrd', 'unreachable'],
            ]);
          throw new CliFailure(`UNAVAILABLE: the daemon at ${g.daemon} is unreachable (is soccrd running?): ${err.details}`, {
            cause: err,
            document: { client: clientVersion, daemon: null },
          });
        }
        if (g.json)
          printJson({
            client: clientVersion,
            daemon: v.version,
            kernelRelease: v.kernelRelease,
            streamFormat: v.streamFormat,
            streamFormatsRead: formatsRead(v),
            features: v.features,
          });
        else printVersion(clientVersion, v);
      });
    });
}

export function addSocketsCommand(program: Command): void {
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
            sockets: sockets.map((s) => ({
              ...s,
              family: familyName(s.family),
              state: stateName(s.state),
              local: addressJson(s.local),
              remote: addressJson(s.remote),
            })),
          });
        } else {
          printSockets(opts.pid, sockets);
        }
      });
    });
}

function printVersion(clientVersion: string, v: GetVersionResponseMsg): void {
  printFields([
    ['soccrctl', clientVersion],
    ['soccrd', v.version],
    ['kernel', v.kernelRelease],
    ['data path', v.dataEndpoint || '-'],
    ['format', `writes ${v.streamFormat}, reads ${formatsRead(v).join(', ')}`],
  ]);
  const f = v.features;
  if (!f) return;
  const t = table(['feature', 'available']);
  const rows: Array<[string, boolean]> = [
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
    t.push([
      String(s.fd),
      String(s.inode),
      familyName(s.family),
      stateName(s.state),
      formatAddressMsg(s.local),
      formatAddressMsg(s.remote),
      String(s.recvQueue),
      String(s.sendQueue),
    ]);
  }
  print(t.toString());
}
