// Original file: protos/soccr/v1/soccr.proto


/**
 * A direct daemon-to-daemon transfer of one checkpoint stream. The orchestrator mints a random
 * transfer id and key for one migration and gives them to both daemons over their authenticated gRPC
 * channels: the destination (RestoreOptions) waits for a data connection that proves the key, the
 * source (CheckpointRequest) connects to the destination's data endpoint (GetVersionResponse) and
 * writes the frames there.
 * 
 * The data connection (TCP): "SOCCRDP1", the 16-byte transfer id, then records, each a 4-byte
 * big-endian plaintext length, the ChaCha20-Poly1305 (RFC 8439) ciphertext and its 16-byte tag. Record
 * n is sealed under `key` with the nonce of 4 zero bytes and n as a 64-bit big-endian counter, its
 * length field as additional data (record 0: the preamble and the length field), so a record cannot be
 * altered, dropped, repeated or moved unseen. Record 0 holds the transfer id; every
 * later one whole length-delimited Frames, as checkpoint files hold them (varint length, Frame), up to
 * the StreamEnd. The destination takes the first connection whose record 0 opens under the key and
 * refuses every other; a record that does not open later ends the Restore with DATA_LOSS.
 */
export interface DataTransfer {
  /**
   * Checkpoint only: the destination's data endpoint, "host:port" or "[ipv6]:port".
   */
  'endpoint'?: (string);
  /**
   * 16 random bytes naming the transfer.
   */
  'transferId'?: (Buffer | Uint8Array | string);
  /**
   * 32 random bytes: the ChaCha20-Poly1305 key of this transfer only.
   */
  'key'?: (Buffer | Uint8Array | string);
  /**
   * Checkpoint: how long connecting may take; Restore: how long to wait for the data connection and,
   * once it came, for each record. Milliseconds; 0 takes 10000.
   */
  'timeoutMs'?: (number);
}

/**
 * A direct daemon-to-daemon transfer of one checkpoint stream. The orchestrator mints a random
 * transfer id and key for one migration and gives them to both daemons over their authenticated gRPC
 * channels: the destination (RestoreOptions) waits for a data connection that proves the key, the
 * source (CheckpointRequest) connects to the destination's data endpoint (GetVersionResponse) and
 * writes the frames there.
 * 
 * The data connection (TCP): "SOCCRDP1", the 16-byte transfer id, then records, each a 4-byte
 * big-endian plaintext length, the ChaCha20-Poly1305 (RFC 8439) ciphertext and its 16-byte tag. Record
 * n is sealed under `key` with the nonce of 4 zero bytes and n as a 64-bit big-endian counter, its
 * length field as additional data (record 0: the preamble and the length field), so a record cannot be
 * altered, dropped, repeated or moved unseen. Record 0 holds the transfer id; every
 * later one whole length-delimited Frames, as checkpoint files hold them (varint length, Frame), up to
 * the StreamEnd. The destination takes the first connection whose record 0 opens under the key and
 * refuses every other; a record that does not open later ends the Restore with DATA_LOSS.
 */
export interface DataTransfer__Output {
  /**
   * Checkpoint only: the destination's data endpoint, "host:port" or "[ipv6]:port".
   */
  'endpoint': (string);
  /**
   * 16 random bytes naming the transfer.
   */
  'transferId': (Buffer);
  /**
   * 32 random bytes: the ChaCha20-Poly1305 key of this transfer only.
   */
  'key': (Buffer);
  /**
   * Checkpoint: how long connecting may take; Restore: how long to wait for the data connection and,
   * once it came, for each record. Milliseconds; 0 takes 10000.
   */
  'timeoutMs': (number);
}
