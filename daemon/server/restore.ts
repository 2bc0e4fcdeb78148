// The Restore RPC: a checkpoint stream in (on the call, or on a direct data connection from the source
// daemon), each connection rebuilt in repair mode as soon as its frames are whole, the network locked
// before the first socket exists; HELD at the end, or live and handed over at once (go_live).
import * as grpc from '@grpc/grpc-js';
import { hostBufferCaps, kernelCost } from '../custody/budget';
import { crashPoint, netnsRef } from '../custody/journal';
import type { Session } from '../custody/sessions';
import { NetnsHandle } from '../kernel/netns';
import { callFinished, queuesRestored } from '../metrics';
import { restore as restoreConnection } from '../repair/engine';
import { SoccrError, errorMessage } from '../../protocol/errors';
import { ConnectionHeaderMsg, DataTransferMsg, FrameMsg, RestoreOptionsMsg, RestoreResponseMsg } from '../../protocol/messages';
import { FrameAssembler } from '../../protocol/assembler';
import { addressFromMsg } from '../../protocol/address';
import { frameKind, unpackFrames } from '../../protocol/frames';
import { stateFromObject } from '../../protocol/state-codec';
import { Calls, logFailure, toStatus } from './calls';
import { DATA_PATH_BUFFER_BYTES, dataTransferParams } from './data-path';
import type { Caller } from './auth';
import { sessionToMsg, summarize } from './session-info';

type RestoreCall = grpc.ServerReadableStream<FrameMsg, RestoreResponseMsg>;

export function restoreHandler(calls: Calls): (call: RestoreCall, callback: grpc.sendUnaryData<RestoreResponseMsg>) => void {
  return (call, callback) => void restore(calls, call, callback);
}

async function restore(calls: Calls, call: RestoreCall, callback: grpc.sendUnaryData<RestoreResponseMsg>): Promise<void> {
  const o = calls.options;
  let log = calls.log('Restore');
  const startedAt = performance.now();
  let session: Session | undefined;
  let leave = (): void => undefined;
  let caller: Caller;
  let netns: NetnsHandle | undefined;
  // The id of the connection whose frames came last (until the stream ended): named in an error's details.
  let connection: string | undefined;
  // The connection being assembled: its queues are buffered in this process until its socket is rebuilt.
  const buffered = o.budget?.charge('buffered', 'a Restore stream');
  try {
    ({ log, leave, caller } = calls.admit(call, 'Restore', log));
    calls.checkSessionQuota(caller);
    const assembler = new FrameAssembler(o.limits);
    const input = (call as AsyncIterable<FrameMsg>)[Symbol.asyncIterator]();
    const first = await input.next();
    if (first.done) throw new SoccrError('BAD_REQUEST', 'empty Restore stream');
    if (frameKind(first.value) !== 'restoreOptions') throw new SoccrError('BAD_REQUEST', 'the first frame of a Restore must carry its options');
    const options = checkRestoreOptions(first.value.restoreOptions as RestoreOptionsMsg);
    const policy = calls.policyFor(caller);
    // Opened once, here: the policy checks this descriptor's namespace, and the lock, the journal and
    // every rebuilt socket use it (not entered at all if it is the daemon's own). Closed at the end.
    if (options.netns) netns = NetnsHandle.open(options.netns);
    policy.checkRestoreNetns(netns);
    policy.checkRestoreOptions(options);
    // Refused before anything is rebuilt; checked again, on the opened file, when the hand-over runs.
    if (options.deliverUnixPath) policy.checkHandoverPath(options.deliverUnixPath);
    const netlock = calls.networkLock(options.noNetworkLock);
    const cancelled = new AbortController();
    call.on('cancelled', () => cancelled.abort());
    // A direct transfer's reader buffers ahead of the frames: charged before it reads anything.
    if (options.dataTransfer) buffered?.add(DATA_PATH_BUFFER_BYTES, 'the read-ahead of its direct data connection');
    const frames = options.dataTransfer ? dataPathFrames(calls, options.dataTransfer, cancelled.signal) : callFrames(input);
    for await (const frame of frames) {
      // An Abort may have ended the session between two frames: nothing more is built for it.
      if (session && !session.active) throw endedMidStream(session);
      const done = assembler.push(frame);
      if (!session && assembler.header) {
        const h = assembler.header;
        session = o.sessions.createRestore(h.pid, o.sessions.leaseFor(options.leaseMs), options.netns, options.deliverUnixPath);
        session.busy = 'restore';
        session.createdBy = caller.id;
        session.charge = o.budget?.charge('kernel', `restore session ${session.id}`);
        log = log.child({ session: session.id, source: h.sessionId });
        // Every connection is locked before the first socket exists (one transaction), when the
        // header names them; a stream without tuples is locked connection by connection.
        const tuples = (h.tuples ?? []).map((t) => ({ local: addressFromMsg(t.local), remote: addressFromMsg(t.remote) }));
        if (netlock && tuples.length) {
          // Journaled first: a restarted daemon removes what this run left in that namespace.
          o.journal?.locked(session.id, 'restore', netlock.table, netnsRef(netns), tuples);
          session.lock = { key: netlock.lock(netns, tuples), tuples };
          crashPoint('restore.after-lock');
        }
      }
      if (frameKind(frame) === 'connection') connection = (frame.connection as ConnectionHeaderMsg).id;
      const saved = frameKind(frame) === 'connection' ? stateFromObject((frame.connection as ConnectionHeaderMsg).state) : undefined;
      // What the socket would carry (mark, forced buffer sizes) is the caller's to ask for only if its
      // policy allows it: refused at the connection's header, before its queues or its socket.
      if (saved) policy.checkSavedState(saved);
      if (saved && session) {
        // Charged before a byte of its queues is buffered, its lock taken or its socket made: past the
        // daemon's budget the stream fails here, and only its own session is undone.
        const what = `connection ${assembler.connections} (${saved.inqLen + saved.outqLen} queue bytes)`;
        session.charge?.add(kernelCost(saved, o.bufferCaps ?? hostBufferCaps()), what);
        buffered?.add(saved.inqLen + saved.outqLen, what);
      }
      if (saved && netlock && session && !assembler.header?.tuples?.length) {
        const st = saved;
        const t = { local: st.local, remote: st.remote };
        o.journal?.locked(session.id, 'restore', netlock.table, netnsRef(netns), [t]);
        const key = netlock.lock(netns, [t]);
        session.lock = { key, tuples: [...(session.lock?.tuples ?? []), t] };
        crashPoint('restore.after-lock');
      }
      if (done && session) {
        // Verified (checksums by the assembler, the state by restore) before its socket exists; rebuilt
        // in repair mode, not live.
        const r = restoreConnection(done.state, { netnsHandle: netns, transparent: options.transparent });
        o.sessions.addRestored(session, r, summarize(done.id, 0, done.state));
        queuesRestored(done.state.inqLen, done.state.outqLen);
        // Its bytes are in the kernel now (charged to the session), no longer buffered here.
        buffered?.sub(done.state.inqLen + done.state.outqLen);
        if (session.held.length === 1) crashPoint('restore.after-first-socket');
      }
    }
    connection = undefined;
    if (session && !session.active) throw endedMidStream(session);
    if (!assembler.finished || !session) throw new SoccrError('INVALID_STATE', 'invalid checkpoint stream: it ended before its end frame');
    o.sessions.markHeld(session);
    log.info('connections rebuilt', { connections: session.held.length, goLive: options.goLive });
    crashPoint('restore.held');
    if (options.goLive) await o.sessions.goLive(session, options.deliverUnixPath, policy.handoverRules());
    callFinished('Restore', grpc.status.OK, startedAt);
    callback(null, { session: sessionToMsg(session) });
  } catch (err) {
    if (session) {
      session.busy = undefined;
      // Nothing goes live from a stream that failed: whatever was rebuilt vanishes silently.
      if (session.active && session.state !== 'HELD') o.sessions.abort(session, `restore failed: ${errorMessage(err)}`);
    }
    const st = toStatus(err, { session: session?.id, connection });
    if (session?.state === 'HELD')
      st.details = `${st.details}; session ${session.id} holds the rebuilt sockets: Resume it with another delivery path, or Abort it`;
    logFailure(log, st, err);
    callFinished('Restore', st.code, startedAt);
    callback(st, null);
  } finally {
    buffered?.release();
    netns?.close();
    leave();
  }
}

/** The frames of a Restore that takes them from a direct data connection (RestoreOptions.data_transfer). */
function dataPathFrames(calls: Calls, t: DataTransferMsg, signal: AbortSignal): AsyncGenerator<FrameMsg> {
  const listener = calls.options.dataListener;
  if (!listener) throw new SoccrError('SESSION_STATE', 'this daemon takes no direct transfers (start it with --data-listen)');
  if (t.endpoint) throw new SoccrError('BAD_REQUEST', "a restore's data transfer names no endpoint (the source connects to this daemon's)");
  const { transferId, key, timeoutMs } = dataTransferParams(t);
  return listener.receive(transferId, key, timeoutMs, signal);
}

function endedMidStream(s: Session): SoccrError {
  return new SoccrError('SESSION_STATE', `session ${s.id} is ${s.state} (${s.reason}): its Restore stream is not taken further`);
}

/** The frames a Restore stream carries after its options, a batch's one by one. */
async function* callFrames(input: AsyncIterator<FrameMsg>): AsyncGenerator<FrameMsg> {
  for (;;) {
    const r = await input.next();
    if (r.done) return;
    yield* unpackFrames(r.value);
  }
}

function checkRestoreOptions(o: RestoreOptionsMsg): RestoreOptionsMsg {
  if (o.goLive && !o.deliverUnixPath) throw new SoccrError('BAD_REQUEST', 'going live at once needs a delivery path');
  if (o.deliverUnixPath && Buffer.byteLength(o.deliverUnixPath) > 107)
    throw new SoccrError('BAD_REQUEST', 'delivery path longer than a Unix socket path can be');
  return o;
}
