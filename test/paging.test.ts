// Paging (AIP-158) against a running soccrd: a session of 2100 real connections comes in pages of at
// most 1000 from every call but a GetSession that asks for another size, GetSession pages through all of
// them exactly once, ListSockets and ListSessions page too, and tokens that are not the daemon's, or are
// for another session, list or pid, are refused with INVALID_ARGUMENT. Real kernel and processes: a
// server in host A of the lab's LAN with 2100 connections from clients in C, a soccrd in A.
import { strict as assert } from 'node:assert';
import * as grpc from '@grpc/grpc-js';
import { SoccrClient } from '../client/client';
import { SessionState } from '../protocol/messages';
import { DaemonProcess, cleanupDaemons, expectStatus } from '../lab/daemon';
import { Lan, SERVICE_V4, destroyLans, leftoverLanNamespaces } from '../lab/lan';
import { MultiFixture, killAllMulti } from '../lab/multi';
import { socketPath } from '../lab/scenario';

const PORT = 5400;
const COUNT = 2100;

describe('paging: a session of 2100 connections, its sockets and the list of sessions', function () {
  this.timeout(240_000);
  let lan: Lan | undefined;
  let daemon: DaemonProcess | undefined;
  let client: SoccrClient | undefined;
  let server: MultiFixture | undefined;
  let sessionId = '';

  before(async () => {
    lan = Lan.create();
    daemon = await DaemonProcess.start({ netns: lan.ns.A });
    client = new SoccrClient(daemon.address, { timeoutMs: 60_000 });
    server = await MultiFixture.start(lan.ns.A, { mode: 'serve', ip: SERVICE_V4, port: PORT, count: COUNT, reading: true });
    const clients = await MultiFixture.start(lan.ns.C, { mode: 'clients', ip: SERVICE_V4, port: PORT, count: COUNT, connectTimeoutMs: 60_000 });
    await Promise.all([server.waitConnected(90_000), clients.waitConnected(90_000)]);
  });

  after(async () => {
    if (client && sessionId) await client.resume(sessionId).catch(() => undefined);
    client?.close();
    await killAllMulti();
    await cleanupDaemons();
    destroyLans();
    assert.deepEqual(leftoverLanNamespaces(), []);
  });

  it('ListSockets pages in fd order; the client library gathers every page', async () => {
    const c = client as SoccrClient;
    const pid = (server as MultiFixture).pid;
    const all = await c.listSockets(pid);
    assert.equal(all.filter((s) => s.remote?.port !== 0).length, COUNT, 'every connection');
    const fds = all.map((s) => s.fd);
    assert.deepEqual(
      fds,
      [...new Set(fds)].sort((a, b) => a - b),
      'each fd once, in order',
    );
    // The raw call: a first page of the default 1000 and a token; a token for another pid is refused.
    const raw = c as unknown as { unary: (m: string, req: object) => Promise<{ sockets: unknown[]; nextPageToken: string }> };
    const first = await raw.unary('ListSockets', { pid });
    assert.equal(first.sockets.length, 1000);
    assert.notEqual(first.nextPageToken, '');
    await expectStatus(raw.unary('ListSockets', { pid: process.pid, pageToken: first.nextPageToken }), grpc.status.INVALID_ARGUMENT, 'token of another pid');
    await expectStatus(raw.unary('ListSockets', { pid, pageSize: -1 }), grpc.status.INVALID_ARGUMENT, 'negative page size');
  });

  it('a session of 2100 connections: 1000 in each answer, GetSession pages through every one exactly once', async () => {
    const c = client as SoccrClient;
    const ck = await c.checkpointToFile((server as MultiFixture).pid, { all: true }, socketPath('paging'));
    sessionId = ck.header.sessionId;
    assert.equal(ck.header.connectionCount, COUNT);

    const first = await c.getSessionPage(sessionId);
    assert.equal(first.state, SessionState.FROZEN);
    assert.deepEqual([first.connections.length, first.connectionCount], [1000, COUNT]);
    assert.notEqual(first.nextConnectionsPageToken, '');
    assert.equal(first.queueBytes, ck.queueBytes, 'the queue bytes of every connection, not only the page');

    const ids: string[] = [];
    let token = '';
    let pages = 0;
    do {
      const page = await c.getSessionPage(sessionId, { pageSize: 800, pageToken: token });
      assert.ok(page.connections.length <= 800);
      ids.push(...page.connections.map((x) => x.id));
      token = page.nextConnectionsPageToken;
      pages++;
    } while (token !== '' && pages < 10);
    assert.equal(pages, 3, '800 + 800 + 500');
    assert.equal(new Set(ids).size, COUNT, 'every connection exactly once');

    const whole = await c.getSession(sessionId);
    assert.deepEqual(
      whole.connections.map((x) => x.id),
      ids,
      'the client library gathers the pages in order',
    );
    assert.equal(whole.nextConnectionsPageToken, '');

    // Every other call answers with the first page and the totals.
    const renewed = await c.renewLease(sessionId);
    assert.deepEqual([renewed.connections.length, renewed.connectionCount], [1000, COUNT]);
    const listed = await c.listSessions();
    assert.deepEqual(
      listed.map((s) => [s.sessionId, s.connections.length, s.connectionCount]),
      [[sessionId, 1000, COUNT]],
    );

    // Tokens: garbage, another session's, another list's.
    await expectStatus(c.getSessionPage(sessionId, { pageToken: 'not-a-token' }), grpc.status.INVALID_ARGUMENT, 'garbage token');
    await expectStatus(c.getSessionPage(sessionId, { pageSize: -5 }), grpc.status.INVALID_ARGUMENT, 'negative page size');
    const raw = c as unknown as { unary: (m: string, req: object) => Promise<{ sessions: unknown[]; nextPageToken: string }> };
    await expectStatus(
      raw.unary('ListSessions', { pageToken: first.nextConnectionsPageToken }),
      grpc.status.INVALID_ARGUMENT,
      "a session's token for the list",
    );

    const resumed = await c.resume(sessionId);
    assert.equal(resumed.state, SessionState.RESUMED);
    sessionId = '';
  });

  it('ListSessions pages oldest first, one session a page when asked', async () => {
    const c = client as SoccrClient;
    const pid = (server as MultiFixture).pid;
    // Two more (small) sessions: the 2100-connection one ended above and is still listed.
    const a = await c.checkpointToFile(pid, { fds: [(await c.listSockets(pid)).find((s) => s.remote?.port !== 0)?.fd ?? -1] }, socketPath('paging-a'));
    await c.resume(a.header.sessionId);
    const raw = c as unknown as { unary: (m: string, req: object) => Promise<{ sessions: Array<{ sessionId: string }>; nextPageToken: string }> };
    const seen: string[] = [];
    let token = '';
    for (let n = 0; n < 10; n++) {
      const page = await raw.unary('ListSessions', { pageSize: 1, pageToken: token });
      assert.equal(page.sessions.length, 1);
      seen.push(page.sessions[0].sessionId);
      token = page.nextPageToken;
      if (token === '') break;
    }
    const all = (await c.listSessions()).map((s) => s.sessionId);
    assert.equal(all.length, 2);
    assert.deepEqual(seen, all);
  });
});
