// The npm package as a user gets it: `npm pack` (its prepack build) makes the tarball, `npm install -g`
// puts it under a temporary prefix (dependencies from npm's cache where it has them, else the registry;
// the native batch library built there by the install script), and then its programs run, its daemon
// serves, and its client library resolves, with its types, from a scratch TypeScript project.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DaemonProcess } from '../lab/daemon';

const ROOT = path.resolve(__dirname, '..', '..');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** npm's own lifecycle variables (set when the suite runs under `npm test`) are not for the npm it runs. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(npm_lifecycle_|npm_package_|INIT_CWD$)/.test(k)) env[k] = v;
  return { ...env, ...extra };
}

function run(cmd: string, args: string[], opts: { cwd?: string; timeoutMs: number }): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: opts.cwd, env: cleanEnv(), timeout: opts.timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr: stderr + (err && typeof err.code !== 'number' ? `\n${err.message}` : '') });
    });
  });
}

describe('the npm package, installed from its tarball', function () {
  this.timeout(15 * 60_000);
  let tmp: string;
  let tarball: string;
  let files: string[];
  let prefix: string;
  let pkgDir: string;
  let daemon: DaemonProcess | undefined;

  before(async function () {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'soccrt-pkg-'));
    const packed = await run('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: ROOT, timeoutMs: 6 * 60_000 });
    assert.equal(packed.code, 0, packed.stderr);
    // npm pack --json prints the prepack build's lines first, then the JSON array
    const doc = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('\n[') + 1)) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarball = path.join(tmp, doc[0].filename);
    files = doc[0].files.map((f) => f.path);
    prefix = path.join(tmp, 'prefix');
    const installed = await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], {
      cwd: tmp,
      timeoutMs: 6 * 60_000,
    });
    assert.equal(installed.code, 0, installed.stderr);
    pkgDir = path.join(prefix, 'lib', 'node_modules', 'soccrd');
  });

  after(async function () {
    await daemon?.cleanup();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('holds what a user needs and nothing of the tests, benchmarks, demo or lab', function () {
    for (const f of [
      'package.json',
      'README.md',
      'dist/daemon/main.js',
      'dist/client/soccrctl.js',
      'dist/client/index.js',
      'dist/client/index.d.ts',
      'dist/receiver/receiver.js',
      'dist/receiver/receiver.d.ts',
      'protos/soccr/v1/soccr.proto',
      'native/build.js',
      'native/soccr_batch.c',
      'systemd/soccrd.service',
    ]) {
      assert.ok(files.includes(f), `the tarball lacks ${f}`);
    }
    const extra = files.filter(
      (f) => /^(dist\/)?(test|bench|demo|lab)\//.test(f) || f.endsWith('.map') || /^(client|daemon|protocol|receiver)\/.*\.ts$/.test(f),
    );
    assert.deepEqual(extra, [], 'tests, benchmarks, demo, lab, sources or source maps in the tarball');
    assert.ok(!files.some((f) => f.startsWith('build/')), 'the batch library is built at install, not shipped');
  });

  it('installs its programs, which run: soccrd --help, soccrctl version without a daemon', async function () {
    const help = await run(path.join(prefix, 'bin', 'soccrd'), ['--help'], { timeoutMs: 60_000 });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /--listen/);
    const version = await run(path.join(prefix, 'bin', 'soccrctl'), ['--daemon', `unix://${path.join(tmp, 'nobody.sock')}`, 'version'], {
      timeoutMs: 60_000,
    });
    assert.equal(version.code, 78, `UNAVAILABLE: ${version.stderr}`);
    assert.match(version.stdout, /soccrctl\s+0\.\d+\.\d+[\s\S]*soccrd\s+unreachable/);
  });

  it('builds the native batch library on install where a C compiler exists, and its daemon serves with it', async function () {
    const hasCc = (await run('sh', ['-c', 'command -v "${CC:-cc}"'], { timeoutMs: 10_000 })).code === 0;
    assert.equal(existsSync(path.join(pkgDir, 'build', 'libsoccr_batch.so')), hasCc, hasCc ? 'cc is here: the install built it' : 'no cc');
    daemon = await DaemonProcess.start({ main: path.join(pkgDir, 'dist', 'daemon', 'main.js') });
    const v = await run(path.join(prefix, 'bin', 'soccrctl'), ['--daemon', daemon.address, '--json', 'version'], { timeoutMs: 60_000 });
    assert.equal(v.code, 0, v.stderr);
    const doc = JSON.parse(v.stdout) as { client: string; daemon: string; features: { nativeBatch: boolean; tcpRepair: boolean } };
    assert.equal(doc.daemon, doc.client);
    assert.equal(doc.features.tcpRepair, true);
    assert.equal(doc.features.nativeBatch, hasCc);
  });

  it('exports the client library and the receiver with their types to a TypeScript project', async function () {
    const project = path.join(tmp, 'project');
    mkdirSync(path.join(project, 'node_modules'), { recursive: true });
    symlinkSync(pkgDir, path.join(project, 'node_modules', 'soccrd'));
    writeFileSync(
      path.join(project, 'main.ts'),
      [
        "import { SoccrClient, describeError, migrate, type GetVersionResponseMsg, type MigrateReport } from 'soccrd/client';",
        "import type { SocketReceiver } from 'soccrd/receiver';",
        "const client = new SoccrClient('unix:///run/soccrd/soccrd.sock', { timeoutMs: 1000 });",
        'const version: Promise<GetVersionResponseMsg> = client.getVersion();',
        'version.catch((err: unknown) => console.log(describeError(err))).finally(() => client.close());',
        'export type Uses = [typeof migrate, MigrateReport, SocketReceiver];',
        '',
      ].join('\n'),
    );
    // the types are real, not `any`: a wrong use fails the check
    writeFileSync(
      path.join(project, 'wrong.ts'),
      "import { SoccrClient } from 'soccrd/client';\nexport const n: number = new SoccrClient('x').getVersion();\n",
    );
    const tsconfig = (resolution: string): string => {
      const p = path.join(project, `tsconfig.${resolution}.json`);
      writeFileSync(
        p,
        JSON.stringify({
          compilerOptions: {
            strict: true,
            noEmit: true,
            module: resolution === 'node10' ? 'commonjs' : 'node16',
            moduleResolution: resolution,
            target: 'ES2022',
            types: ['node'],
            typeRoots: [path.join(ROOT, 'node_modules', '@types')],
          },
          files: ['main.ts', 'wrong.ts'],
        }),
      );
      return p;
    };
    // node16: through package.json "exports"; node10 (older projects): through "typesVersions". One
    // error, the wrong use's: main.ts checks, with every import resolved to its declarations.
    for (const resolution of ['node16', 'node10']) {
      const checked = await run(process.execPath, [TSC, '-p', tsconfig(resolution), '--pretty', 'false'], { cwd: project, timeoutMs: 3 * 60_000 });
      const errors = checked.stdout.split('\n').filter((l) => /error TS\d+/.test(l));
      assert.equal(errors.length, 1, `${resolution}:\n${checked.stdout}${checked.stderr}`);
      assert.match(errors[0], /^wrong\.ts\(2,14\): error TS2322: Type 'Promise<.*>' is not assignable to type 'number'/, resolution);
    }
    // and at run time: the client entry loads no native code, the receiver entry loads
    const script = [
      "const c = require('soccrd/client');",
      'const loaded = Object.keys(require.cache);',
      "require('soccrd/receiver');",
      "console.log(JSON.stringify({ client: typeof c.SoccrClient, native: loaded.filter((f) => f.endsWith('.node') || /[\\\\/]ffi-rs[\\\\/]/.test(f)), version: require('soccrd/package.json').version }));",
    ].join('\n');
    const r = await run(process.execPath, ['-e', script], { cwd: project, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { client: string; native: string[]; version: string };
    assert.deepEqual(out, { client: 'function', native: [], version: out.version });
    const internal = await run(process.execPath, ['-e', "require('soccrd/dist/daemon/main.js')"], { cwd: project, timeoutMs: 60_000 });
    assert.match(internal.stderr, /ERR_PACKAGE_PATH_NOT_EXPORTED/, 'only the exported entry points');
  });
});
