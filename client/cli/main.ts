#!/usr/bin/env node
// bento-client entry point: the agent.
import { exitFlushed, runProgram } from '../../common/platform/cli.js';
import { clientProgram } from './program.js';

runProgram(clientProgram, process.argv.slice(2)).then(
  (code) => exitFlushed(code),
  (err) => {
    process.stderr.write(`bento-client: ${String(err)}\n`);
    void exitFlushed(1);
  },
);
