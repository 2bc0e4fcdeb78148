// Human-readable sizes, durations and migrate phases, as soccrctl and the demo print them.
import type { PhaseEvent } from './migrate';

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${ms.toFixed(1)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** One line per migrate phase as it completes (or fails), and the hook's output indented below it. */
export function phaseLine(e: PhaseEvent): string | undefined {
  if (e.status === 'started') return undefined;
  let detail: string;
  if (e.status === 'failed') detail = `FAILED: ${e.error ?? 'unknown error'}`;
  else if (e.name === 'checkpoint+restore') {
    detail = `${e.connections ?? 0} connection(s), ${formatBytes(e.queueBytes ?? 0)} of queues; source session ${e.sourceSessionId ?? '?'}, destination session ${e.destinationSessionId ?? '?'} held`;
  } else if (e.name === 'hook') detail = `exit ${e.hook?.exitCode ?? '?'}`;
  else if (e.name === 'resume-destination') detail = 'destination live';
  else if (e.name === 'handoff') detail = `${e.connections ?? 0} socket(s) handed to the new owner, old owner stopped`;
  else detail = 'source released';
  let line = `${e.name.padEnd(20)}${formatMs(e.ms ?? 0).padStart(11)}  ${detail}`;
  const h = e.hook;
  if (h) {
    for (const [name, text] of [
      ['stdout', h.stdout],
      ['stderr', h.stderr],
    ] as const) {
      const lines = text.replace(/\n$/, '').split('\n');
      if (text) line += `\n${lines.map((l) => `  ${name} | ${l}`).join('\n')}`;
    }
  }
  return line;
}
