// Deterministic byte streams for the tests: byte i of stream `seed` is a fixed function of (seed, i),
// so every receiver can check each byte it gets, in order, without keeping the sender's history.
import { createHash } from 'node:crypto';

// A prime period: a stream never repeats at a power-of-two distance, so a chunk delivered twice or
// at a shifted offset shows as a mismatch.
const PERIOD = 1_000_003;
const blocks = new Map<number, Buffer>();

function block(seed: number): Buffer {
  let b = blocks.get(seed);
  if (!b) {
    b = Buffer.alloc(PERIOD);
    let counter = 0;
    for (let off = 0; off < b.length; off += 32) {
      createHash('sha256').update(`${seed}:${counter++}`).digest().copy(b, off);
    }
    blocks.set(seed, b);
  }
  return b;
}

/** Writes bytes [offset, offset+len) of stream `seed` into out at outOff. */
export function fillStream(seed: number, offset: number, out: Buffer, outOff: number, len: number): void {
  const b = block(seed);
  let done = 0;
  while (done < len) {
    const pos = (offset + done) % PERIOD;
    const n = Math.min(len - done, PERIOD - pos);
    b.copy(out, outOff + done, pos, pos + n);
    done += n;
  }
}

export function streamBytes(seed: number, offset: number, len: number): Buffer {
  const out = Buffer.alloc(len);
  fillStream(seed, offset, out, 0, len);
  return out;
}

/** Index of the first byte of `data` that differs from the stream at `offset`, or -1. */
export function firstMismatch(seed: number, offset: number, data: Buffer): number {
  const expected = streamBytes(seed, offset, data.length);
  if (expected.equals(data)) return -1;
  for (let i = 0; i < data.length; i++) if (expected[i] !== data[i]) return i;
  return -1;
}

/** SHA-256 of bytes [0, len) of stream `seed`. */
export function streamHash(seed: number, len: number): string {
  const h = createHash('sha256');
  const chunk = Buffer.alloc(1 << 20);
  for (let off = 0; off < len; off += chunk.length) {
    const n = Math.min(chunk.length, len - off);
    fillStream(seed, off, chunk, 0, n);
    h.update(chunk.subarray(0, n));
  }
  return h.digest('hex');
}
