// Control node constants the CLI needs without loading the protocol's validators.

/** TF's agent ↔ control node (XMPP) port. */
export const DEFAULT_CONTROL_PORT = 5269;
