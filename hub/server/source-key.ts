// Which "source" a connection counts against for per-source limits and
// penalties (admission.ts): an IPv4 address (/32), or an IPv6 /64, since one
// IPv6 host usually holds a whole /64 and could otherwise pick a fresh address
// per connection. An IPv4-mapped IPv6 address ("::ffff:192.0.2.1", what a
// dual-stack listener reports for IPv4 peers) is its IPv4 address.
import net from 'node:net';

const MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/** The plain address: IPv4-mapped IPv6 unwrapped, an IPv6 zone ("%eth0") dropped. */
export function plainAddress(address: string | undefined): string {
  if (!address) return '';
  const a = address.includes('%') ? address.slice(0, address.indexOf('%')) : address;
  const m = MAPPED.exec(a);
  return m ? m[1]! : a;
}

/** "192.0.2.1" -> "192.0.2.1"; "2001:db8:1:2:3::4" -> "2001:db8:1:2::/64"; unknown -> "?". */
export function sourceKey(address: string | undefined): string {
  const a = plainAddress(address);
  const family = net.isIP(a);
  if (family === 4) return a;
  if (family === 6) {
    const h = ipv6Hextets(a);
    if (h) return `${h.slice(0, 4).map((x) => x.toString(16)).join(':')}::/64`;
  }
  return '?';
}

/** The eight 16-bit groups of a valid IPv6 address (embedded dotted IPv4 allowed), or null. */
export function ipv6Hextets(a: string): number[] | null {
  let s = a;
  const tail: number[] = [];
  const v4 = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(s);
  if (v4) {
    const o = v4[1]!.split('.').map(Number);
    tail.push((o[0]! << 8) | o[1]!, (o[2]! << 8) | o[3]!);
    s = s.slice(0, s.length - v4[1]!.length);
    if (s.endsWith(':') && !s.endsWith('::')) s = s.slice(0, -1);
  }
  const [head, rest] = s.split('::') as [string, string | undefined];
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((x) => parseInt(x, 16)));
  const left = parse(head);
  const right = rest === undefined ? [] : parse(rest);
  const fill = 8 - tail.length - left.length - right.length;
  if (rest === undefined ? fill !== 0 : fill < 0) return null;
  const all = [...left, ...new Array<number>(rest === undefined ? 0 : fill).fill(0), ...right, ...tail];
  return all.length === 8 && all.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffff) ? all : null;
}

export interface Cidr { address: string; prefix: number; family: 'ipv4' | 'ipv6' }

/** "10.0.0.0/8", "2001:db8::/48", or a bare address (a /32 or /128); null if invalid. */
export function parseCidr(s: string): Cidr | null {
  const [addr, len, extra] = s.split('/');
  if (extra !== undefined || !addr) return null;
  const a = plainAddress(addr);
  const family = net.isIP(a);
  if (family === 0) return null;
  const max = family === 4 ? 32 : 128;
  if (len !== undefined && !/^\d{1,3}$/.test(len)) return null;
  const prefix = len === undefined ? max : Number(len);
  if (prefix > max) return null;
  return { address: a, prefix, family: family === 4 ? 'ipv4' : 'ipv6' };
}

/** hub.json limits.exempt as a matcher (node's BlockList does the prefix arithmetic). */
export class SourceSet {
  private readonly list = new net.BlockList();
  readonly empty: boolean;

  constructor(cidrs: readonly string[]) {
    for (const c of cidrs) {
      const p = parseCidr(c);
      if (p) this.list.addSubnet(p.address, p.prefix, p.family);
    }
    this.empty = cidrs.length === 0;
  }

  has(address: string | undefined): boolean {
    if (this.empty) return false;
    const a = plainAddress(address);
    const family = net.isIP(a);
    return family !== 0 && this.list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  }
}
