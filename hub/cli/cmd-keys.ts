// `bento-hub host-keys`: rotate a host's keys without losing its tags, ssh
// hints or history (remove-host + add-host would). Add the new key, let the
// host switch to it, then remove the old one; the running hub picks the
// registry change up at the next login (RegistryView re-reads on change; in a
// cluster every hub's view follows the registry bucket).
import type { CommandSpec } from '../../common/platform/cli.js';
import { fingerprintOfKeyLine } from '../../common/protocol/fingerprint.js';
import { fleetPaths } from '../fleet/paths.js';
import { changeHostKeys } from '../fleet/registry.js';
import { withRegistry } from '../cluster/content-cli.js';
import { BentoError } from '../../common/protocol/errors.js';
import { requireFleet } from './cmd-fleet.js';
import { fleetDir, keyLines, printJson, strs } from './util.js';

export const hostKeysCommand: CommandSpec = {
  name: 'host-keys',
  usage: 'host-keys NAME [--add KEY | --add-file FILE]... [--remove FINGERPRINT]... [--json] [--dir DIR]',
  summary: 'Add or remove a registered host\'s public keys (key rotation); without options, list them.',
  details: 'A key already registered to another host is refused (KEY_IN_USE); a host keeps at least one key. Removed keys stop working at their next login; a session already up stays until it reconnects.',
  options: {
    add: { type: 'string', multiple: true, arg: 'KEY', help: 'OpenSSH public key line to add' },
    'add-file': { type: 'string', multiple: true, arg: 'FILE', help: 'file holding public key line(s) to add' },
    remove: { type: 'string', multiple: true, arg: 'FINGERPRINT', help: 'SHA256:... fingerprint (as `bento-hub hosts` shows) of a key to remove' },
    json: { type: 'boolean', help: 'print the result as JSON' },
  },
  positionals: { min: 1, max: 1 },
  async run({ values, positionals }) {
    const p = fleetPaths(fleetDir(values));
    await requireFleet(p.hubConfig);
    const name = positionals[0]!;
    const add = await keyLines(strs(values, 'add'), strs(values, 'add-file'));
    const remove = strs(values, 'remove');
    const reg = await withRegistry(p.root, (r) => (add.length === 0 && remove.length === 0
      ? r.read()
      : r.update((cur) => changeHostKeys(cur, name, { add, remove }))));
    const entry = reg.hosts[name];
    if (!entry) throw new BentoError('UNKNOWN_HOST', `no host "${name}" in the registry`);
    const fingerprints = entry.keys.map(fingerprintOfKeyLine);
    if (values['json']) printJson({ name, fingerprints });
    else process.stdout.write(`${name}: ${fingerprints.join(', ')}\n`);
    return 0;
  },
};
