// The `tally` CLI from source, for tests that run it as a real process (signals, kill -9).
import { main } from '../../src/cli.js';

process.exitCode = await main(process.argv.slice(2));
