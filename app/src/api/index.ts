/**
 * The API module's public surface: the client, its errors, the wire types and the parsers.
 * Import from here (`./api/index.js`), not from the files behind it.
 */

export { RunPodError, RunPodHttpError, RunPodNetworkError, RunPodProtocolError } from "./errors.js";
export {
  guessMimeType,
  jobOutcome,
  mergeProgress,
  parseHealth,
  parseJobError,
  parseJobState,
  parseProgress,
  parseWorkerResult,
} from "./results.js";
export {
  type CallOptions,
  DEFAULT_POLL,
  DEFAULT_RETRY,
  MAX_RUNSYNC_WAIT_MS,
  type PollPolicy,
  type RetryEvent,
  type RetryPolicy,
  type RunOptions,
  RunPodClient,
  type RunPodClientOptions,
  type RunSyncOptions,
  type Sleep,
  type WaitOptions,
  abortableSleep,
} from "./runpod.js";
export * from "./types.js";
