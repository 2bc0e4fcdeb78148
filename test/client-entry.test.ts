// The client library is an entry point of its own: a program that imports it (to call a daemon, to
// migrate) loads no native code, neither the daemon's ffi-rs bindings nor the data path's optional
// libsodium addon. Checked in a fresh Node process, from what it has loaded after the import.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

describe('client entry point', function () {
  it('importing the client library loads no native addon and no daemon module', function () {
    const entry = path.join(__dirname, '..', 'client', 'index.js');
    const script = `require(${JSON.stringify(entry)}); console.log(JSON.stringify(Object.keys(require.cache)));`;
    const loaded = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 })) as string[];
    assert.ok(
      loaded.some((f) => f.endsWith(path.join('client', 'migrate.js'))),
      'the check sees what the import loaded',
    );
    assert.deepEqual(
      loaded.filter((f) => f.endsWith('.node')),
      [],
      'no native addon',
    );
    assert.deepEqual(
      loaded.filter((f) => /[\\/](ffi-rs|sodium-native)[\\/]/.test(f)),
      [],
      'neither ffi-rs nor sodium-native',
    );
    assert.deepEqual(
      loaded.filter((f) => f.includes(`${path.sep}dist${path.sep}daemon${path.sep}`) || f.includes(`${path.sep}dist${path.sep}receiver${path.sep}`)),
      [],
      'no daemon or receiver module',
    );
  });
});
