// The Handoff RPC: a same-host upgrade. The old owner's live sockets themselves (our pidfd_getfd
// duplicates: the same open files, listeners with their accept queues) go to the new owner over the
// hand-over protocol (custody/delivery.ts); nothing is frozen, copied or rebuilt, so no 4-tuple is ever
// held twice. The old owner is stopped (SIGSTOP) from before we take its fds until the new owner
// acknowledged, so that the two never serve the same sockets at once. A failure before the
// acknowledgement changes nothing: our duplicates are closed (plain close: the owner still holds every
// socket) and the owner continued. After it, the owner stays stopped (or is killed, kill_old): continuing
// it would let it read and accept on sockets that are no longer its own.
import type * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { type DeliveryItem, MAX_FDS_PER_SEND, deliver, prepareSocketLines } from '../custody/delivery';
import type { HandoverRules } from '../custody/handover-target';
import { NetnsHandle } from '../kernel/netns';
import { type Journal, crashPoint, processStartTime } from '../custody/journal';
import type { Logger } from '../log';
import { HANDOVER_MAX_MS } from '../../protocol/handover';
import { ProcessFacts, ProcessHandle, refuseDaemons } from '../repair/acquire';
import { HandoffSocket, chooseHandoffSockets, growFdTable, takeBatchFor, takeHandoffSockets } from '../repair/handoff-take';
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
    // Journaled as a source session without sockets whose owner the daemon stops: a daemon that dies
    // before the new owner acknowledged continues the owner at its restart (recovery.ts), which then
    // still holds every socket; once acknowledged it is journaled released, and the owner stays stopped.
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
    // The freeze: from the stop to the new owner's acknowledgement, no process serves the sockets (the
    // kernel still does: peers see at most a full window, never a reset). The receiver is connected and
    // checked before it starts (deliver calls `take` then).
    let stoppedAt = 0n;
    let stopped = 0n;
    let taken = 0n;
    let cpuAt = process.cpuUsage();
    let held: { sockets: HandoffSocket[]; dups: number[] } = { sockets: [], dups: [] };
    const take = async (): Promise<DeliveryItem[]> => {
      stoppedAt = process.hrtime.bigint();
      cpuAt = process.cpuUsage();
      await proc.stop();
      stopped = process.hrtime.bigint();
      undo.push('continue the owner', () => proc.cont());
      crashPoint('handoff.after-stop');
      held = takeHandoffSockets(proc, choice, sel, batch);
      const { dups } = held;
      taken = process.hrtime.bigint();
      undo.push('close our duplicates (the owner still holds every socket)', () => dups.forEach((d) => N.closeQuietly(d)));
      // A socket still at its place in the list keeps its line made before the stop.
      return items(id, req.pid, held.sockets, dups).map((it, i) => (held.sockets[i] === choice.sockets[i] ? { fd: it.fd, meta: planned[i].meta } : it));
    };
    let ackedAt = 0n;
    let cpu = { user: 0, system: 0 };
    await deliver(
      req.deliverUnixPath,
      take,
      () => {
        ackedAt = process.hrtime.bigint();
        cpu = process.cpuUsage(cpuAt);
        // The new owner holds every socket: from now on the old one must never run again, restart or not.
        journal?.ended(id, 'RELEASED');
      },
      {
        signal: stopping,
        rules,
        // every message in flight at once (about 1 KiB of kernel memory each): never a wait for the receiver to drain
        sendBufferBytes: Math.min(64 << 20, 256 * 1024 + 2048 * choice.sockets.length),
        // sixteen sockets per system call on both sides unless the caller asked for one (a receiver whose
        // control buffer takes a single fd)
        fdsPerMessage: req.fdsPerMessage === 0 ? MAX_FDS_PER_SEND : req.fdsPerMessage,
      },
    );
    const { sockets, dups } = held;
    // The new owner holds them: ours go, and the old owner never runs again on them.
    dups.forEach((d) => N.closeQuietly(d));
    const killed = req.killOld ? proc.kill() : false;
    proc.close();
    undo.release();
    const freezeUs = Number(ackedAt - stoppedAt) / 1000;
    const us = (a: bigint, b: bigint): number => Math.round(Number(b - a) / 1000);
    log.info('handed off', {
      handoff: id,
      pid: req.pid,
      sockets: sockets.length,
      skipped: choice.skipped.length,
      freezeUs: Math.round(freezeUs),
      // where the freeze went: stopping the owner, taking its fds, the hand-over up to the ack
      stopUs: us(stoppedAt, stopped),
      takeUs: us(stopped, taken),
      deliverUs: us(taken, ackedAt),
      // the daemon's own CPU time in the freeze: on a loaded machine the rest is waiting for a CPU (or for the receiver)
      freezeCpuUs: cpu.user + cpu.system,
      oldOwnerKilled: killed,
    });
    return {
      handoffId: id,
      sockets: sockets.map((s) => ({ fd: s.fd, local: addressToMsg(s.local), remote: addressToMsg(s.remote), state: s.state })),
      skipped: choice.skipped,
      freezeUs: Math.round(freezeUs),
      oldOwnerKilled: killed,
    };
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
