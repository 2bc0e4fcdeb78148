// The one frame format shared by the Checkpoint stream, the Restore input and checkpoint files: encoding,
// decoding, and packing small frames into batches.
import { createHash } from 'node:crypto';
import { SoccrError } from './errors';
import type { FrameMsg } from './messages';
import { LOAD_OPTIONS, UNDECODABLE, protoRoot } from './proto';

/** soccr.v1.Frame's codec. */
export const FrameType = protoRoot.lookupType('soccr.v1.Frame');

/** A frame stream that breaks the format: INVALID_STATE. */
export function invalidStream(msg: string): never {
  throw new SoccrError('INVALID_STATE', `invalid checkpoint stream: ${msg}`);
}
/** Version of the frame format (stream and file) this build writes. */
export const STREAM_FORMAT = 1;
/** Every frame format this build reads (a later build keeps reading the earlier ones for a rolling upgrade). */
export const STREAM_FORMATS_READ: readonly number[] = [1];

/**
 * The formats a daemon says it reads (GetVersion): its list, or only the one it writes when it is older
 * than the list.
 */
export function formatsRead(v: { streamFormat: number; streamFormatsRead: readonly number[] }): readonly number[] {
  return v.streamFormatsRead.length > 0 ? v.streamFormatsRead : [v.streamFormat];
}
/** Largest queue chunk a frame carries. */
export const MAX_CHUNK = 1 << 20;

export function frameKind(f: FrameMsg): string {
  if (f.kind) return f.kind;
  for (const k of ['restoreOptions', 'session', 'connection', 'chunk', 'end', 'streamEnd', 'batch'] as const) if (f[k]) return k;
  return '';
}

const KIND_BY_FIELD = ['', 'restoreOptions', 'session', 'connection', 'chunk', 'end', 'streamEnd', 'batch'];

/**
 * The kind of an encoded Frame, read from its first tag (the oneof member's field number) without
 * decoding it: a relay passes queue chunks on untouched. '' when the first tag names no member.
 */
export function encodedFrameKind(b: Buffer): string {
  if (b.length === 0) return '';
  const tag = b[0];
  return (tag & 7) === 2 ? (KIND_BY_FIELD[tag >> 3] ?? '') : '';
}

/**
 * Encodes a Frame the daemon built itself (sessionFrames: plain objects with the proto's types already),
 * without the fromObject conversion proto-loader's serializer makes first.
 */
export function encodeFrame(f: FrameMsg): Buffer {
  const u = FrameType.encode(f).finish();
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** Decodes one encoded Frame into the plain object grpc-js hands over; throws if it does not decode. */
export function decodeFrame(b: Buffer): FrameMsg {
  return FrameType.toObject(FrameType.decode(b), LOAD_OPTIONS);
}

/**
 * The frames one message carries, in order: a batch's, or the frame itself. A batch inside a batch,
 * restore options inside a batch or an empty batch is a malformed stream.
 */
export function unpackFrames(f: FrameMsg): FrameMsg[] {
  if (frameKind(f) !== 'batch') return [f];
  const inner = f.batch?.frames ?? [];
  if (inner.length === 0) throw new SoccrError('BAD_REQUEST', 'invalid checkpoint stream: an empty frame batch');
  for (const x of inner) {
    const k = frameKind(x);
    if (k === 'batch' || k === 'restoreOptions' || k === '' || k === UNDECODABLE)
      throw new SoccrError('BAD_REQUEST', `invalid checkpoint stream: a frame batch holding ${k || 'an empty frame'}`);
  }
  return inner;
}

/** Frames per batch, and bytes: small enough that the destination starts on a batch within milliseconds. */
const BATCH_FRAMES = 64;
const BATCH_BYTES = 256 * 1024;
/** A chunk this large goes in a message of its own. */
const BATCH_CHUNK_BYTES = 16 * 1024;

/**
 * Packs consecutive small frames into batches (at most BATCH_FRAMES frames or BATCH_BYTES of queue
 * bytes each); the session header and large chunks go alone, the header first so that a destination can
 * lock every connection before the first is saved. Lazy: a frame is taken only when its batch is due.
 */
export function* batchFrames(frames: Iterable<FrameMsg>): Generator<FrameMsg> {
  let batch: FrameMsg[] = [];
  let bytes = 0;
  const packed = (): FrameMsg => {
    const out: FrameMsg = batch.length === 1 ? batch[0] : { batch: { frames: batch } };
    batch = [];
    bytes = 0;
    return out;
  };
  for (const f of frames) {
    const size = f.chunk ? f.chunk.data.length : 0;
    if (f.session || size >= BATCH_CHUNK_BYTES) {
      if (batch.length) yield packed();
      yield f;
      continue;
    }
    batch.push(f);
    bytes += size;
    if (batch.length >= BATCH_FRAMES || bytes >= BATCH_BYTES) yield packed();
  }
  if (batch.length) yield packed();
}

export function sha256(b: Buffer): Buffer {
  return createHash('sha256').update(b).digest();
}
