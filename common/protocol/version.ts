// Versions announced on the wire. The protocol version changes only when a
// message changes meaning or a required field is added; new optional fields
// keep the version (receivers ignore fields they do not know).
export const PROTOCOL_VERSION = 1;
export const BENTO_VERSION = '0.1.0';
/** The SSH subsystem name of the control channel. */
export const CONTROL_SUBSYSTEM = 'bento-control@1';
