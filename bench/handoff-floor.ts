// The hand-off series' floor: bench/handoff-floor.c, the kernel work of a same-host hand-off in C on the
// same old owner's sockets (stop it, take its fds, pass them to a receiver process 16 per sendmsg, one
// ack), then everything closed and the owner continued. Built with gcc at its first use.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { listTcpSockets, processState } from '../daemon/repair/acquire';
import { BenchSetupError, howExited } from './common';

const ROOT = path.resolve(__dirname, '..', '..');
const SRC = path.join(ROOT, 'bench', 'handoff-floor.c');
const BIN = path.join(ROOT, 'bench', 'build', 'handoff-floor');
/** A `socket` line of the daemon's for a connection of the bench's LAN (measured: 228-232 bytes). */
const LINE_BYTES = 230;

let built = false;

function build(): void {
  if (built) return;
  mkdirSync(path.dirname(BIN), { recursive: true });
  const r = spawnSync('gcc', ['-O2', '-o', BIN, SRC], { encoding: 'utf8', timeout: 60_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') throw new BenchSetupError('gcc not found: the hand-off floor is a C program');
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`gcc failed building ${SRC}:\n${r.stderr}`);
  built = true;
}

/** The floor's freeze of a hand-off of every TCP socket of `pid` (listeners included), and its parts, ms. */
export function handoffFloor(pid: number): { freezeMs: number; phases: Record<string, number>; sockets: number } {
  build();
  const fds = listTcpSockets(pid).map((s) => String(s.fd));
  const r = spawnSync(BIN, [String(pid), String(LINE_BYTES), ...fds], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0) throw new Error(`handoff-floor failed (${howExited(r.status, r.signal)}): ${r.stderr.trim()} ${line}`);
  if (processState(pid) === 'T') throw new Error(`handoff-floor left pid ${pid} stopped`);
  const o = JSON.parse(line) as Record<string, number>;
  return { freezeMs: o.freezeUs / 1000, phases: { stop: o.stopUs / 1000, take: o.takeUs / 1000, 'pass+ack': o.passUs / 1000 }, sockets: o.fds };
}
