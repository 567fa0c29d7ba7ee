/**
 * Reads a workflow file into an API-format graph, refusing what the worker would refuse with the
 * worker's own hint, so a user learns about a UI-format export before submitting anything. Pure.
 */

import type { ApiNode, ApiWorkflow } from "../api/types.js";

/**
 * The worker's hint (handler/job.py `_API_FORMAT_HINT`) with its last words fitted to a page, so
 * the app and the worker name the same menu items.
 */
export const API_FORMAT_HINT =
  "in ComfyUI use Workflow > Export (API) (older menus: 'Save (API Format)') and drop that file here";

export class WorkflowFormatError extends Error {
  override name = "WorkflowFormatError";
}

/** Parse the text of a dropped or listed file; throws `WorkflowFormatError` saying what to do. */
export function parseWorkflowText(text: string): ApiWorkflow {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new WorkflowFormatError(`This file is not JSON (${reason}); ${API_FORMAT_HINT}.`);
  }
  return checkWorkflow(value);
}

/**
 * Check a parsed value is an API-format graph and return it. A RunPod request body
 * (`{"input": {"workflow": ...}}`, e.g. a worker-comfyui test_input.json) is unwrapped.
 */
export function checkWorkflow(value: unknown): ApiWorkflow {
  const graph = unwrapRequest(value);
  if (!isObject(graph)) {
    throw new WorkflowFormatError(
      `A workflow must be a JSON object of nodes, not ${kind(graph)}; ${API_FORMAT_HINT}.`,
    );
  }
  if ("nodes" in graph && "links" in graph) {
    throw new WorkflowFormatError(
      "This is a UI-format export (it has 'nodes' and 'links'), which ComfyUI's API cannot run: " +
        `${API_FORMAT_HINT}.`,
    );
  }
  const entries = Object.entries(graph);
  if (entries.length === 0) throw new WorkflowFormatError(`The workflow has no nodes; ${API_FORMAT_HINT}.`);
  const workflow: ApiWorkflow = {};
  for (const [nodeId, node] of entries) workflow[nodeId] = checkNode(nodeId, node);
  return workflow;
}

function checkNode(nodeId: string, node: unknown): ApiNode {
  if (!isObject(node)) {
    throw new WorkflowFormatError(`Node ${nodeId} is ${kind(node)}, not a node object; ${API_FORMAT_HINT}.`);
  }
  if (typeof node.class_type !== "string" || node.class_type === "") {
    throw new WorkflowFormatError(
      `Node ${nodeId} has no class_type: every node needs one (e.g. "class_type": "SaveImage"); ${API_FORMAT_HINT}.`,
    );
  }
  if (node.inputs !== undefined && !isObject(node.inputs)) {
    throw new WorkflowFormatError(`Node ${nodeId} (${node.class_type}) has inputs that are not an object.`);
  }
  const checked: ApiNode = { class_type: node.class_type, inputs: { ...(node.inputs ?? {}) } };
  if (isObject(node._meta)) {
    checked._meta = typeof node._meta.title === "string" ? { title: node._meta.title } : {};
  }
  return checked;
}

function unwrapRequest(value: unknown): unknown {
  if (
    isObject(value) &&
    isObject(value.input) &&
    "workflow" in value.input &&
    !("class_type" in value.input)
  ) {
    const workflow = value.input.workflow;
    // The worker also accepts the workflow as a JSON string; so do we.
    if (typeof workflow === "string") {
      try {
        return JSON.parse(workflow);
      } catch {
        throw new WorkflowFormatError(`input.workflow is a string that is not JSON; ${API_FORMAT_HINT}.`);
      }
    }
    return workflow;
  }
  return value;
}

/** True for `["4", 0]`: an input wired to output 0 of node 4, not a value a form can edit. */
export function isLink(value: unknown): boolean {
  return (
    Array.isArray(value) &&
    value.length === 2 &&
    (typeof value[0] === "string" || typeof value[0] === "number") &&
    typeof value[1] === "number"
  );
}

/** A node's display title: its `_meta.title` from the export, else its class. */
export function nodeTitle(node: ApiNode): string {
  const title = node._meta?.title?.trim();
  return title ? title : node.class_type;
}

/** Node ids in the order people expect: numeric ids by value ("2" before "10"), then the rest. */
export function sortedNodeIds(workflow: ApiWorkflow): string[] {
  return Object.keys(workflow).sort((a, b) => {
    const na = /^\d+$/.test(a) ? Number(a) : Number.NaN;
    const nb = /^\d+$/.test(b) ? Number(b) : Number.NaN;
    if (!Number.isNaN(na) && !Number.isNaN(nb)) return na - nb;
    if (!Number.isNaN(na)) return -1;
    if (!Number.isNaN(nb)) return 1;
    return a.localeCompare(b);
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function kind(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}
