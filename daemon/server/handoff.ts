// The Handoff RPC: a same-host upgrade. The old owner's live sockets themselves (our pidfd_getfd
// duplicates: the same open files, listeners with their accept queues) go to the new owner over the
// hand-over protocol (custody/delivery.ts); nothing is frozen, copied or rebuilt, so no 4-tuple is ever
// held twice. They are taken and handed over while the old owner still runs (the receiver holds them
// unused until "live"); once the receiver acknowledged, the owner is stopped (SIGSTOP), its fds are
// checked against ours (handoff-take.ts changedSince) and "live" is sent: the freeze is the stop, the
// check and one line. An owner that changed its sockets before the stop gets them taken and handed
// over again while it is stopped (the receiver told to abort "again"). A failure before "live" changes
// nothing: our duplicates are closed (plain close: the owner still holds every socket) and the owner
// continued. After it, the owner stays stopped (or is killed, kill_old): continuing it would let it
// read and accept on sockets that are no longer its own.
import type * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { type DeliveryItem, HandOverAgain, MAX_FDS_PER_SEND, deliver, prepareSocketLines } from '../custody/delivery';
import type { HandoverRules } from '../custody/handover-target';
import { NetnsHandle } from '../kernel/netns';
import { boostThread } from '../kernel/priority';
import { type Journal, crashPoint, processStartTime } from '../custody/journal';
import type { Logger } from '../log';
import { HANDOVER_MAX_MS } from '../../protocol/handover';
import { ProcessFacts, ProcessHandle, refuseDaemons } from '../repair/acquire';
import {
  HandoffChoice,
  HandoffSocket,
  TakenSockets,
  changedSince,
  chooseHandoffSockets,
  growFdTable,
  otherFds,
  takeBatchFor,
  takeHandoffSockets,
} from '../repair/handoff-take';
import * as N from '../kernel/native';
import { addressToMsg } from '../../protocol/address';
import { SoccrError, errorMessage } from '../../protocol/errors';
import type { HandoffRequestMsg, HandoffResponseMsg } from '../../protocol/messages';
import { stateName } from '../../protocol/saved-state';
import type { Calls } from './calls';
import { Rollback } from './rollback';

export function handoffHandlers(calls: Calls): grpc.UntypedServiceImplementation {
  const Handoff = calls.unary('Handoff', (req: HandoffRequestMsg, log, caller) => {
    const o = calls.options;
    if (!Number.isInteger(req.pid) || req.pid <= 0) throw new SoccrError('BAD_REQUEST', 'pid is required');
    if (!req.deliverUnixPath) throw new SoccrError('BAD_REQUEST', 'a hand-off needs deliver_unix_path, the Unix socket of the new owner');
    // A hand-off is a checkpoint and a restore into the owner's own namespace in one: the caller must be
    // allowed both, as for Checkpoint (the process) and Restore (the namespace, the hand-over path).
    const policy = calls.policyFor(caller);
    // The owner's namespace, opened once for both checks (and the expected one, if named, opened once too).
    const ownerNs = ownerNetns(req.pid);
    try {
      policy.checkRestoreNetns(ownerNs);
      if (req.expectNetns) checkSameNetns(req.pid, ownerNs, req.expectNetns);
    } finally {
      ownerNs.close();
    }
    policy.checkHandoverPath(req.deliverUnixPath);
    if (req.fdsPerMessage > MAX_FDS_PER_SEND) throw new SoccrError('BAD_REQUEST', `fds_per_message is at most ${MAX_FDS_PER_SEND}, not ${req.fdsPerMessage}`);
    const rules = policy.handoverRules();
    // The process itself is judged on facts read through its pidfd (as for Checkpoint): never a soccrd.
    const checkTarget = (facts: ProcessFacts): void => {
      refuseDaemons(facts);
      policy.checkCheckpoint(req.pid, facts);
    };
    return o.sessions.runOutside((stopping) => handoff(req, checkTarget, stopping, log, rules, o.journal, caller.id));
  });
  return { Handoff };
}

async function handoff(
  req: HandoffRequestMsg,
  checkTarget: (facts: ProcessFacts) => void,
  stopping: AbortSignal,
  log: Logger,
  rules: HandoverRules,
  journal: Journal | undefined,
  callerId: string,
): Promise<HandoffResponseMsg> {
  const id = `handoff-${randomUUID()}`;
  const undo = new Rollback();
  const proc = ProcessHandle.open(req.pid);
  undo.push('close the owner handle', () => proc.close());
  try {
    const facts = proc.facts();
    checkTarget(facts);
    const sel = { fds: req.fds, all: req.all, listeners: req.listeners, known: facts.sockets };
    const choice = chooseHandoffSockets(req.pid, sel);
    proc.confirm(); // the sockets listed are this process's
    // Everything that can be done before the stop is: the fd table grown, the batch sized, the lines made.
    growFdTable(choice.sockets.length + 64);
    const batch = takeBatchFor(choice.sockets.length);
    const planned = items(id, req.pid, choice.sockets, new Array<number>(choice.sockets.length).fill(0));
    prepareSocketLines(planned.map((it) => it.meta));
    /** Items for taken sockets: one still at its place in the list keeps its line made before the stop. */
    const itemsOf = (t: TakenSockets): DeliveryItem[] =>
      items(id, req.pid, t.sockets, t.dups).map((it, i) => (t.sockets[i] === choice.sockets[i] ? { fd: it.fd, meta: planned[i].meta } : it));
    // Journaled as a source session without sockets whose owner the daemon stops: a daemon that dies
    // before the new owner may go live continues the owner at its restart (recovery.ts), which then
    // still holds every socket; once the check after the stop passed it is journaled released, and the
    // owner stays stopped.
    if (journal) {
      journal.beginSource({
        id,
        pid: req.pid,
        startTime: processStartTime(req.pid),
        leaseMs: HANDOVER_MAX_MS,
        expires: Date.now() + HANDOVER_MAX_MS,
        stopOwner: true,
        conns: [],
        createdBy: callerId,
      });
      undo.push('journal the hand-off as undone', () => journal.ended(id, 'ABORTED'));
      journal.stopping(id);
    }
    const opts = {
      signal: stopping,
      rules,
      // every message in flight at once (about 1 KiB of kernel memory each): never a wait for the receiver to drain
      sendBufferBytes: Math.min(64 << 20, 256 * 1024 + 2048 * choice.sockets.length),
      // sixteen sockets per system call on both sides unless the caller asked for one (a receiver whose
      // control buffer takes a single fd)
      fdsPerMessage: req.fdsPerMessage === 0 ? MAX_FDS_PER_SEND : req.fdsPerMessage,
    };
    // Our duplicates held now (closed by the undo, or once the new owner holds them).
    let held: TakenSockets = { sockets: [], dups: [] };
    undo.push('close our duplicates (the owner still holds every socket)', () => held.dups.forEach((d) => N.closeQuietly(d)));
    const t = { stop: 0n, stopped: 0n, checked: 0n, taken: 0n, acked: 0n, live: 0n, cpuAt: process.cpuUsage(), stopUnixMs: 0 };
    // From the stop to "live" this thread runs at the highest priority, and the owner's main thread
    // until it stopped (kernel/priority.ts): a busy machine's other work would otherwise lengthen the freeze.
    let unboost = (): void => undefined;
    undo.push('put our priority back', () => unboost());
    const stopOwner = async (): Promise<void> => {
      if (t.stop === 0n) {
        t.stop = process.hrtime.bigint();
        t.stopUnixMs = performance.timeOrigin + performance.now();
        t.cpuAt = process.cpuUsage();
        unboost = boostThread(0);
      }
      const unboostOwner = boostThread(req.pid);
      try {
        await proc.stop();
      } finally {
        unboostOwner();
      }
      if (t.stopped === 0n) {
        t.stopped = process.hrtime.bigint();
        undo.push('continue the owner', () => proc.cont());
      }
      crashPoint('handoff.after-stop');
    };
    // The freeze is what the old owner's stop costs the peers: from the stop until the new owner may use
    // the sockets ("live"), no process serves them (the kernel still does: peers see at most a full
    // window, never a reset). So the sockets are taken and handed over while the owner still runs (the
    // receiver holds them unused until "live"), and the stop only has to check that the owner changed
    // none of them meanwhile.
    const early = { ...choice, skipped: [...choice.skipped] };
    held = takeHandoffSockets(proc, early, sel, batch);
    const others = otherFds(req.pid, held);
    let again: string | undefined;
    try {
      await deliver(
        req.deliverUnixPath,
        itemsOf(held),
        async () => {
          await stopOwner();
          const changed = changedSince(proc, held, sel, others, batch);
          t.checked = process.hrtime.bigint();
          if (changed) throw new HandOverAgain(`the owner changed its sockets before it was stopped (${changed}): they follow on a new hand-over`);
          // The new owner holds every socket: from now on the old one must never run again, restart or not.
          journal?.handedOff(id);
        },
        opts,
      );
    } catch (err) {
      if (!(err instanceof HandOverAgain)) throw err;
      again = err.message;
    }
    if (again === undefined) {
      t.live = process.hrtime.bigint();
      return finish(held, early.skipped, 'early');
    }
    // The owner changed its sockets in the meantime (it closed one, or accepted a connection): the
    // receiver closes what it got, and the owner, stopped now, has its sockets taken and handed over again.
    log.info('hand-off: the owner changed its sockets before it was stopped; handing them over again while it is stopped', { handoff: id, why: again });
    held.dups.forEach((d) => N.closeQuietly(d));
    held = { sockets: [], dups: [] };
    const take = async (): Promise<DeliveryItem[]> => {
      await stopOwner();
      held = takeHandoffSockets(proc, choice, sel, batch);
      t.taken = process.hrtime.bigint();
      return itemsOf(held);
    };
    await deliver(
      req.deliverUnixPath,
      take,
      () => {
        t.acked = process.hrtime.bigint();
        journal?.handedOff(id);
      },
      opts,
    );
    t.live = process.hrtime.bigint();
    return finish(held, choice.skipped, 'stopped');

    function finish(taken: TakenSockets, skipped: HandoffChoice['skipped'], how: 'early' | 'stopped'): HandoffResponseMsg {
      unboost();
      const cpu = process.cpuUsage(t.cpuAt);
      journal?.tidy();
      const { sockets, dups } = taken;
      // The new owner holds them: ours go, and the old owner never runs again on them.
      dups.forEach((d) => N.closeQuietly(d));
      const killed = req.killOld ? proc.kill() : false;
      proc.close();
      undo.release();
      const freezeUs = Number(t.live - t.stop) / 1000;
      const us = (a: bigint, b: bigint): number => (a && b ? Math.round(Number(b - a) / 1000) : 0);
      log.info('handed off', {
        handoff: id,
        pid: req.pid,
        sockets: sockets.length,
        skipped: skipped.length,
        // early: handed over while the owner ran, checked once it was stopped; stopped: taken and handed over while it was stopped
        how,
        freezeUs: Math.round(freezeUs),
        // where the freeze went: stopping the owner, checking its fds (early), taking them and the
        // hand-over up to the ack (stopped), then up to "live" sent
        stopUs: us(t.stop, t.stopped),
        checkUs: us(t.stopped, t.checked),
        takeUs: how === 'stopped' ? us(t.checked || t.stopped, t.taken) : 0,
        deliverUs: how === 'stopped' ? us(t.taken, t.acked) : 0,
        liveUs: us(how === 'stopped' ? t.acked : t.checked, t.live),
        // the daemon's own CPU time in the freeze: on a loaded machine the rest is waiting for a CPU (or for the receiver)
        freezeCpuUs: cpu.user + cpu.system,
        // when the stop began (Unix ms, fractional): a receiver's own clock shows when it read "live"
        stoppedAtUnixMs: Math.round(t.stopUnixMs * 1000) / 1000,
        oldOwnerKilled: killed,
      });
      return {
        handoffId: id,
        sockets: sockets.map((s) => ({ fd: s.fd, local: addressToMsg(s.local), remote: addressToMsg(s.remote), state: s.state })),
        skipped,
        freezeUs: Math.round(freezeUs),
        oldOwnerKilled: killed,
      };
    }
  } catch (err) {
    undo.run(err, log);
    throw err;
  }
}

/** The hand-over's messages: one per socket, its state by name (LISTEN for a listener). */
function items(id: string, pid: number, sockets: HandoffSocket[], dups: number[]): DeliveryItem[] {
  return sockets.map((s, i) => ({
    fd: dups[i],
    meta: { id: `${pid}:${s.fd}`, session: id, index: i, local: s.local, remote: s.remote, state: stateName(s.state) },
  }));
}

/** The owner's network namespace, opened once (NO_SUCH_PROCESS when there is no such process). */
function ownerNetns(pid: number): NetnsHandle {
  try {
    return NetnsHandle.open(`/proc/${pid}/ns/net`);
  } catch (err) {
    throw new SoccrError('NO_SUCH_PROCESS', `cannot open the network namespace of pid ${pid}: ${errorMessage(err)}`, err);
  }
}

/** TARGET_STATE unless the process's network namespace (`owner`) is the one at `path` (opened once, compared by identity). */
function checkSameNetns(pid: number, owner: NetnsHandle, path: string): void {
  const expected = NetnsHandle.open(path);
  const same = expected.id === owner.id;
  expected.close();
  if (!same) {
    throw new SoccrError(
      'TARGET_STATE',
      `pid ${pid} is not in the network namespace ${path}: a hand-off keeps sockets where they are (checkpoint and restore move them)`,
    );
  }
}
