// docs/nixos-options.md is generated from the module declarations by the real
// module system (nixos/docs/options.nix, lib.optionAttrSetToDocList) and must
// not drift; and no published option may disappear without an alias
// (lib.mkRenamedOptionModule / mkRemovedOptionModule): nixos/published-options.txt
// lists every option path ever published. Fails, never skips, without
// nix-instantiate or the nixpkgs lib.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, nixEval } from './nixos-nix.js';

interface Entry { name: string; description: string | null; type: string; default: string | null; example: string | null; declarations: string[]; readOnly: boolean }
const gen = (await import(pathToFileURL(path.join(ROOT, 'nixos/docs/generate.mjs')).href)) as {
  optionEntries(root?: string): Entry[]; render(entries: Entry[]): string; DOC: string;
};

test('docs/nixos-options.md is exactly what the module declarations generate (npm run docs:nixos)', () => {
  const entries = gen.optionEntries(ROOT);
  const have = readFileSync(path.join(ROOT, gen.DOC), 'utf8');
  assert.equal(have, gen.render(entries), `${gen.DOC} drifted from the modules: run npm run docs:nixos`);
  // It documents what users set: every visible option, with its type and where it is declared.
  const names = entries.map((e) => e.name);
  for (const must of ['services.bento.hub.settings.listen', 'services.bento.client.endpoints.*.url', 'services.bento.client.machineId', 'services.bento.client.postSwitchCommand']) {
    assert.ok(names.includes(must), must);
  }
  assert.ok(!names.some((n) => n.endsWith('.configFile') || n.includes('._module.')), 'internal options stay out');
  const pkg = entries.find((e) => e.name === 'services.bento.client.package')!;
  assert.equal(pkg.default, 'pkgs.bento-fleet', 'mkPackageOption');
  assert.deepEqual(pkg.declarations, ['nixos/modules/client/options.nix']);
  assert.match(have, /## `services\.bento\.hub\.settings\.heartbeatMs`\n\nHeartbeat period told to agents.*\n\n\*Type:\* integer between 100 and 3600000 \(both inclusive\)\n\n\*Default:\* `25000`/);
});

function declared(modules = '[ ]'): Set<string> {
  const out = new Set<string>();
  for (const m of ['hub', 'client']) {
    const r = nixEval<{ visible: string[]; hidden: string[] }>(`import ./nixos/tests/option-paths.nix { inherit libDir; which = "${m}"; modules = ${modules}; }`);
    for (const p of [...r.visible, ...r.hidden]) out.add(`services.bento.${m}.${p}`);
  }
  return out;
}
const visible = (): string[] => ['hub', 'client'].flatMap((m) =>
  nixEval<{ visible: string[] }>(`import ./nixos/tests/option-paths.nix { inherit libDir; which = "${m}"; }`).visible.map((p) => `services.bento.${m}.${p}`));

/** What is wrong between the published list and the declarations, as messages that say what to do. */
function problems(published: string[], have: Set<string>, shown: string[]): string[] {
  const out: string[] = [];
  for (const p of published) {
    if (!have.has(p)) out.push(`${p} was published but is gone: declare it with lib.mkRenamedOptionModule [ ${p.split('.').map((s) => `"${s}"`).join(' ')} ] [ ...new path... ] (or lib.mkRemovedOptionModule with the reason)`);
  }
  for (const p of shown) if (!published.includes(p)) out.push(`${p} is a new option: append it to nixos/published-options.txt`);
  return out;
}

const publishedList = (): string[] => readFileSync(path.join(ROOT, 'nixos/published-options.txt'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));

test('every option ever published is still declared (renamed ones through mkRenamedOptionModule), and every option is listed', () => {
  assert.deepEqual(problems(publishedList(), declared(), visible()), []);
});

test('the check catches a rename without an alias and accepts it with mkRenamedOptionModule', () => {
  // As if services.bento.client.pullInterval had been called pullTimer before.
  const published = [...publishedList(), 'services.bento.client.pullTimer'];
  assert.deepEqual(problems(published, declared(), visible()), [
    'services.bento.client.pullTimer was published but is gone: declare it with lib.mkRenamedOptionModule [ "services" "bento" "client" "pullTimer" ] [ ...new path... ] (or lib.mkRemovedOptionModule with the reason)',
  ]);
  const alias = '[ ({ lib, ... }: { imports = [ (lib.mkRenamedOptionModule [ "services" "bento" "client" "pullTimer" ] [ "services" "bento" "client" "pullInterval" ]) ]; }) ]';
  assert.deepEqual(problems(published, declared(alias), visible()), []);
  assert.deepEqual(problems(publishedList().filter((p) => !p.endsWith('.machineId')), declared(), visible()), [
    'services.bento.client.machineId is a new option: append it to nixos/published-options.txt',
  ]);
});
