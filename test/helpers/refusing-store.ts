// A keyed store whose writes NATS "did not acknowledge in time" (refused, not
// applied) whenever a test says so: the one failure that store code must
// handle and a real nats-server produces only under a timed freeze. Unit tests
// of the write paths (claim waits, superseded job writes) use it over the
// memory backend; integration tests freeze a real server (SIGSTOP) instead.
import { BentoError } from '../../common/protocol/errors.js';
import type { KeyedStore } from '../../hub/store/types.js';

type SetArgs<T> = Parameters<KeyedStore<T>['set']>;

/** STORE, with each set() for which REFUSE(key, value, opts) is true rejected as a write past its deadline. */
export function refusingWrites<T>(store: KeyedStore<T>, refuse: (...args: SetArgs<T>) => boolean): KeyedStore<T> {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'set') {
        return (...args: SetArgs<T>) => (refuse(...args)
          ? Promise.reject(new BentoError('STATE_WRITE_FAILED', 'NATS JetStream did not acknowledge the write within 10000 ms; retrying'))
          : target.set(...args));
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
