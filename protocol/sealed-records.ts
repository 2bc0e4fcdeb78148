// The records of a direct data connection between two daemons (soccr.v1.DataTransfer in the proto):
// a cleartext preamble naming the transfer, then records sealed with ChaCha20-Poly1305 (protocol/aead.ts)
// under the transfer's key, numbered by a counter in their nonce so that none can be dropped, repeated
// or reordered unseen.
import { AEAD_KEY_BYTES, AEAD_NONCE_BYTES, AEAD_TAG_BYTES, openInPlace, sealInPlace } from './aead';
import { SoccrError } from './errors';
import { MAX_CHUNK } from './frames';

export const DATA_MAGIC = Buffer.from('SOCCRDP1', 'latin1');
export const TRANSFER_ID_BYTES = 16;
export const DATA_KEY_BYTES = AEAD_KEY_BYTES;
export const PREAMBLE_BYTES = DATA_MAGIC.length + TRANSFER_ID_BYTES;
export const LENGTH_BYTES = 4;
export const TAG_BYTES = AEAD_TAG_BYTES;
/** Largest record plaintext: one whole queue chunk frame, or small frames packed together. */
export const MAX_RECORD = MAX_CHUNK + 64 * 1024;

function nonce(counter: number): Buffer {
  const n = Buffer.alloc(AEAD_NONCE_BYTES);
  n.writeBigUInt64BE(BigInt(counter), 4);
  return n;
}

export function preamble(transferId: Buffer): Buffer {
  return Buffer.concat([DATA_MAGIC, transferId]);
}

/** The transfer id a preamble names; throws if it is not one. */
export function readPreamble(b: Buffer): Buffer {
  if (b.length !== PREAMBLE_BYTES || !b.subarray(0, DATA_MAGIC.length).equals(DATA_MAGIC))
    throw new SoccrError('DATA_PATH', 'not a soccrd data connection (bad preamble)');
  return Buffer.from(b.subarray(DATA_MAGIC.length));
}

export function checkTransferKeys(transferId: Buffer, key: Buffer): void {
  if (transferId.length !== TRANSFER_ID_BYTES)
    throw new SoccrError('BAD_REQUEST', `data transfer id of ${transferId.length} bytes, expected ${TRANSFER_ID_BYTES}`);
  if (key.length !== DATA_KEY_BYTES) throw new SoccrError('BAD_REQUEST', `data transfer key of ${key.length} bytes, expected ${DATA_KEY_BYTES}`);
}

/** Seals records, in order. Record 0 is the hello: it authenticates the preamble and repeats the id. */
export class RecordSealer {
  private counter = 0;

  constructor(
    private readonly key: Buffer,
    private readonly transferId: Buffer,
  ) {}

  /** The preamble and the sealed hello: what a data connection starts with. */
  opening(): Buffer[] {
    const pre = preamble(this.transferId);
    return [pre, ...this.seal([this.transferId], pre)];
  }

  /**
   * Seals the concatenation of `pieces` (at most MAX_RECORD bytes) as the next record: the buffers to
   * write, in order. The pieces are copied once, into the record that is then encrypted in place, and
   * left as they were (a queue's bytes are hashed after their chunks went).
   */
  seal(pieces: readonly Buffer[], extraAad?: Buffer): Buffer[] {
    let len = 0;
    for (const p of pieces) len += p.length;
    if (len > MAX_RECORD) throw new SoccrError('LIMIT', `data record of ${len} bytes, more than ${MAX_RECORD}`);
    const head = Buffer.alloc(LENGTH_BYTES);
    head.writeUInt32BE(len);
    const body = Buffer.concat(pieces, len);
    const tag = sealInPlace(this.key, nonce(this.counter++), extraAad ? Buffer.concat([extraAad, head]) : head, body);
    return [head, body, tag];
  }
}

/** Opens records in the order they were sealed; a record that does not open throws. */
export class RecordOpener {
  private counter = 0;

  constructor(
    private readonly key: Buffer,
    private readonly transferId: Buffer,
  ) {}

  /**
   * The plaintext of the next record, given its length field and its ciphertext with the tag at the
   * end: decrypted in place (`sealed` is the reader's own buffer). Throws when it does not open.
   */
  open(head: Buffer, sealed: Buffer, extraAad?: Buffer): Buffer {
    const body = sealed.subarray(0, sealed.length - TAG_BYTES);
    openInPlace(this.key, nonce(this.counter++), extraAad ? Buffer.concat([extraAad, head]) : head, body, sealed.subarray(sealed.length - TAG_BYTES));
    return body;
  }

  /** Whether the hello (record 0, after `pre`) opens under the key and names this transfer. */
  openHello(pre: Buffer, head: Buffer, sealed: Buffer): boolean {
    try {
      return this.open(head, sealed, pre).equals(this.transferId);
    } catch {
      return false;
    }
  }
}

/** The plaintext length a record's length field states; throws above MAX_RECORD. */
export function recordLength(head: Buffer): number {
  const len = head.readUInt32BE(0);
  if (len > MAX_RECORD) throw new SoccrError('DATA_PATH', `data record of ${len} bytes announced, more than ${MAX_RECORD}`);
  return len;
}
