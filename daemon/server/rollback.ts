// An undo stack for a call that changes things step by step (a checkpoint takes sockets, journals, stops
// the owner, locks the network, freezes): each step, once done, registers how to undo it. On failure
// every registered undo runs, the last step's first; one that fails is logged with its error and the
// others still run. On success nothing is undone. A step's result taken over by an owner that undoes it
// itself (a session) leaves the stack with it (handedOver).

/** Where an undo's failure is written (a call's Logger is one). */
export interface RollbackLog {
  error(message: string, meta: Record<string, unknown>): unknown;
}

interface Compensation {
  what: string;
  undo: (cause: unknown) => void;
}

export class Rollback {
  private steps: Compensation[] = [];

  /** Registers how to undo the step just done; `undo` is given the failure that rolls it back. */
  push(what: string, undo: (cause: unknown) => void): void {
    this.steps.push({ what, undo });
  }

  /** Where the steps done from now on start, for handedOver. */
  mark(): number {
    return this.steps.length;
  }

  /**
   * The steps registered since `mark` were handed over to an owner that undoes them as a whole (a
   * session that took their sockets, lock and owner over): their own undos are dropped, and the owner
   * registers its own.
   */
  handedOver(mark: number): void {
    this.steps.splice(mark);
  }

  /** Success: what was done stays. */
  release(): void {
    this.steps = [];
  }

  /** Failure (`cause`): undoes every registered step, last first. */
  run(cause: unknown, log: RollbackLog): void {
    const steps = this.steps.reverse();
    this.steps = [];
    for (const s of steps) {
      try {
        s.undo(cause);
      } catch (err) {
        log.error(`rollback: ${s.what} failed`, { error: err, cause });
      }
    }
  }
}
