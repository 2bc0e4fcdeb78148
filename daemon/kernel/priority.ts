// Scheduling priority for the few milliseconds a process is stopped: on a busy machine, a runnable
// thread at the default nice value waits its turn behind every other one, and while an owner is stopped
// that wait is the peers' downtime. So the thread that ends a freeze, and the owner's main thread while
// it is being stopped (it has to run to stop), are raised to nice -20 for that long, then put back.
import * as os from 'node:os';

/** The highest priority (lowest nice value) a thread can have. */
const NICE_MIN = -20;

/**
 * Raises thread `tid` (0: the calling thread; a process's pid: its main thread) to nice -20 and returns
 * what puts it back as it was. Best effort: without CAP_SYS_NICE, or once the thread is gone, nothing
 * changes and the restore does nothing.
 */
export function boostThread(tid: number): () => void {
  let before: number;
  try {
    before = os.getPriority(tid);
    if (before === NICE_MIN) return () => undefined;
    os.setPriority(tid, NICE_MIN);
  } catch {
    return () => undefined;
  }
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    try {
      os.setPriority(tid, before);
    } catch {
      // the thread is gone
    }
  };
}
