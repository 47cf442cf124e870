// The attacker of the bench's attack phase (attack.ts), in a process of its
// own so its sockets and reconnect loop neither share the orchestrator's event
// loop nor hide in its CPU figures. It holds `count` connections from the
// given source addresses that send "SSH-2.0-x" (or nothing) and stall, and
// reopens each one a second after the hub cuts or refuses it.
import { siege, type Siege } from '../helpers/siege.js';
import type { AttackFromWorker, AttackToWorker } from './ipc.js';

const send = (m: AttackFromWorker): void => { process.send?.(m); };
let current: Siege | null = null;

process.on('message', (m: AttackToWorker) => {
  switch (m.t) {
    case 'attack': {
      current?.stop();
      const s = siege({
        port: m.port, sources: m.sources, count: m.count, reopenMs: 1000,
        maxConnects: m.count * 1000,
        behave: m.mode === 'ssh-stall' ? (sock) => { sock.write('SSH-2.0-x\r\n'); } : undefined,
      });
      current = s;
      void s.established.then(() => send({ t: 'attacking', open: s.open(), connects: s.connects() }));
      break;
    }
    case 'attack-stats':
      send({ t: 'attack-stats', open: current?.open() ?? 0, connects: current?.connects() ?? 0 });
      break;
    case 'calm':
      current?.stop();
      current = null;
      send({ t: 'calm' });
      break;
  }
});
// The orchestrator is gone (crash, Ctrl-C): never outlive it.
process.on('disconnect', () => process.exit(0));
