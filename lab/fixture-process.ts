// The harness both fixture drivers (endpoint.ts, multi.ts) share: a fixture script (test/fixtures/*.js)
// run inside a network namespace through `ip netns exec`, which takes commands as JSON lines with ids
// on stdin and answers them, and emits events (lines without an id), on stdout
// (lab/fixtures/common.ts is its other side). Every process started is kept in one registry, so that
// the tests' cleanup can kill what is left by pid.
import { ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A line a fixture writes: a reply (with the id of its command) or an event (without). */
export interface FixtureReply<S> {
  id?: number;
  ok?: boolean;
  error?: string;
  status?: S;
  event?: string;
}

/** What the registry needs of a process. */
export interface Running {
  kill(): void;
  exited(): Promise<void>;
}

const live = new Set<Running>();

export abstract class FixtureProcess<S extends object, R extends FixtureReply<S>> {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Every event the fixture emitted so far, in order. */
  readonly events: R[] = [];
  stderr = '';
  private nextId = 1;
  private waiters = new Map<number, (r: R) => void>();
  private eventWaiters: Array<() => void> = [];

  /**
   * Starts `script` with `arg` (as JSON) in `netns`; `pollMs` paces until() and settle().
   * `ip netns exec` execs node in place: the pid is the fixture's own.
   */
  protected constructor(
    script: string,
    netns: string,
    arg: unknown,
    private readonly pollMs: number,
  ) {
    this.proc = spawn('ip', ['netns', 'exec', netns, process.execPath, script, JSON.stringify(arg)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.pid = this.proc.pid as number;
    live.add(this);
    this.proc.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    createInterface({ input: this.proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      let r: R;
      try {
        r = JSON.parse(line) as R;
      } catch {
        this.stderr += `(stdout) ${line}\n`;
        return;
      }
      if (r.id !== undefined) {
        this.waiters.get(r.id)?.(r);
        this.waiters.delete(r.id);
      } else {
        this.onEvent(r);
        this.events.push(r);
        for (const w of this.eventWaiters.splice(0)) w();
      }
    });
    this.proc.on('exit', () => {
      live.delete(this);
      for (const w of this.eventWaiters.splice(0)) w();
    });
  }

  /** How messages name this process ("endpoint 1234"). */
  protected abstract get label(): string;

  /** What until() reports of the last status when it times out. */
  protected abstract describe(s: S): string;

  /** The counters settle() watches: it waits until they stop moving. */
  protected abstract progress(s: S): { sent: number; received: number };

  /** Called with each event before it is recorded. */
  protected onEvent(_r: R): void {
    // nothing here: a driver that tracks state from events overrides it
  }

  protected get hasExited(): boolean {
    return this.proc.exitCode !== null || this.proc.signalCode !== null;
  }

  /**
   * Waits for an event and returns it; fails at once on an event named in `failOn` (reported through
   * `failure`), or if the process ends.
   */
  protected async nextEvent(name: string, timeoutMs: number, failOn: string[], failure: (bad: R) => string): Promise<R> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.events.find((e) => e.event === name);
      if (hit) return hit;
      const bad = this.events.find((e) => failOn.includes(e.event ?? ''));
      if (bad) throw new Error(`${this.label}: ${failure(bad)}`);
      if (this.hasExited) throw new Error(`${this.label} exited: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`${this.label}: no '${name}' within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.eventWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Sends one command and waits (10 s at most) for its reply, which must be ok and carry a status. */
  protected async request(cmd: string, extra: Record<string, unknown>): Promise<R> {
    if (this.hasExited) throw new Error(`${this.label}: '${cmd}' to a process that exited: ${this.stderr}`);
    const id = this.nextId++;
    const reply = new Promise<R>((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters.delete(id);
        reject(new Error(`${this.label}: '${cmd}' timed out; stderr: ${this.stderr}`));
      }, 10_000);
      this.waiters.set(id, (r) => {
        clearTimeout(t);
        resolve(r);
      });
    });
    this.proc.stdin?.write(`${JSON.stringify({ id, cmd, ...extra })}\n`);
    const r = await reply;
    if (!r.ok || !r.status) throw new Error(`${this.label}: '${cmd}' failed: ${r.error ?? 'a reply without a status'}`);
    return r;
  }

  async status(): Promise<S> {
    return (await this.request('status', {})).status as S;
  }

  /** Polls status until `pred` holds; returns the last status. */
  async until(pred: (s: S) => boolean, timeoutMs: number, what: string): Promise<S> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.status();
      if (pred(s)) return s;
      if (Date.now() > deadline) throw new Error(`${this.label}: timed out waiting for ${what}: ${this.describe(s)}`);
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
  }

  /** Waits until the counters stop moving for `quietMs` (or `timeoutMs` passes); returns the last status. */
  async settle(quietMs: number, timeoutMs: number): Promise<S> {
    const deadline = Date.now() + timeoutMs;
    let last = this.progress(await this.status());
    let since = Date.now();
    for (;;) {
      await new Promise((r) => setTimeout(r, this.pollMs));
      const s = await this.status();
      const now = this.progress(s);
      if (now.sent !== last.sent || now.received !== last.received) {
        last = now;
        since = Date.now();
      } else if (Date.now() - since >= quietMs) return s;
      if (Date.now() > deadline) return s;
    }
  }

  kill(): void {
    if (!this.hasExited) process.kill(this.pid, 'SIGKILL');
  }

  async exited(): Promise<void> {
    if (this.hasExited) return;
    await new Promise((r) => this.proc.once('exit', r));
  }
}

/** Kills every fixture process still running that `which` picks (by pid) and waits for them to end. */
export async function killAllFixtures(which: (p: Running) => boolean): Promise<void> {
  const all = [...live].filter(which);
  for (const p of all) p.kill();
  await Promise.all(all.map((p) => p.exited()));
}
