// The floor of the migration bench: the same migration as migrate() (client/migrate.ts) between two
// soccrd daemons, done in one process with the engine imported directly: the same kernel calls, the
// same network-lock transactions, the same hook and hand-over, but no gRPC, no second daemon, no
// frames, no checksums, no journal: each connection is saved and rebuilt straight away in the
// destination namespace, its queues passed in memory. What soccrd adds on top of this is its overhead.
//
// The sequence follows the daemons': list the owner's sockets and take them (pidfd_getfd), stop the
// owner, lock the source, lock the destination, freeze every socket, look them up with socket
// diagnostics, save them all, then rebuild each (IP_TRANSPARENT: the service address is still at the
// source). Kernel calls go in the engine's batches wherever it offers them (takeTcpSockets, pauseAll,
// captureAll, resumeAll, silentCloseAll; restore is one batch per socket), as the daemons make them, so
// that the floor is the fastest the engine can do. The hook moves the service address; the hand-over
// delivers the sockets to the new owner, whose acknowledgement makes them live (destination unlocked,
// repair off). The freeze ends
// there, as MigrateReport.freezeMs does; the source is then unlocked. The source's duplicates are closed
// once every connection is saved, before any is rebuilt (the owner, stopped, still holds them frozen),
// so that the bench process needs one descriptor per connection.
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { ProcessHandle, listTcpSockets } from '../daemon/repair/acquire';
import { deliver } from '../daemon/custody/delivery';
import { FrozenSocket, RestoredSocket, SOCCR_MARK, captureAll, pauseAll, restore, resumeAll, silentCloseAll } from '../daemon/repair/engine';
import { silentLogger } from '../daemon/log';
import * as N from '../daemon/kernel/native';
import { LockTuple, NetworkLock } from '../daemon/custody/netlock';
import { NetnsHandle } from '../daemon/kernel/netns';
import { diagnose } from '../daemon/kernel/sockdiag';
import { SUPPORTED_STATES, TcpState } from '../protocol/saved-state';
import { howExited } from './common';

export interface FloorOptions {
  /** the owner of the connections */
  pid: number;
  /** the namespace to rebuild them in (/run/netns/NAME) */
  destNetns: string;
  /** the new owner's hand-over socket */
  deliverPath: string;
  /** shell command run between rebuild and live (moves the service address), like migrate()'s beforeResume */
  hook: string;
  /** nftables table for the lock (removed again at the end) */
  lockTable: string;
}

export interface FloorReport {
  connections: number;
  /** from the first call to every connection live at the new owner, ms */
  freezeMs: number;
  phases: { 'take+lock+freeze': number; 'save+rebuild': number; hook: number; 'hand-over+live': number };
  /** queue bytes moved (receive + send) */
  queueBytes: number;
}

/** Moves every connection of `pid` to the new owner in `destNetns`, in this process. */
export async function floorMigrate(o: FloorOptions): Promise<FloorReport> {
  // An instance of its own, as a daemon has: its tables carry its mark and no daemon's are touched.
  const netlock = new NetworkLock({
    table: o.lockTable,
    owner: { id: randomBytes(6).toString('hex'), stateDir: '(bench floor)' },
    mark: SOCCR_MARK,
    log: silentLogger(),
  });
  const dups: number[] = [];
  const frozen: FrozenSocket[] = [];
  const rebuilt: RestoredSocket[] = [];
  let proc: ProcessHandle | undefined;
  let source: NetnsHandle | undefined;
  let dest: NetnsHandle | undefined;
  let live = false;
  const locks: Array<{ key: string; tuples: LockTuple[] }> = [];
  try {
    // The lock tables and libnftables contexts exist before the freeze, as a daemon's do from its start.
    // (Made after a thousand sockets are taken, a context's netlink socket gets an fd above 1023, and
    // Debian 12's libnftables 1.0.6 aborts the process in select(): "bit out of range 0 - FD_SETSIZE".)
    netlock.lock(`/proc/${o.pid}/ns/net`, []);
    netlock.lock(o.destNetns, []);
    const t0 = performance.now();
    const listed = listTcpSockets(o.pid).filter((s) => SUPPORTED_STATES.has(s.state) && s.remote.port !== 0);
    proc = ProcessHandle.open(o.pid);
    dups.push(...proc.takeTcpSockets(listed.map((e) => e.fd)));
    await proc.stop();
    const tuples = listed.map((e) => ({ local: e.local, remote: e.remote }));
    locks.push({ key: netlock.lock(`/proc/${o.pid}/ns/net`, tuples), tuples });
    const destKey = netlock.lock(o.destNetns, tuples);
    locks.push({ key: destKey, tuples });
    frozen.push(...pauseAll(dups));
    source = NetnsHandle.open(`/proc/${o.pid}/ns/net`);
    const diags = diagnose(source, listed).map((d, i) => (d?.inode === listed[i].inode ? d : undefined));
    const t1 = performance.now();

    dest = NetnsHandle.open(o.destNetns);
    let queueBytes = 0;
    // Saved in batches of kernel calls (the engine's fastest path), queues and all.
    const saved = captureAll(frozen, Infinity, diags).map((c) => c.state);
    // The owner holds the sockets (stopped, in repair mode): the duplicates can go before anything is
    // rebuilt, so that 10 000 connections need 10 000 descriptors here, not 20 000. (A failure from
    // here on leaves the sockets frozen at the owner, which the bench then kills.)
    silentCloseAll(frozen);
    for (const sock of frozen) sock.fd = -1;
    const items = saved.map((state, i) => {
      queueBytes += state.inqLen + state.outqLen;
      const r = restore(state, { netnsHandle: dest, transparent: true });
      rebuilt.push(r);
      return { fd: r.fd, meta: { id: `floor:${i}`, session: 'floor', index: i, local: state.local, remote: state.remote, state: TcpState[state.state] } };
    });
    const t2 = performance.now();

    const hook = spawnSync('sh', ['-c', o.hook], { encoding: 'utf8', timeout: 30_000 });
    if (hook.status !== 0) throw new Error(`floor: hook failed (${howExited(hook.status, hook.signal)}): ${(hook.stderr ?? '').trim().slice(0, 300)}`);
    const t3 = performance.now();

    await deliver(o.deliverPath, items, () => {
      netlock.unlock(destKey, tuples);
      locks.pop();
      const failed = resumeAll(rebuilt).find((err) => err !== undefined);
      if (failed) throw failed;
      live = true;
    });
    const t4 = performance.now();
    return {
      connections: items.length,
      freezeMs: t4 - t0,
      phases: { 'take+lock+freeze': t1 - t0, 'save+rebuild': t2 - t1, hook: t3 - t2, 'hand-over+live': t4 - t3 },
      queueBytes,
    };
  } finally {
    // Live: the new owner holds its own descriptors, the source's sockets vanish silently. Otherwise
    // the source goes on (repair off, owner continued) and the rebuilt sockets vanish.
    for (const r of rebuilt) N.closeQuietly(r.fd);
    const held = frozen.filter((f) => f.fd >= 0);
    if (!live) resumeAll(held); // errors: reported by the check of the run
    silentCloseAll(held);
    for (const d of dups.slice(frozen.length)) N.closeQuietly(d);
    if (!live) proc?.cont();
    proc?.close();
    source?.close();
    dest?.close();
    for (const l of locks) netlock.unlock(l.key, l.tuples);
    netlock.stop();
  }
}
