// The hand-over's bounds, shared by the daemon that hands restored sockets over and the clients that wait
// for it (docs/handover.md describes the protocol itself).

/**
 * The hand-over's bounds (Resume of a held restore session, Restore with go_live): the daemon waits at
 * most HANDOVER_ACK_TIMEOUT_MS for the receiver to take every fd and acknowledge, then at most
 * HANDOVER_LIVE_LINE_MS more to tell it "live". Clients derive their Resume deadline from these, so that
 * a Resume's answer is never cut off while its hand-over still runs.
 */
export const HANDOVER_ACK_TIMEOUT_MS = 10_000;
export const HANDOVER_LIVE_LINE_MS = 1_000;
/** Longest a hand-over runs in the daemon (going live itself aside: a few kernel calls per socket). */
export const HANDOVER_MAX_MS = HANDOVER_ACK_TIMEOUT_MS + HANDOVER_LIVE_LINE_MS;
/** The client library's Resume deadline, at least: the hand-over's bound plus room for going live and the answer. */
export const RESUME_DEADLINE_MS = HANDOVER_MAX_MS + 4_000;
