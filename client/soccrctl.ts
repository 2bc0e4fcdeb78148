#!/usr/bin/env node
// soccrctl: the command line of soccrd. Talks to the daemon over gRPC (client.ts), and decodes
// checkpoint files offline (`show`). Human-readable output by default, one JSON document with --json;
// on failure one line on stderr ("soccrctl: NOT_FOUND: ...") and an exit code by gRPC status
// (cli/failure.ts). This file builds the program from its global options and the commands in cli/ (one
// module per command or family).
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { CommanderError } from 'commander';
import { DEFAULT_ADDRESS, DEFAULT_TIMEOUT_MS } from './client';
import { parseUint } from './cli/args';
import { addCheckpointCommand } from './cli/checkpoint';
import { addCompletionCommand } from './cli/completion';
import { CliFailure, EXIT_OK, errorReport, exitCodesHelp, wantsJson } from './cli/failure';
import { addHandoffCommand } from './cli/handoff';
import { addSocketsCommand, addVersionCommand } from './cli/info';
import { addMigrateCommand } from './cli/migrate';
import { note, printJson } from './cli/output';
import { addRestoreCommand } from './cli/restore';
import { addSessionCommands } from './cli/sessions';
import { addShowCommand } from './cli/show';

function clientVersion(): string {
  for (const p of [path.resolve(__dirname, '..', '..', 'package.json'), path.resolve(__dirname, '..', 'package.json')]) {
    try {
      const v = (JSON.parse(readFileSync(p, 'utf8')) as { version?: unknown }).version;
      if (typeof v === 'string') return v;
    } catch {
      // try the next location
    }
  }
  return 'unknown';
}

export function buildProgram(): Command {
  const program = new Command('soccrctl');
  const version = clientVersion();
  program
    .description('Control soccrd: checkpoint, restore and hand over live TCP connections.')
    .version(version, '-V, --client-version', "print soccrctl's own version")
    .addOption(new Option('--daemon <addr>', 'daemon address: unix:///path or host:port').env('SOCCRD_ADDRESS').default(DEFAULT_ADDRESS))
    .option('--json', 'print one JSON document on stdout', false)
    .option('--timeout <ms>', 'deadline of each call, and how long to wait for a connection (0: none)', parseUint('--timeout'), DEFAULT_TIMEOUT_MS)
    .addOption(new Option('--tls-ca <file>', "TLS: CA certificates (PEM) of the daemon's certificate (TCP daemons)").env('SOCCRD_TLS_CA'))
    .addOption(new Option('--tls-cert <file>', 'TLS: client certificate chain (PEM)').env('SOCCRD_TLS_CERT'))
    .addOption(new Option('--tls-key <file>', "TLS: the client certificate's key (PEM)").env('SOCCRD_TLS_KEY'))
    .addOption(
      new Option('--tls-server-name <name>', "TLS: the name the daemon's certificate carries, if not the address's host").env('SOCCRD_TLS_SERVER_NAME'),
    )
    .showSuggestionAfterError()
    // main() reports every failure, commander's own included, in one format and with one exit code table
    .exitOverride()
    .configureOutput({ outputError: () => undefined })
    .addHelpText('after', `\n${exitCodesHelp()}`);

  // in this order in `soccrctl --help`
  addVersionCommand(program, version);
  addSocketsCommand(program);
  addCheckpointCommand(program);
  addRestoreCommand(program);
  addSessionCommands(program);
  addMigrateCommand(program);
  addHandoffCommand(program);
  addShowCommand(program);
  addCompletionCommand(program);
  return program;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return EXIT_OK;
  } catch (err) {
    // --help and --client-version end here too, having printed what they print
    if (err instanceof CommanderError && err.exitCode === 0) return EXIT_OK;
    const report = errorReport(err);
    note(`soccrctl: ${report.message}`);
    if (wantsJson(argv.slice(2))) {
      const failure = err instanceof CliFailure ? err : undefined;
      printJson({ ...failure?.document, error: { ...report, ...failure?.errorFields } });
    }
    return report.exitCode;
  }
}

/**
 * grpc-js sends the host of a TCP address as the TLS server name even when it is an IP address, which
 * Node reports once per process (DEP0123) on stderr; soccrctl keeps stderr to its own lines.
 */
function quietIpServerNameWarning(): void {
  const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = (...args: unknown[]) => {
    const code = args.find((a) => a === 'DEP0123' || (typeof a === 'object' && a !== null && (a as { code?: unknown }).code === 'DEP0123'));
    if (code === undefined) emitWarning(...args);
  };
}

if (require.main === module) {
  quietIpServerNameWarning();
  void main().then((code) => {
    process.exitCode = code;
  });
}
