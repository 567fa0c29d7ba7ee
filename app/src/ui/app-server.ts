/** Calls to the app's own server (not the endpoint): its settings and the workflows folder. */

export interface AppInfo {
  endpointId: string;
  endpointUrl: string;
  local: boolean;
  maxBodyBytes: number;
  /** Whether the app server adds its own bucket (s3Config) to jobs, and its default output mode. */
  storage: { bucket: boolean; output: string | null };
}

export interface WorkflowEntry {
  path: string;
  name: string;
}

async function getJson(url: string): Promise<unknown> {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const text = await response.text();
  if (!response.ok) {
    let reason = text;
    try {
      reason = (JSON.parse(text) as { error?: string }).error ?? text;
    } catch {
      // A plain-text error page: show it as it is.
    }
    throw new Error(`${url} answered HTTP ${response.status}: ${reason}`);
  }
  return JSON.parse(text);
}

export async function fetchAppInfo(): Promise<AppInfo> {
  return (await getJson("/api/config")) as AppInfo;
}

export async function fetchWorkflowList(): Promise<WorkflowEntry[]> {
  return ((await getJson("/api/workflows")) as { workflows: WorkflowEntry[] }).workflows;
}

/** The file's text, parsed by the caller (so a broken file gets the same message as a dropped one). */
export async function fetchWorkflowText(path: string): Promise<string> {
  const response = await fetch(`/api/workflows/${path.split("/").map(encodeURIComponent).join("/")}`);
  if (!response.ok) throw new Error(`workflows/${path} answered HTTP ${response.status}`);
  return response.text();
}

/** A listed workflow's exposed-inputs file, or null when it has none. */
export async function fetchSidecarText(path: string): Promise<string | null> {
  const response = await fetch(`/api/workflows/${path.split("/").map(encodeURIComponent).join("/")}`);
  // 204: the workflow has no exposed inputs.
  if (response.status === 204 || response.status === 404) return null;
  if (!response.ok) throw new Error(`workflows/${path} answered HTTP ${response.status}`);
  return response.text();
}

/** Save exposed inputs beside a listed workflow; null when saved, else why not. */
export async function saveExposed(workflowPath: string, exposed: unknown): Promise<string | null> {
  const path = workflowPath.replace(/\.json$/i, ".inputs.json");
  try {
    const response = await fetch(`/api/workflows/${path.split("/").map(encodeURIComponent).join("/")}`, {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(exposed),
    });
    if (response.ok) return null;
    const text = await response.text();
    try {
      return (JSON.parse(text) as { error?: string }).error ?? text;
    } catch {
      return text;
    }
  } catch (error) {
    return (error as Error).message;
  }
}
