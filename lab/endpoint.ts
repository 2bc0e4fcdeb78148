// Drives an endpoint fixture process (lab/fixtures/endpoint.ts) running inside a network namespace.
import { join } from 'node:path';
import type { EndpointConfig, EndpointStatus } from './fixtures/endpoint';
import { FixtureProcess, killAllFixtures } from './fixture-process';

const FIXTURE = join(__dirname, 'fixtures', 'endpoint.js');

interface Reply {
  id?: number;
  ok?: boolean;
  error?: string;
  status?: EndpointStatus;
  event?: string;
  fd?: number;
  extras?: Record<string, number>;
  missing?: Record<string, string>;
  arrived?: boolean;
}

export class Endpoint extends FixtureProcess<EndpointStatus, Reply> {
  connectedFd = -1;

  private constructor(netns: string, cfg: EndpointConfig) {
    super(FIXTURE, netns, cfg, 20);
  }

  static async start(netns: string, cfg: EndpointConfig): Promise<Endpoint> {
    const e = new Endpoint(netns, cfg);
    await e.waitEvent('ready', 10_000);
    return e;
  }

  protected get label(): string {
    return `endpoint ${this.pid}`;
  }

  protected describe(s: EndpointStatus): string {
    return JSON.stringify(s);
  }

  protected progress(s: EndpointStatus): { sent: number; received: number } {
    return s;
  }

  protected onEvent(r: Reply): void {
    if (r.event === 'connected') this.connectedFd = r.fd ?? -1;
  }

  async waitEvent(name: string, timeoutMs: number): Promise<void> {
    await this.nextEvent(name, timeoutMs, ['error'], (err) => err.error ?? 'an error event without a message');
  }

  async command(cmd: string, extra: Record<string, unknown> = {}): Promise<EndpointStatus> {
    return (await this.request(cmd, extra)).status as EndpointStatus;
  }

  /**
   * Opens connections repair mode cannot carry (MPTCP, TCP-MD5, kernel TLS), each with itself over
   * 127.0.0.1: their fds by kind (`kind` and `kindPeer`), and why a kind this kernel cannot make is missing.
   */
  async uncarriable(): Promise<{ fds: Record<string, number>; missing: Record<string, string> }> {
    const r = await this.request('uncarriable', {});
    return { fds: r.extras ?? {}, missing: r.missing ?? {} };
  }

  /** Whether a byte written on fd `from` of the endpoint arrives on its fd `to`. */
  async roundtrip(from: number, to: number): Promise<boolean> {
    return (await this.request('roundtrip', { from, to })).arrived === true;
  }

  /** Opens sockets of other kinds in the endpoint process; returns their fds by kind. */
  async extras(synTo?: string): Promise<Record<string, number>> {
    return (await this.request('extras', { synTo })).extras ?? {};
  }
}

/** Kills every endpoint process still running (by pid): the tests' cleanup net. */
export async function killAllEndpoints(): Promise<void> {
  await killAllFixtures((p) => p instanceof Endpoint);
}
