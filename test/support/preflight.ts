// Run by `npm test` before the suite: the tests need root, a few Debian packages and a kernel with TCP
// repair mode. Missing packages are installed with apt-get; anything else stops the run at once with
// a message naming what is missing.
import { execFileSync, spawnSync } from 'node:child_process';

const NEEDED: Array<{ command: string; pkg: string; why: string }> = [
  { command: 'ip', pkg: 'iproute2', why: 'network namespaces and veth links for the test hosts' },
  { command: 'nft', pkg: 'nftables', why: 'cutting links in test namespaces, and the network lock' },
  { command: 'gcc', pkg: 'gcc', why: 'the no-FFI baseline of the benchmarks' },
  { command: 'openssl', pkg: 'openssl', why: 'certificates for the mTLS tests of the daemon' },
  { command: 'systemd-analyze', pkg: 'systemd', why: 'verifying the unit files and their security exposure' },
];

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

function fail(msg: string): never {
  process.stderr.write(`preflight: ${msg}\n`);
  process.exit(1);
}

function main(): void {
  if (process.platform !== 'linux') fail('soccrd needs Linux (TCP repair mode)');
  if (process.getuid?.() !== 0) fail('the tests need root (CAP_NET_ADMIN for TCP_REPAIR and namespaces, CAP_SYS_PTRACE for pidfd_getfd): run them as root');
  const missing = NEEDED.filter((n) => !has(n.command));
  if (missing.length > 0) {
    const pkgs = missing.map((m) => m.pkg);
    process.stdout.write(`preflight: installing ${pkgs.join(', ')} (${missing.map((m) => `${m.command}: ${m.why}`).join('; ')})\n`);
    if (!has('apt-get')) fail(`missing ${pkgs.join(', ')} and no apt-get to install them`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    try {
      execFileSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
      execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env });
    } catch {
      fail(`could not install ${pkgs.join(', ')} with apt-get; install them and run again`);
    }
    const still = missing.filter((m) => !has(m.command));
    if (still.length > 0) fail(`still missing after apt-get: ${still.map((m) => `${m.command} (package ${m.pkg})`).join(', ')}`);
  }
  const probe = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (probe.status !== 0) fail(`'ip netns' does not work here: ${probe.stderr.trim()}`);
}

main();
