// soccrctl's output: lines on stdout, notes on stderr, JSON documents, tables, and the shapes shared by
// several commands (sessions, addresses, times, the transfer progress bar).
import cliProgress from 'cli-progress';
import Table from 'cli-table3';
import type { AddressMsg } from '../../protocol/messages';
import { stateName } from '../../protocol/saved-state';
import { SessionInfoMsg, SessionKind, SessionState, TransferProgress, sessionKindName, sessionStateName } from '../client';
import { formatBytes } from '../format';

const MiB = 1024 * 1024;

export function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function note(text: string): void {
  process.stderr.write(`${text}\n`);
}

export function printJson(doc: unknown): void {
  print(JSON.stringify(doc, null, 2));
}

/** Lines of `key       value`, the keys in one column. */
export function printFields(lines: Array<[string, string]>): void {
  print(lines.map(([k, v]) => `${k.padEnd(12)}${v}`).join('\n'));
}

export function table(head: string[]): Table.Table {
  // no colours: output is read by scripts and tests as often as by people
  return new Table({ head, style: { head: [], border: [] } });
}

export function formatTime(ms: number): string {
  return ms ? new Date(ms).toISOString() : '-';
}

export function formatLease(ms: number): string {
  if (!ms) return '-';
  const d = Math.round((ms - Date.now()) / 1000);
  return `${new Date(ms).toISOString()} (${d >= 0 ? `in ${d}s` : `${-d}s ago`})`;
}

export function familyName(f: number): string {
  return f === 1 ? 'ipv4' : f === 2 ? 'ipv6' : 'unspecified';
}

export function addressJson(a: AddressMsg | null | undefined): { family: string; ip: string; port: number } | null {
  return a ? { family: familyName(a.family), ip: a.ip, port: a.port } : null;
}

export function sessionJson(s: SessionInfoMsg): Record<string, unknown> {
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

/** One line after an action on a session. */
export function sessionLine(s: SessionInfoMsg): string {
  let line = `session ${s.sessionId}: ${sessionStateName(s.state)}`;
  if (s.leaseExpiresUnixMs) line += `, lease until ${formatLease(s.leaseExpiresUnixMs)}`;
  if (s.state === SessionState.RESUMED && s.kind === SessionKind.RESTORE && s.deliverUnixPath) line += `, delivered to ${s.deliverUnixPath}`;
  if (s.reason) line += ` (${s.reason})`;
  return line;
}

/** A progress bar on stderr for transfers over 1 MiB, when stderr is a terminal. */
export class TransferBar {
  private bar: cliProgress.SingleBar | undefined;
  constructor(private readonly label: string) {}

  update(p: TransferProgress): void {
    if (!process.stderr.isTTY) return;
    const byBytes = p.totalBytes !== undefined;
    const total = byBytes ? (p.totalBytes as number) : (p.totalConnections ?? 0);
    const value = byBytes ? p.bytes : p.connections;
    const payload = {
      conns: `${p.connections}/${p.totalConnections ?? '?'}`,
      xfer: byBytes ? `${formatBytes(p.bytes)}/${formatBytes(total)}` : formatBytes(p.bytes),
    };
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
