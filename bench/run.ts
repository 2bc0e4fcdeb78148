// `npm run bench`: the engine, queue and migration benches in sequence, each in a process of its own
// (each raises its own open-file limit), then bench/RESULTS.md and bench/freeze.svg from what they
// measured. Results of earlier runs are removed first, so the report shows this run only.
// Arguments after `--` go to the migration bench (`npm run bench -- --counts 1,100`).
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import { howExited } from './common';
import { BENCH_COMMANDS, RAW, writeReport } from './report';

/** Each bench's bound; the whole run takes about 15 minutes on 2 cores. */
const BENCHES: Array<{ name: string; script: string; args: string[]; timeoutMs: number; raw: string }> = [
  { name: 'engine', script: 'engine.js', args: [], timeoutMs: 3 * 60_000, raw: RAW.engine },
  { name: 'queues', script: 'queues.js', args: [], timeoutMs: 3 * 60_000, raw: RAW.queues },
  { name: 'migration', script: 'migration.js', args: process.argv.slice(2), timeoutMs: 20 * 60_000, raw: RAW.migration },
];

function main(): number {
  const started = Date.now();
  const failures: string[] = [];
  const commands = [...BENCH_COMMANDS];
  for (const b of BENCHES) {
    rmSync(b.raw, { force: true });
    const argv = [path.join(__dirname, b.script), ...b.args];
    if (b.args.length) commands.push(`# this run: node dist/bench/${b.script} ${b.args.join(' ')}`);
    process.stdout.write(`\n=== bench ${b.name} ===\n`);
    // SIGTERM first on timeout: the benches clean up their namespaces and processes on it.
    const r = spawnSync(process.execPath, argv, { stdio: 'inherit', timeout: b.timeoutMs, killSignal: 'SIGTERM' });
    if (r.error || r.status !== 0) failures.push(`${b.name} (${r.error ? r.error.message : howExited(r.status, r.signal)})`);
  }
  const elapsedSeconds = (Date.now() - started) / 1000;
  writeReport({ commands, failures, elapsedSeconds });
  process.stdout.write(
    `\nwrote bench/RESULTS.md and bench/freeze.svg (${(elapsedSeconds / 60).toFixed(1)} minutes)${failures.length ? `; FAILED: ${failures.join('; ')}` : ''}\n`,
  );
  return failures.length ? 1 : 0;
}

process.exitCode = main();
