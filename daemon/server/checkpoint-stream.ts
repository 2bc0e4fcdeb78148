// How a Checkpoint sends its session's frames: on the call itself, batched and honouring its flow
// control, or on a direct data connection to the destination daemon (DataTransfer).
import * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import { crashPoint } from '../custody/journal';
import { checkpointChunkSent } from '../metrics';
import { SoccrError } from '../../protocol/errors';
import { CheckpointRequestMsg, FrameMsg, SessionHeaderMsg } from '../../protocol/messages';
import { StreamedConnection, sessionFrames } from '../../protocol/session-frames';
import { batchFrames, unpackFrames } from '../../protocol/frames';
import type { DataSender } from './data-path';

/** Longest a Checkpoint stream goes on saving sockets without letting its written frames leave, ms. */
const FLUSH_EVERY_MS = 2;

export type CheckpointCall = grpc.ServerWritableStream<CheckpointRequestMsg, FrameMsg>;

const callerGone = (): SoccrError => new SoccrError('SESSION_STATE', 'the caller went away mid-stream');

/** The session's frames on the Checkpoint stream itself, batched, honouring its flow control. */
export async function streamOverCall(call: CheckpointCall, header: SessionHeaderMsg, conns: readonly StreamedConnection[]): Promise<void> {
  let frames = 0;
  let lastFlush = performance.now();
  for (const frame of batchFrames(sessionFrames(header, conns))) {
    if (call.cancelled) throw callerGone();
    if (!call.write(frame)) {
      await Promise.race([once(call, 'drain'), once(call, 'cancelled')]);
      lastFlush = performance.now();
    } else if (frames === 0 || performance.now() - lastFlush > FLUSH_EVERY_MS) {
      // Written frames leave only when the event loop runs: let them go now and then (the header
      // at once), so that the destination locks and rebuilds while this side saves the rest.
      await new Promise<void>((resolve) => setImmediate(resolve));
      lastFlush = performance.now();
    }
    for (const f of unpackFrames(frame)) if (f.chunk) checkpointChunkSent(f.chunk);
    if (frames++ === 0) crashPoint('checkpoint.mid-stream');
  }
}

/**
 * The session's frames on a direct data connection; the Checkpoint stream carries the session header
 * (the orchestrator learns the session at once) and, once the data connection took every byte, the
 * stream end. The data connection is the stream's: a failure cuts it.
 */
export async function streamOverDataPath(
  call: CheckpointCall,
  data: DataSender,
  header: SessionHeaderMsg,
  conns: readonly StreamedConnection[],
): Promise<void> {
  try {
    let frames = 0;
    let lastFlush = performance.now();
    for (const frame of sessionFrames(header, conns)) {
      if (call.cancelled) throw callerGone();
      const more = data.push(frame);
      if (frame.streamEnd) {
        await data.finish();
        call.write(frame);
        return;
      }
      if (frame.session) {
        // Sealed and sent at once, so that the destination locks every connection while this side saves.
        data.flush();
        call.write(frame);
        await new Promise<void>((resolve) => setImmediate(resolve));
        lastFlush = performance.now();
      } else if (performance.now() - lastFlush > FLUSH_EVERY_MS) {
        data.flush();
        lastFlush = performance.now();
      }
      if (!more) await data.drained();
      if (frame.chunk) checkpointChunkSent(frame.chunk);
      if (frames++ === 0) crashPoint('checkpoint.mid-stream');
    }
  } catch (err) {
    // A stream that failed is of no use to the destination: it sees the connection cut.
    data.destroy();
    throw err;
  }
}
