// Quick bench of the two ways a migration's frames go (`node dist/bench/transfer-paths.js [--counts 100,1000]
// [--paths direct,relay] [--profile DIR]`): relayed through the orchestrator (two gRPC hops) or direct from
// daemon to daemon (--data-listen). Two hosts in namespaces on a LAN; N connections whose server stopped
// reading while its peers keep sending (receive queues full) and that had written a burst its peers have
// not taken yet (send queues filled). Prints, per run, the queue bytes moved, the checkpoint+restore
// phase, the freeze and the bytes/s of the phase. Not part of `npm run bench` (bench/migration.ts is).
import * as path from 'node:path';
import { migrate } from '../client/migrate';
import { DaemonProcess, cleanupDaemons } from '../test/support/daemon';
import { LAN_NODES, Lan, SERVICE_V4, destroyLans } from '../test/support/lan';
import { MultiFixture, killAllMulti } from '../test/support/multi';
import { sleep, socketPath } from '../test/support/scenario';
import { requireRoot } from './common';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
};
const counts = arg('--counts', '100').split(',').map(Number);
const paths = arg('--paths', 'relay,direct').split(',') as Array<'relay' | 'direct'>;
const burst = Number(arg('--burst', String(256 * 1024)));
const profileDir = process.argv.includes('--profile') ? path.resolve(arg('--profile', 'bench/profiles')) : undefined;

async function run(count: number, via: 'relay' | 'direct'): Promise<void> {
  const lan = Lan.create();
  try {
    const env = profileDir ? { NODE_OPTIONS: `--require ${path.join(__dirname, 'cpu-profile.js')}`, SOCCRD_CPU_PROFILE_DIR: profileDir } : undefined;
    const [a, b] = await Promise.all([
      DaemonProcess.start({ netns: lan.ns.A, env, args: ['--log-level', 'warn'] }),
      DaemonProcess.start({ netns: lan.ns.B, env, args: ['--log-level', 'warn', ...(via === 'direct' ? ['--data-listen', `${LAN_NODES.B.v4}:0`] : [])] }),
    ]);
    const server = await MultiFixture.start(lan.ns.A, { mode: 'serve', ip: SERVICE_V4, port: 5000, count });
    const clients = await MultiFixture.start(lan.ns.C, { mode: 'clients', ip: SERVICE_V4, port: 5000, count, bytesPerTick: 64 * 1024 });
    await Promise.all([server.waitConnected(60_000), clients.waitConnected(60_000)]);
    await clients.stream(true);
    await server.read(false);
    await server.write(burst);
    await sleep(2000 + count * 2);
    const { offsets } = await server.quiesce();
    const deliver = socketPath('deliver');
    await MultiFixture.start(lan.ns.B, { mode: 'adopt', unixPath: deliver, continueFrom: offsets, streaming: false });
    const r = await migrate({ from: a.address, to: b.address, pid: server.pid, netns: lan.nsPath(lan.ns.B), deliverUnixPath: deliver, directData: via === 'direct' });
    const phase = r.phases.find((p) => p.name === 'checkpoint+restore')?.ms ?? NaN;
    const mib = r.queueBytes / 1048576;
    process.stdout.write(
      `${String(count).padStart(5)} conns ${via.padEnd(6)} (${r.transport}): ${mib.toFixed(1).padStart(6)} MiB, checkpoint+restore ${phase.toFixed(0).padStart(5)} ms ` +
        `(${(mib / (phase / 1000)).toFixed(0)} MiB/s), freeze ${r.freezeMs.toFixed(0)} ms\n`,
    );
  } finally {
    await killAllMulti();
    await cleanupDaemons();
    destroyLans();
  }
}

async function main(): Promise<void> {
  requireRoot();
  for (const n of counts) for (const via of paths) await run(n, via);
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`transfer-paths: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
