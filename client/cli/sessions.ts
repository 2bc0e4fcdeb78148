// The session commands: `resume`, `release`, `abort`, `renew` (one session in, one line out),
// `sessions` (the daemon's sessions) and `session` (one session and its connections).
import type { Command } from 'commander';
import { formatAddressMsg } from '../../protocol/address';
import { stateName } from '../../protocol/saved-state';
import { SessionInfoMsg, SessionKind, SoccrClient, sessionKindName, sessionStateName } from '../client';
import { parseDeliver } from './args';
import { withClient } from './globals';
import { formatLease, formatTime, print, printFields, printJson, sessionJson, sessionLine, table } from './output';

export function addSessionCommands(program: Command): void {
  addSessionAction(program, 'resume', 'source session: thaw; held restore session: go live and deliver', (c, id, o) => c.resume(id, o.deliver)).option(
    '--deliver <unix:path>',
    'held restore session: deliver to this Unix socket instead of the one given at restore',
    parseDeliver,
  );
  addSessionAction(program, 'release', 'source session: commit; the sockets stay frozen and silent', (c, id) => c.release(id));
  addSessionAction(program, 'abort', 'restore session: close the sockets silently; source session: resume', (c, id) => c.abort(id));
  addSessionAction(program, 'renew', "push a session's lease forward", (c, id) => c.renewLease(id));

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
          t.push([
            s.sessionId,
            sessionKindName(s.kind),
            sessionStateName(s.state),
            String(s.pid),
            String(s.connectionCount),
            formatTime(s.createdUnixMs),
            formatLease(s.leaseExpiresUnixMs),
            s.reason || '-',
          ]);
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
}

/** resume, release, abort, renew: one session in, one session out. */
function addSessionAction(
  program: Command,
  name: string,
  description: string,
  call: (c: SoccrClient, id: string, opts: { deliver?: string }) => Promise<SessionInfoMsg>,
): Command {
  return program
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
}

function printSession(s: SessionInfoMsg): void {
  const lines: Array<[string, string]> = [
    ['session', s.sessionId],
    ['kind', sessionKindName(s.kind)],
    ['state', sessionStateName(s.state)],
    ['pid', String(s.pid)],
    ['created', formatTime(s.createdUnixMs)],
    ['lease', formatLease(s.leaseExpiresUnixMs)],
  ];
  if (s.kind === SessionKind.RESTORE) lines.push(['netns', s.netns || '-'], ['deliver', s.deliverUnixPath || '-']);
  if (s.reason) lines.push(['reason', s.reason]);
  printFields(lines);
  if (s.connections.length === 0) return;
  const t = table(['id', 'fd', 'state', 'local', 'remote', 'recv-q', 'send-q', 'delivered']);
  for (const c of s.connections) {
    t.push([
      c.id,
      s.kind === SessionKind.SOURCE ? String(c.fd) : '-',
      stateName(c.state),
      formatAddressMsg(c.local),
      formatAddressMsg(c.remote),
      String(c.recvQueueLen),
      String(c.sendQueueLen),
      c.delivered ? 'yes' : 'no',
    ]);
  }
  print(t.toString());
}
