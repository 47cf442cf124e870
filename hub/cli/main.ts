#!/usr/bin/env node
// bento-hub entry point: the hub daemon and the admin CLI.
import { exitFlushed, runProgram } from '../../common/platform/cli.js';
import { hubProgram } from './program.js';

runProgram(hubProgram, process.argv.slice(2)).then(
  (code) => exitFlushed(code),
  (err) => {
    process.stderr.write(`bento-hub: ${String(err)}\n`);
    void exitFlushed(1);
  },
);
