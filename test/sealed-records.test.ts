// The data path's records and frame pieces, without a network: what the source writes is what a
// checkpoint file holds, and a record that was altered, moved or sealed under another key never opens.
import { strict as assert } from 'node:assert';
import { createCipheriv, randomBytes } from 'node:crypto';
import { aeadImplementation, openInPlace, sealInPlace } from '../protocol/aead';
import { FrameMsg, QueueKind } from '../protocol/messages';
import { decodeFramesDelimited, encodeFrameDelimited, frameDelimitedPieces } from '../protocol/checkpoint-file';
import { RecordOpener, RecordSealer, preamble } from '../protocol/sealed-records';

/** The record as the wire carries it: its length field, and its ciphertext with the tag behind. */
function onWire(parts: Buffer[]): { head: Buffer; sealed: Buffer } {
  return { head: parts[0], sealed: Buffer.concat(parts.slice(1)) };
}

describe('data path records', () => {
  it('a frame in pieces is the frame a checkpoint file holds, queue bytes untouched', () => {
    const data = randomBytes(300_000);
    const frames: FrameMsg[] = [
      { chunk: { index: 0, queue: QueueKind.RECV, offset: 0, data: data.subarray(0, 5) } },
      { chunk: { index: 70_000, queue: QueueKind.SEND, offset: 3 << 20, data } },
      { streamEnd: { connectionCount: 3 } },
    ];
    for (const f of frames) {
      const pieces = frameDelimitedPieces(f);
      if (f.chunk) assert.equal(pieces[pieces.length - 1], f.chunk.data, 'the queue bytes are the last piece, not a copy');
      const joined = Buffer.concat(pieces);
      const { frames: back, used } = decodeFramesDelimited(joined, 1 << 21);
      assert.equal(used, joined.length);
      const { frames: fromFile } = decodeFramesDelimited(encodeFrameDelimited(f), 1 << 21);
      assert.deepEqual(back, fromFile);
    }
  });

  it('records open in order under their key; altered, reordered or foreign ones do not', () => {
    const key = randomBytes(32);
    const id = randomBytes(16);
    const sealer = new RecordSealer(key, id);
    const [pre, ...hello] = sealer.opening();
    const h = onWire(hello);
    const payloads = [randomBytes(10), randomBytes(100_000)];
    const records = payloads.map((p) => onWire(sealer.seal([p.subarray(0, 3), p.subarray(3)])));
    assert.ok(
      payloads.every((p, i) => !records[i].sealed.subarray(0, p.length).equals(p)),
      'sealed bytes are not the plaintext',
    );

    assert.equal(new RecordOpener(randomBytes(32), id).openHello(pre, h.head, Buffer.from(h.sealed)), false, 'another key');
    assert.equal(new RecordOpener(key, randomBytes(16)).openHello(pre, h.head, Buffer.from(h.sealed)), false, 'another transfer');
    assert.equal(new RecordOpener(key, id).openHello(preamble(randomBytes(16)), h.head, Buffer.from(h.sealed)), false, 'a rewritten preamble');

    const inOrder = new RecordOpener(key, id);
    assert.ok(inOrder.openHello(pre, h.head, Buffer.from(h.sealed)));
    records.forEach((r, i) => assert.ok(inOrder.open(r.head, Buffer.from(r.sealed)).equals(payloads[i])));

    const skipped = new RecordOpener(key, id);
    assert.ok(skipped.openHello(pre, h.head, Buffer.from(h.sealed)));
    assert.throws(() => skipped.open(records[1].head, Buffer.from(records[1].sealed)), 'a record out of its place');

    const tampered = new RecordOpener(key, id);
    assert.ok(tampered.openHello(pre, h.head, Buffer.from(h.sealed)));
    const bad = Buffer.from(records[0].sealed);
    bad[2] ^= 0x40;
    assert.throws(() => tampered.open(records[0].head, bad), 'a flipped bit');
  });

  it(`seals as Node's ChaCha20-Poly1305 does (here through ${aeadImplementation()})`, () => {
    const key = randomBytes(32);
    const nonce = randomBytes(12);
    const aad = randomBytes(9);
    const plain = randomBytes(70_000);
    const data = Buffer.from(plain);
    const tag = sealInPlace(key, nonce, aad, data);
    const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    c.setAAD(aad, { plaintextLength: plain.length });
    const expected = Buffer.concat([c.update(plain), c.final()]);
    assert.ok(data.equals(expected));
    assert.ok(tag.equals(c.getAuthTag()));
    openInPlace(key, nonce, aad, data, tag);
    assert.ok(data.equals(plain));
  });
});
