// Run by `npm test` before the suite: the tests need root, a few Debian packages and a kernel with TCP
// repair mode. Missing packages are installed with apt-get; anything else stops the run at once with
// a message naming what is missing. `npm run demo` (demo/demo.ts) calls ensureTools for the two
// commands it needs.
import { execFileSync, spawnSync } from 'node:child_process';

export interface Tool {
  command: string;
  pkg: string;
  why: string;
  /** A shell command that succeeds when the package is there (default: `command -v <command>`). */
  probe?: string;
}

/** Debian's own Python: the `python3` on PATH may be another (pyenv) that does not see Debian's modules. */
export const DEBIAN_PYTHON = '/usr/bin/python3';

export const NEEDED: Tool[] = [
  { command: 'ip', pkg: 'iproute2', why: 'network namespaces and veth links for the test hosts' },
  { command: 'nft', pkg: 'nftables', why: 'cutting links in test namespaces, and the network lock' },
  { command: 'gcc', pkg: 'gcc', why: 'the no-FFI baseline of the benchmarks' },
  { command: 'openssl', pkg: 'openssl', why: 'certificates for the mTLS tests of the daemon' },
  { command: 'systemd-analyze', pkg: 'systemd', why: 'verifying the unit files and their security exposure' },
  { command: 'zsh', pkg: 'zsh', why: "loading and running soccrctl's zsh completion" },
  { command: 'tcpdump', pkg: 'tcpdump', why: 'packet captures showing that held sockets send nothing' },
  // The Python client (clients/python/) and the Python receiver (docs/handover.md), run by test/python.test.ts.
  { command: 'protoc', pkg: 'protobuf-compiler', why: "the Python client's modules, generated from protos/ at test time" },
  { command: 'grpc_python_plugin', pkg: 'protobuf-compiler-grpc', why: "the Python client's gRPC stubs" },
  {
    command: 'google/protobuf/any.proto',
    pkg: 'libprotobuf-dev',
    why: 'the well-known protos google/rpc/status.proto imports',
    probe: 'test -f /usr/include/google/protobuf/any.proto',
  },
  { command: 'python3 grpc', pkg: 'python3-grpcio', why: 'the Python client', probe: `${DEBIAN_PYTHON} -c 'import grpc'` },
  { command: 'python3 protobuf', pkg: 'python3-protobuf', why: 'the Python client', probe: `${DEBIAN_PYTHON} -c 'import google.protobuf'` },
];

/** What stops a run: its message says what is missing and what to do. */
export class PreflightError extends Error {}

function has(tool: Tool): boolean {
  return spawnSync('sh', ['-c', tool.probe ?? `command -v ${tool.command}`], { stdio: 'ignore' }).status === 0;
}

/** Throws unless this is Linux and we are root. */
export function requireRoot(): void {
  if (process.platform !== 'linux') throw new PreflightError('soccrd needs Linux (TCP repair mode)');
  if (process.getuid?.() !== 0)
    throw new PreflightError('root is needed (CAP_NET_ADMIN for TCP_REPAIR and namespaces, CAP_SYS_PTRACE for pidfd_getfd): run as root');
}

/**
 * Installs with apt-get (progress on `log`, apt's own output on stdio) the packages of the tools not
 * found, then checks that `ip netns` works; throws a PreflightError otherwise.
 */
export function ensureTools(tools: Tool[], log: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): void {
  const missing = tools.filter((n) => !has(n));
  if (missing.length > 0) {
    const pkgs = missing.map((m) => m.pkg);
    log(`preflight: installing ${pkgs.join(', ')} (${missing.map((m) => `${m.command}: ${m.why}`).join('; ')})`);
    if (!has({ command: 'apt-get', pkg: 'apt', why: '' })) throw new PreflightError(`missing ${pkgs.join(', ')} and no apt-get to install them`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    try {
      execFileSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
      execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env });
    } catch {
      throw new PreflightError(`could not install ${pkgs.join(', ')} with apt-get; install them and run again`);
    }
    const still = missing.filter((m) => !has(m));
    if (still.length > 0) throw new PreflightError(`still missing after apt-get: ${still.map((m) => `${m.command} (package ${m.pkg})`).join(', ')}`);
  }
  const probe = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (probe.status !== 0) throw new PreflightError(`'ip netns' does not work here: ${probe.error?.message ?? probe.stderr.trim()}`);
}

if (require.main === module) {
  try {
    requireRoot();
    ensureTools(NEEDED);
  } catch (err) {
    process.stderr.write(`preflight: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
