/**
 * The `tally` command. Each subcommand is a function returning an exit code; `main` only dispatches,
 * so commands are testable in-process.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VERSION } from '@tally/node';
import { demo } from './demo.js';

const HELP = `tally ${VERSION}: self-hosted event tracking and request logging

Usage: tally <command>

Commands:
  demo       track a sample task pipeline and print every event and the final counts
  version    print the version
  help       show this help
`;

export async function main(argv: string[], out = process.stdout, err = process.stderr): Promise<number> {
  const [command] = argv;
  switch (command) {
    case 'demo':
      await demo(out, join(tmpdir(), `tally-demo-spool-${process.pid}`));
      return 0;
    case 'version':
    case '--version':
    case '-v':
      out.write(`${VERSION}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      out.write(HELP);
      return 0;
    default:
      err.write(`tally: unknown command "${command}"\n\n${HELP}`);
      return 2;
  }
}
