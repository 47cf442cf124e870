// How an agent refuses a forwarded-tcpip channel (`bento-hub proxy`): with the
// standard SSH_MSG_CHANNEL_OPEN_FAILURE reason codes (RFC 4254, 5.1) and, in
// its description, the host's own error ("connection refused by
// 127.0.0.1:22 ..."), which the hub shows the admin as it is.
export const OPEN_FAILURE = {
  /** The port is not in the agent's allowForwardPorts. */
  PROHIBITED: 1,
  /** The agent could not connect to the port on its host: the description says why. */
  CONNECT_FAILED: 2,
} as const;

/** Longest description an agent sends (a line for a terminal, not a log). */
export const MAX_OPEN_FAILURE_DESCRIPTION = 200;
