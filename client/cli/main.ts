#!/usr/bin/env node
// bento-client entry point: the agent.
import { runProgram } from '../../common/platform/cli.js';
import { clientProgram } from './program.js';

runProgram(clientProgram, process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bento-client: ${String(err)}\n`);
    process.exit(1);
  },
);
