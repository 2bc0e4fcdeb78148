// Thawing a source: the connections a checkpoint froze go on at their owner. One order wherever a source
// is given back (Resume, Abort, an ended lease, shutdown, a checkpoint that failed, recovery at start):
// the network lock is lifted first, so that the window probe that turning repair mode off sends reaches
// the peer; then repair mode goes off on every socket (each tried whatever happens to the others, with
// the user's SO_REUSEADDR back); then our copies are closed; then the owner is continued, if the daemon
// stopped it. What is journaled, and when, is the caller's.
import type { ProcessHandle } from '../repair/acquire';
import { FrozenSocket, resumeAll, silentCloseAll } from '../repair/engine';
import type { SoccrError } from '../../protocol/errors';

export interface FrozenSource {
  /** our copies of the owner's sockets, in repair mode; fd -1: let go already. Each is let go (fd -1). */
  sockets: readonly FrozenSocket[];
  /** lifts the network lock held for the connections */
  unlock?: () => void;
  /** the owner, when the daemon stopped it: continued, and its handle closed */
  stoppedOwner?: ProcessHandle;
}

export interface Thawed {
  /** per socket of `sockets`: what kept it from resuming, or undefined */
  errors: Array<SoccrError | undefined>;
  /** the stopped owner was continued (false: there was none, or it is gone) */
  ownerContinued: boolean;
}

/** Gives a frozen source back to its owner, in the order above. */
export function thawSource(src: FrozenSource): Thawed {
  src.unlock?.();
  const isHeld = src.sockets.map((s) => s.fd >= 0);
  const held = src.sockets.filter((_, i) => isHeld[i]);
  // All of them in one batch of kernel calls each way.
  const heldErrors = resumeAll(held);
  silentCloseAll(held);
  for (const s of held) s.fd = -1;
  let ownerContinued = false;
  if (src.stoppedOwner) {
    ownerContinued = src.stoppedOwner.cont();
    src.stoppedOwner.close();
  }
  let next = 0;
  return { errors: isHeld.map((h) => (h ? heldErrors[next++] : undefined)), ownerContinued };
}
