// soccrctl's output: lines on stdout, notes on stderr, JSON documents, tables, and the shapes shared by
// several commands (sessions, addresses, times, the transfer progress bar).
import cliProgress from 'cli-progress';
import Table from 'cli-table3';
import type { AddressMsg } from '../../protocol/messages';
import { stateName } from '../../protocol/saved-state';
import { SessionInfoMsg, SessionKind, SessionState, TransferProgress, sessionKindName, sessionStateName } from '../client';
import { formatBytes } from '../format';

const MiB = 1024 * 1024;

// C0 controls but tab and newline, DEL, C1 controls (0x9b is an 8-bit CSI to many terminals), and the
// bidirectional overrides and isolates that reorder what a line seems to say.
// eslint-disable-next-line no-control-regex
const TERMINAL_CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text for a terminal: every control character that could move the cursor, clear the screen, retitle
 * the window or hide text is shown as a visible escape (`\x1b`, `\u202e`) instead. What soccrctl prints
 * comes from daemons and streams (hostnames, ids, reasons, error messages), so it passes through here.
 */
export function terminalSafe(text: string): string {
  return text.replace(TERMINAL_CONTROLS, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

export function print(text: string): void {
  const safe = terminalSafe(text);
  process.stdout.write(safe.endsWith('\n') ? safe : `${safe}\n`);
}

export function note(text: string): void {
  process.stderr.write(`${terminalSafe(text)}\n`);
}

/** JSON.stringify escapes C0 controls; DEL, C1 and the bidi controls get \\u escapes too: the same value, still JSON. */
export function jsonText(doc: unknown): string {
  return JSON.stringify(doc, null, 2).replace(TERMINAL_CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function printJson(doc: unknown): void {
  print(jsonText(doc));
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
    connectionCount: s.connectionCount,
    queueBytes: s.queueBytes,
    // all of them from `sessions show` (the client pages through); the first page from other commands
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
