// The lab the migration tests share: hosts A and B of a LAN, each with a soccrd, a server in A holding
// `count` connections with clients in C that stream both ways, the server having stopped reading for a
// moment so that queues hold bytes.
import { DaemonProcess, cleanupDaemons } from '../../lab/daemon';
import { Lan, SERVICE_V4, destroyLans } from '../../lab/lan';
import { MultiFixture, MultiStatus, killAllMulti, untilExchanged } from '../../lab/multi';
import { lockEntries } from '../../lab/netns';
import { destroyTopologies, sleep } from '../../lab/scenario';

export const LAB_PORT = 5000;

export interface MigrationLab {
  lan: Lan;
  a: DaemonProcess;
  b: DaemonProcess;
  server: MultiFixture;
  clients: MultiFixture;
}

export interface LabOptions {
  /** extra arguments for B's daemon */
  bArgs?: string[];
  /** bytes the server writes while it does not read, so that send queues hold bytes too */
  burstBytes?: number;
  /** the server's listener bound to this interface (SO_BINDTODEVICE), and so its connections */
  device?: string;
}

export async function startMigrationLab(count: number, o: LabOptions = {}): Promise<MigrationLab> {
  const lan = Lan.create();
  const [a, b] = await Promise.all([DaemonProcess.start({ netns: lan.ns.A }), DaemonProcess.start({ netns: lan.ns.B, args: o.bArgs })]);
  const server = await MultiFixture.start(lan.ns.A, { mode: 'serve', ip: SERVICE_V4, port: LAB_PORT, count, device: o.device });
  const clients = await MultiFixture.start(lan.ns.C, { mode: 'clients', ip: SERVICE_V4, port: LAB_PORT, count, bytesPerTick: 8 * 1024 });
  await Promise.all([server.waitConnected(15_000), clients.waitConnected(15_000)]);
  // Both ways, continuously; the server stops reading for a while so that queues fill.
  await server.stream(true);
  await clients.stream(true);
  await sleep(300);
  await server.read(false);
  if (o.burstBytes) {
    await server.write(o.burstBytes);
    await sleep(300);
  } else {
    await sleep(200);
  }
  await server.read(true);
  await sleep(100);
  return { lan, a, b, server, clients };
}

/** The old owner goes on after an abort: it resumes, both sides stop streaming and read everything. */
export async function resumeAtSource(t: MigrationLab): Promise<[MultiStatus, MultiStatus]> {
  await t.server.resume();
  await sleep(500);
  await t.clients.stream(false);
  await t.server.stream(false);
  return untilExchanged(t.server, t.clients, 30_000);
}

/** Lock entries left in A's and B's tables. */
export function labLockEntries(t: MigrationLab): { a: number; b: number } {
  return { a: lockEntries(t.lan.ns.A, t.a.lockTable), b: lockEntries(t.lan.ns.B, t.b.lockTable) };
}

/** Everything a lab test started, removed (afterEach). */
export async function tearDownLabs(): Promise<void> {
  await killAllMulti();
  await cleanupDaemons();
  destroyLans();
  destroyTopologies();
}
