// A deliberately tiny validator for wire messages. Messages are flat objects
// of strings, numbers, booleans and string arrays; anything richer would be a
// sign that the protocol is doing too much. Unknown fields are ignored so a
// newer peer can add optional fields without a version bump: ignored means
// dropped (known()), so nothing unvalidated travels further into the program
// (an own "__proto__" from JSON.parse, a value nested thousands deep, a
// field of megabytes kept for the life of a session).
export type Field =
  | { t: 'str'; max: number; opt?: boolean; nullable?: boolean; oneOf?: readonly string[]; re?: RegExp }
  | { t: 'int'; min?: number; max?: number; opt?: boolean; nullable?: boolean }
  | { t: 'bool'; opt?: boolean }
  | { t: 'strs'; max: number; maxItems: number; opt?: boolean };

export type Schema = Readonly<Record<string, Field>>;

/**
 * A schema's fields as a list, made once per schema: every message is
 * checked (a fan-out: two per host), and Object.entries/keys made a new array
 * of pairs for each one.
 */
const fieldLists = new WeakMap<Schema, ReadonlyArray<readonly [string, Field]>>();
function fieldsOf(schema: Schema): ReadonlyArray<readonly [string, Field]> {
  let list = fieldLists.get(schema);
  if (!list) fieldLists.set(schema, (list = Object.entries(schema)));
  return list;
}

/** Returns null when obj matches, else a short human reason. */
export function check(obj: Record<string, unknown>, schema: Schema): string | null {
  for (const [key, f] of fieldsOf(schema)) {
    const v = obj[key];
    if (v === undefined) {
      if (f.opt) continue;
      return `field "${key}" is missing`;
    }
    if (v === null && (f.t === 'str' || f.t === 'int') && f.nullable) continue;
    const problem = checkField(key, v, f);
    if (problem) return problem;
  }
  return null;
}

/** A copy of obj with only `tag` and the schema's fields: what was validated, nothing else. */
export function known(obj: Record<string, unknown>, schema: Schema, tag: string): Record<string, unknown> {
  const out: Record<string, unknown> = { [tag]: obj[tag] };
  for (const [key] of fieldsOf(schema)) if (obj[key] !== undefined) out[key] = obj[key];
  return out;
}

function checkField(key: string, v: unknown, f: Field): string | null {
  switch (f.t) {
    case 'str':
      if (typeof v !== 'string') return `field "${key}" must be a string`;
      if (v.length > f.max) return `field "${key}" is longer than ${f.max}`;
      if (f.oneOf && !f.oneOf.includes(v)) return `field "${key}" must be one of ${f.oneOf.join(', ')}`;
      if (f.re && !f.re.test(v)) return `field "${key}" has an invalid format`;
      return null;
    case 'int':
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) return `field "${key}" must be an integer`;
      if (f.min !== undefined && v < f.min) return `field "${key}" is below ${f.min}`;
      if (f.max !== undefined && v > f.max) return `field "${key}" is above ${f.max}`;
      return null;
    case 'bool':
      return typeof v === 'boolean' ? null : `field "${key}" must be a boolean`;
    case 'strs':
      if (!Array.isArray(v)) return `field "${key}" must be an array of strings`;
      if (v.length > f.maxItems) return `field "${key}" has more than ${f.maxItems} items`;
      for (const item of v) {
        if (typeof item !== 'string' || item.length > f.max) return `field "${key}" has an invalid item`;
      }
      return null;
  }
}
