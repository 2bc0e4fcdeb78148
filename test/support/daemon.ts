// Runs a real soccrd as a separate process for the tests, on its own Unix socket and state directory.
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';

const MAIN = join(__dirname, '..', '..', 'daemon', 'main.js');

const running = new Set<DaemonProcess>();

export class DaemonProcess {
  readonly dir: string;
  readonly socketPath: string;
  readonly address: string;
  proc!: ChildProcess;
  output = '';

  private constructor(readonly extraArgs: string[]) {
    this.dir = mkdtempSync(join(tmpdir(), 'soccrt-d'));
    this.socketPath = join(this.dir, 'soccrd.sock');
    this.address = `unix://${this.socketPath}`;
  }

  /** Starts soccrd and waits until it answers health checks. */
  static async start(extraArgs: string[] = []): Promise<DaemonProcess> {
    const d = new DaemonProcess(extraArgs);
    running.add(d);
    await d.spawn();
    return d;
  }

  private async spawn(): Promise<void> {
    this.proc = spawn(process.execPath, [MAIN, '--listen', this.address, '--state-dir', join(this.dir, 'state'), '--log-level', 'debug', ...this.extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.proc.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (this.proc.exitCode !== null) throw new Error(`soccrd exited at start: ${this.output}`);
      if (await this.healthy()) return;
      if (Date.now() > deadline) throw new Error(`soccrd not serving within 15 s: ${this.output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private healthy(): Promise<boolean> {
    return new Promise((resolve) => {
      const client = new grpc.Client(this.address, grpc.credentials.createInsecure());
      client.waitForReady(Date.now() + 300, (err) => {
        client.close();
        resolve(!err);
      });
    });
  }

  get pid(): number {
    return this.proc.pid as number;
  }

  /** SIGTERM, then waits for the exit; returns the exit code. */
  async stop(): Promise<number | null> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.proc.exitCode;
    const exited = new Promise<number | null>((r) => this.proc.once('exit', (code) => r(code)));
    process.kill(this.pid, 'SIGTERM');
    const t = setTimeout(() => this.kill(), 15_000);
    const code = await exited;
    clearTimeout(t);
    return code;
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) process.kill(this.pid, 'SIGKILL');
  }

  async cleanup(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      this.kill();
      await exited;
    }
    running.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function cleanupDaemons(): Promise<void> {
  for (const d of [...running]) await d.cleanup();
}
