// Drives an endpoint fixture process (test/fixtures/endpoint.ts) running inside a network namespace.
import { ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import type { EndpointConfig, EndpointStatus } from '../fixtures/endpoint';

const FIXTURE = join(__dirname, '..', 'fixtures', 'endpoint.js');

interface Reply {
  id?: number;
  ok?: boolean;
  error?: string;
  status?: EndpointStatus;
  event?: string;
  fd?: number;
  extras?: Record<string, number>;
}

const live = new Set<Endpoint>();

export class Endpoint {
  readonly proc: ChildProcess;
  readonly pid: number;
  private nextId = 1;
  private waiters = new Map<number, (r: Reply) => void>();
  private events: Reply[] = [];
  private eventWaiters: Array<() => void> = [];
  private stderr = '';
  connectedFd = -1;

  private constructor(netns: string, cfg: EndpointConfig) {
    this.proc = spawn('ip', ['netns', 'exec', netns, process.execPath, FIXTURE, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.pid = this.proc.pid as number;
    live.add(this);
    this.proc.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    createInterface({ input: this.proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const r = JSON.parse(line) as Reply;
      if (r.id !== undefined) {
        this.waiters.get(r.id)?.(r);
        this.waiters.delete(r.id);
      } else {
        if (r.event === 'connected') this.connectedFd = r.fd ?? -1;
        this.events.push(r);
        for (const w of this.eventWaiters.splice(0)) w();
      }
    });
    this.proc.on('exit', () => {
      live.delete(this);
      for (const w of this.eventWaiters.splice(0)) w();
    });
  }

  static async start(netns: string, cfg: EndpointConfig): Promise<Endpoint> {
    const e = new Endpoint(netns, cfg);
    await e.waitEvent('ready', 10_000);
    return e;
  }

  async waitEvent(name: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.events.some((e) => e.event === name)) return;
      const err = this.events.find((e) => e.event === 'error');
      if (err) throw new Error(`endpoint ${this.pid}: ${err.error}`);
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) throw new Error(`endpoint ${this.pid} exited: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`endpoint ${this.pid}: no '${name}' within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.eventWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async command(cmd: string, extra: Record<string, unknown> = {}): Promise<EndpointStatus> {
    return (await this.request(cmd, extra)).status as EndpointStatus;
  }

  /** Opens sockets of other kinds in the endpoint process; returns their fds by kind. */
  async extras(synTo?: string): Promise<Record<string, number>> {
    return (await this.request('extras', { synTo })).extras ?? {};
  }

  private async request(cmd: string, extra: Record<string, unknown>): Promise<Reply> {
    const id = this.nextId++;
    const reply = new Promise<Reply>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`endpoint ${this.pid}: '${cmd}' timed out; stderr: ${this.stderr}`)), 10_000);
      this.waiters.set(id, (r) => {
        clearTimeout(t);
        resolve(r);
      });
    });
    this.proc.stdin?.write(`${JSON.stringify({ id, cmd, ...extra })}\n`);
    const r = await reply;
    if (!r.ok || !r.status) throw new Error(`endpoint ${this.pid}: '${cmd}' failed: ${r.error}`);
    return r;
  }

  status(): Promise<EndpointStatus> {
    return this.command('status');
  }

  /** Polls status until `pred` holds; returns the last status. */
  async until(pred: (s: EndpointStatus) => boolean, timeoutMs: number, what: string): Promise<EndpointStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.status();
      if (pred(s)) return s;
      if (Date.now() > deadline) throw new Error(`endpoint ${this.pid}: timed out waiting for ${what}: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Waits until the endpoint's counters stop moving for `quietMs`. */
  async settle(quietMs: number, timeoutMs: number): Promise<EndpointStatus> {
    const deadline = Date.now() + timeoutMs;
    let last = await this.status();
    let since = Date.now();
    for (;;) {
      await new Promise((r) => setTimeout(r, 20));
      const s = await this.status();
      if (s.sent !== last.sent || s.received !== last.received) {
        last = s;
        since = Date.now();
      } else if (Date.now() - since >= quietMs) return s;
      if (Date.now() > deadline) return s;
    }
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) process.kill(this.pid, 'SIGKILL');
  }

  async exited(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    await new Promise((r) => this.proc.once('exit', r));
  }
}

/** Kills every endpoint process still running (by pid): the tests' cleanup net. */
export async function killAllEndpoints(): Promise<void> {
  const all = [...live];
  for (const e of all) e.kill();
  await Promise.all(all.map((e) => e.exited()));
}
