// The embedded hub's event bus (hub/events/bus.ts) passes the EventBus
// contract, plus what only an in-process bus promises: synchronous delivery,
// and one order for every subscriber even when a listener publishes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventBusContract } from '../contract/event-bus.js';
import { LocalEventBus } from '../../hub/events/bus.js';
import type { HubEvent } from '../../hub/events/types.js';
import { silentLogger } from '../../common/platform/log.js';

eventBusContract({
  name: 'in-process',
  shared: false,
  async fresh() {
    const bus = new LocalEventBus(silentLogger());
    return { bus, cleanup: () => bus.close() };
  },
});

test('in-process bus: delivery is synchronous; an event published by a listener reaches everyone after the current one', () => {
  const bus = new LocalEventBus(silentLogger());
  const a: string[] = [];
  const b: string[] = [];
  const name = (e: HubEvent): string => e.host;
  bus.subscribe({ all: true }, (e) => { a.push(name(e)); if (e.host === 'first') bus.publish({ kind: 'changed', host: 'second' }); });
  bus.subscribe({ all: true }, (e) => { b.push(name(e)); });
  bus.publish({ kind: 'changed', host: 'first' });
  assert.deepEqual(a, ['first', 'second']);
  assert.deepEqual(b, ['first', 'second'], 'not second before first');
  const sub = bus.subscribe({ jobId: 'job-x0000000' }, () => undefined);
  sub.unsubscribe();
  void bus.close();
  bus.publish({ kind: 'changed', host: 'after-close' });
  assert.deepEqual(a, ['first', 'second']);
});
