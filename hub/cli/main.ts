#!/usr/bin/env node
// bento-hub entry point: the hub daemon and the admin CLI.
import { runProgram } from '../../common/platform/cli.js';
import { hubProgram } from './program.js';

runProgram(hubProgram, process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bento-hub: ${String(err)}\n`);
    process.exit(1);
  },
);
