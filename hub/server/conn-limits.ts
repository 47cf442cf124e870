// hub.json "limits", the connection part: what one authenticated SSH
// connection, and one host's connections together, may hold on the hub
// (conn-guard.ts enforces them). A key in an attacker's hands must cost the
// hub a bounded amount however it is used; these bounds sit well above what
// an honest agent does (counted below, docs/security.md "Limits").

export interface ConnLimits {
  /**
   * Channels the peer has open at once on one connection. An honest agent:
   * 1 control + at most 8 SFTP (the jail's own cap per host) + 1 secrets +
   * one per TCP connection nix makes to the hub's cache through the tunnel
   * (nix's http-connections defaults to 25), i.e. ~35; 64 leaves headroom.
   */
  channelsPerConnection: number;
  /** Reverse forwards one connection may register (an agent asks one per allowForwardPorts entry, default 1). */
  forwardsPerSession: number;
  /**
   * Authenticated -> hello on the control channel. A connection that uses
   * only SFTP (a pull-mode agent's own connection, client/pull/connect.ts)
   * is exempt while it has an SFTP channel open.
   */
  helloTimeoutMs: number;
  /** Authenticated connections of one host at once (its agent, a pull's own SFTP connection, a reconnect racing the old one). */
  connectionsPerHost: number;
}

export const CONN_DEFAULTS: Readonly<ConnLimits> = Object.freeze({
  channelsPerConnection: 64,
  forwardsPerSession: 16,
  helloTimeoutMs: 30_000,
  connectionsPerHost: 4,
});

export const CONN_RANGES: Record<keyof ConnLimits, [number, number]> = {
  channelsPerConnection: [4, 100_000],
  forwardsPerSession: [1, 1024],
  helloTimeoutMs: [1000, 3_600_000],
  connectionsPerHost: [2, 1024],
};
