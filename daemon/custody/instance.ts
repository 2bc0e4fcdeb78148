// The daemon instance's identity: a random id kept in its state directory, the same across restarts on
// that directory and different for every other one. It names the instance's nftables lock table and
// marks the tables the instance created as its own (netlock.ts), so that daemons side by side, each on
// its own --state-dir, never touch each other's tables, and a restarted one finds its own again.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import { openStateFile, readStateFile } from './state-dir';

const INSTANCE_FILE = 'instance-id';

export interface DaemonInstance {
  /** 12 hex digits */
  id: string;
  /** for messages: where the instance keeps its state */
  stateDir: string;
}

const INSTANCE_ID = /^[0-9a-f]{12}$/;

/** The instance id kept in `stateDir`, or undefined when there is none yet. */
export function readInstanceId(stateDir: string): string | undefined {
  const file = path.join(stateDir, INSTANCE_FILE);
  const id = readStateFile(file)?.trim();
  if (id === undefined) return undefined;
  if (!INSTANCE_ID.test(id)) {
    throw new Error(`${file} holds no instance id (12 hex digits); remove it only if no lock table of this daemon is left (nft list tables)`);
  }
  return id;
}

/**
 * The instance whose state is in `stateDir`: its id is made (written whole, then renamed) the first
 * time. The directory itself is not synced: a power cut that loses the id also took the tables.
 */
export function instanceOf(stateDir: string): DaemonInstance {
  const existing = readInstanceId(stateDir);
  if (existing) return { id: existing, stateDir };
  const id = randomBytes(6).toString('hex');
  const file = path.join(stateDir, INSTANCE_FILE);
  const partial = `${file}.new`;
  const fd = openStateFile(partial, 'write');
  try {
    writeSync(fd, `${id}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(partial, file);
  return { id, stateDir };
}
