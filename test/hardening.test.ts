// The daemon's edges against a caller or a local user who would use it to get further (issue 12), on
// real daemons and real processes: the state directory only root can change, its files never opened
// through a symbolic link.
import { strict as assert } from 'node:assert';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DaemonProcess, cleanupDaemons, daemonLogs } from '../lab/daemon';
import { JOURNAL_FILE } from '../daemon/custody/journal';
import { NOBODY } from './support/other-user';

async function expectRefusedAtStart(args: string[], message: RegExp): Promise<void> {
  await assert.rejects(DaemonProcess.start(args), (err: Error) => {
    assert.match(err.message, /exited at start/);
    assert.match(err.message, message);
    return true;
  });
}

describe('hardening', function () {
  this.timeout(120_000);
  let tmp: string;

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'soccrt-hard-'));
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(`${daemonLogs()}\n`);
    await cleanupDaemons();
  });

  after(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  describe('--state-dir', function () {
    it('refuses a directory owned by another user, writable by group or others, or under a directory another user owns', async () => {
      const byNobody = join(tmp, 'by-nobody');
      mkdirSync(byNobody, { mode: 0o700 });
      chownSync(byNobody, NOBODY, NOBODY);
      await expectRefusedAtStart(['--state-dir', byNobody], /--state-dir .*by-nobody is owned by uid 65534.*chown root/);

      const groupWritable = join(tmp, 'group-writable');
      mkdirSync(groupWritable);
      chmodSync(groupWritable, 0o770);
      await expectRefusedAtStart(['--state-dir', groupWritable], /--state-dir .*group-writable is writable by its group \(mode 770\).*chmod go-w/);

      const worldWritable = join(tmp, 'world-writable');
      mkdirSync(worldWritable);
      chmodSync(worldWritable, 0o703);
      await expectRefusedAtStart(['--state-dir', worldWritable], /is writable by others \(mode 703\)/);

      // Root's own directory, but in one that uid 65534 owns: that user could rename it away and put
      // its own in its place.
      const inside = join(byNobody, 'state');
      mkdirSync(inside, { mode: 0o700 });
      await expectRefusedAtStart(['--state-dir', inside], /--state-dir .*by-nobody\/state: its parent .*by-nobody is owned by uid 65534/);

      // Refused before anything was written there.
      for (const dir of [byNobody, groupWritable, worldWritable, inside]) assert.throws(() => readFileSync(join(dir, JOURNAL_FILE)), /ENOENT/);
    });

    it('does not follow a symbolic link planted for its journal or its instance id', async () => {
      const victim = join(tmp, 'victim');
      writeFileSync(victim, 'precious\n');
      for (const name of [JOURNAL_FILE, 'journal.owner', 'instance-id']) {
        const dir = join(tmp, `link-${name}`);
        mkdirSync(dir, { mode: 0o700 });
        symlinkSync(victim, join(dir, name));
        await expectRefusedAtStart(['--state-dir', dir], new RegExp(`${name.replace('.', '\\.')} is a symbolic link`));
        assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
      }
    });

    it('starts on a root-owned 0700 directory under a sticky /tmp', async () => {
      const dir = join(tmp, 'good');
      mkdirSync(dir, { mode: 0o700 });
      const d = await DaemonProcess.start(['--state-dir', dir]);
      assert.match(readFileSync(join(dir, 'daemon.json'), 'utf8'), new RegExp(`"pid":${d.pid}`));
    });
  });
});
