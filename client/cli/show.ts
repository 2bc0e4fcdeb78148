// `soccrctl show`: decode and verify a checkpoint file offline, like `crit show`.
import type { Command } from 'commander';
import { SoccrError } from '../../protocol/errors';
import { CheckpointFileDescription, describeCheckpointFile } from '../client';
import { formatBytes } from '../format';
import { CliFailure } from './failure';
import { globals } from './globals';
import { formatTime, print, printFields, printJson, table } from './output';

export function addShowCommand(program: Command): void {
  program
    .command('show')
    .description('decode and verify a checkpoint file offline (no daemon needed)')
    .argument('<file>', 'checkpoint file')
    .action(async (file: string, _opts: object, cmd: Command) => {
      const g = globals(cmd);
      const d = await describeCheckpointFile(file);
      if (!d.verified) {
        // the description is the document; the failure (exit code, --json error member) is the first problem found
        if (!g.json) printDescription(d);
        const message = d.error ?? 'the checkpoint file did not verify';
        throw new CliFailure(message, { cause: new SoccrError(d.errorKind ?? 'INVALID_STATE', message), document: { ...d } });
      }
      if (g.json) printJson(d);
      else printDescription(d);
    });
}

function printDescription(d: CheckpointFileDescription): void {
  const h = d.session;
  const lines: Array<[string, string]> = [
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
  printFields(lines);
  if (d.connections.length === 0) return;
  const short = (hex: string | null): string => (hex ? `${hex.slice(0, 16)}…` : '-');
  const t = table(['#', 'id', 'fd', 'state', 'local', 'remote', 'recv-q', 'send-q (unsent)', 'recv sha256', 'send sha256', 'verified']);
  for (const c of d.connections) {
    const verdict = c.verified ? 'yes' : c.recvSha256 === null ? 'INCOMPLETE' : 'MISMATCH';
    t.push([
      String(c.index),
      c.id,
      String(c.fd),
      c.state,
      c.local,
      c.remote,
      String(c.recvQueueLen),
      `${c.sendQueueLen} (${c.unsentLen})`,
      short(c.recvSha256),
      short(c.sendSha256),
      verdict,
    ]);
  }
  print(t.toString());
}
