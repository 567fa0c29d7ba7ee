/**
 * Every error the API client throws. A job that FAILED is not one of them: it is a normal answer,
 * read with `jobOutcome`. These are for calls that did not get a usable answer at all.
 *
 *   RunPodError
 *   ├── RunPodHttpError       the endpoint answered with a non-2xx status (after retries for 429/5xx)
 *   ├── RunPodNetworkError    no answer: connection refused, reset, DNS (after retries where safe)
 *   └── RunPodProtocolError   an answer that is not what RunPod's API sends (not JSON, no job id)
 *
 * An aborted call rejects with the AbortSignal's reason (an AbortError DOMException), as fetch does.
 */

export class RunPodError extends Error {
  override name = "RunPodError";
}

export class RunPodHttpError extends RunPodError {
  override name = "RunPodHttpError";
  readonly status: number;
  /** The endpoint's own explanation (its `error` field, or the body text), possibly empty. */
  readonly detail: string;
  readonly path: string;

  constructor(status: number, detail: string, path: string) {
    super(`${path} answered HTTP ${status}${detail ? `: ${detail}` : ""}${hintFor(status)}`);
    this.status = status;
    this.detail = detail;
    this.path = path;
  }
}

export class RunPodNetworkError extends RunPodError {
  override name = "RunPodNetworkError";
  readonly path: string;

  constructor(path: string, cause: unknown) {
    super(`${path} could not be reached: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
    this.path = path;
  }
}

export class RunPodProtocolError extends RunPodError {
  override name = "RunPodProtocolError";
}

// What to do about the statuses people actually hit, said once here rather than at each call.
function hintFor(status: number): string {
  if (status === 401 || status === 403) return " (check RUNPOD_API_KEY on the app server)";
  if (status === 404) return " (unknown endpoint id, or a job id RunPod no longer keeps)";
  if (status === 413) return " (the request is too large: RunPod takes 10 MB on /run, 20 MB on /runsync)";
  if (status === 429) return " (rate limited; retried, then gave up)";
  return "";
}
