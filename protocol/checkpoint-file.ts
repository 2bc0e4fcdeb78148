// Checkpoint files: a header, then the session's frames, length-delimited.
import { FrameType, MAX_CHUNK, STREAM_FORMAT, STREAM_FORMATS_READ, decodeFrame, encodeFrame, invalidStream } from './frames';
import type { FrameMsg } from './messages';

/** "SOCCR", a format byte, then a 16-bit big-endian version; length-delimited frames follow. */
export const FILE_MAGIC = Buffer.from('SOCCR\x01', 'latin1');
export const FILE_HEADER_LEN = FILE_MAGIC.length + 2;

export function fileHeader(): Buffer {
  const b = Buffer.alloc(FILE_HEADER_LEN);
  FILE_MAGIC.copy(b);
  b.writeUInt16BE(STREAM_FORMAT, FILE_MAGIC.length);
  return b;
}

export function checkFileHeader(b: Buffer): void {
  if (b.length < FILE_HEADER_LEN || !b.subarray(0, FILE_MAGIC.length).equals(FILE_MAGIC)) invalidStream('not a soccrd checkpoint file (bad magic)');
  const v = b.readUInt16BE(FILE_MAGIC.length);
  if (!STREAM_FORMATS_READ.includes(v)) invalidStream(`checkpoint file format ${v}, this build reads ${STREAM_FORMATS_READ.join(', ')}`);
}

/** One frame, length-delimited (varint length, then the message), as a checkpoint file stores it. */
export function encodeFrameDelimited(f: FrameMsg): Buffer {
  const plain: Record<string, unknown> = {};
  for (const k of ['restoreOptions', 'session', 'connection', 'chunk', 'end', 'streamEnd'] as const) if (f[k]) plain[k] = f[k];
  const err = FrameType.verify(plain);
  if (err) invalidStream(err);
  const out = FrameType.encodeDelimited(FrameType.fromObject(plain)).finish();
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** Field tags of Frame.chunk and of QueueChunk's fields (field number << 3 | wire type). */
const CHUNK_FRAME_TAG = (4 << 3) | 2;
const CHUNK_INDEX_TAG = (1 << 3) | 0;
const CHUNK_QUEUE_TAG = (2 << 3) | 0;
const CHUNK_OFFSET_TAG = (3 << 3) | 0;
const CHUNK_DATA_TAG = (4 << 3) | 2;

/**
 * One frame length-delimited as encodeFrameDelimited writes it, in pieces to be written one after the
 * other: a queue chunk's bytes are the last piece as they are, not copied into an encoded message.
 * For frames the daemon built itself (sessionFrames).
 */
export function frameDelimitedPieces(f: FrameMsg): Buffer[] {
  const ch = f.chunk;
  if (!ch) {
    const body = encodeFrame(f);
    return [varint(body.length), body];
  }
  const inner = Buffer.concat([
    Buffer.from([CHUNK_INDEX_TAG]),
    varint(ch.index),
    Buffer.from([CHUNK_QUEUE_TAG]),
    varint(ch.queue),
    Buffer.from([CHUNK_OFFSET_TAG]),
    varint(ch.offset),
    Buffer.from([CHUNK_DATA_TAG]),
    varint(ch.data.length),
  ]);
  const chunkLen = inner.length + ch.data.length;
  const outer = Buffer.concat([Buffer.from([CHUNK_FRAME_TAG]), varint(chunkLen)]);
  return [varint(outer.length + chunkLen), outer, inner, ch.data];
}

/**
 * Splits a buffer of length-delimited frames. Returns the frames found and how many bytes they used, so
 * a reader can keep the rest for the next read.
 */
export function decodeFramesDelimited(b: Buffer, maxFrameBytes = MAX_CHUNK + 64 * 1024): { frames: FrameMsg[]; used: number } {
  const frames: FrameMsg[] = [];
  let off = 0;
  while (off < b.length) {
    let len = 0;
    let shift = 0;
    let p = off;
    for (;;) {
      if (p >= b.length) return { frames, used: off };
      const byte = b[p++];
      len += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if (!(byte & 0x80)) break;
      if (shift > 35) invalidStream('frame length is not a varint');
    }
    if (len > maxFrameBytes) invalidStream(`frame of ${len} bytes, more than ${maxFrameBytes}`);
    if (p + len > b.length) return { frames, used: off };
    let msg: FrameMsg;
    try {
      msg = decodeFrame(b.subarray(p, p + len));
    } catch (e) {
      return invalidStream(`corrupt frame at byte ${off}: ${e instanceof Error ? e.message : String(e)}`);
    }
    frames.push(msg);
    off = p + len;
  }
  return { frames, used: off };
}
