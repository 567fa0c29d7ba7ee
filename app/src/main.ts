/**
 * The page: wires the workflow picker, the generated form, the job controller and the views
 * together. Each piece lives in its own module under ui/, workflow/ and api/; this file only
 * connects them.
 */

import "./styles.css";
import { type ApiWorkflow, REQUEST_LIMIT_BYTES, RunPodClient, isFinalStatus } from "./api/index.js";
import { type FormValues, type WorkflowForm, buildForm } from "./workflow/form.js";
import { WorkflowFormatError, parseWorkflowText } from "./workflow/graph.js";
import type { FileAttachment } from "./workflow/attachments.js";
import { prepareJobInput } from "./workflow/job-input.js";
import { JobOptionsError, jobOptionsInput } from "./workflow/job-options.js";
import {
  type AppInfo,
  fetchSidecarText,
  fetchWorkflowList,
  fetchWorkflowText,
  saveExposed,
} from "./ui/app-server.js";
import { downscaleAttachment, sideScale } from "./ui/downscale.js";
import { mountModelLists } from "./ui/model-lists.js";
import { exposedEditor } from "./ui/exposed-editor.js";
import {
  type ExposedInputs,
  ExposedInputsError,
  defaultExposed,
  exposedForm,
  parseExposedInputs,
  sidecarPath,
} from "./workflow/exposed.js";
import { alertText, byId, h, replaceChildren } from "./ui/dom.js";
import { dropZone } from "./ui/drop-zone.js";
import { FormView } from "./ui/form-view.js";
import { connectionNotice, showEndpoint, watchHealth } from "./ui/header.js";
import { JobController } from "./ui/job-controller.js";
import { JobOptionsView } from "./ui/job-options-view.js";
import { JobPanel } from "./ui/job-panel.js";
import { JobStore } from "./ui/job-store.js";
import { renderJobsList } from "./ui/jobs-list.js";
import { loadDraft, saveDraft } from "./ui/draft.js";
import { splatPreview } from "./ui/splat-preview.js";

// The page talks to the endpoint only through the app server, which adds the API key.
const api = new RunPodClient({ endpointUrl: "/api/runpod", onRetry: connectionNotice(byId("connection")) });
const store = new JobStore(window.sessionStorage);
const controller = new JobController(api, store);

const select = byId<HTMLSelectElement>("workflow-select");
const workflowMessage = byId("workflow-message");
const formView = new FormView(byId("workflow-form-fields"));
const optionsView = new JobOptionsView();
const submitButton = byId<HTMLButtonElement>("submit");
const submitMessage = byId("submit-message");
const jobPanel = new JobPanel(byId("job-panel"), controller);
const jobsList = byId("jobs-list");

let info: AppInfo | null = null;
let current: {
  name: string;
  text: string;
  listedPath: string;
  workflow: ApiWorkflow;
  /** Every editable input. */
  form: WorkflowForm;
  /** The workflow's exposed inputs (its sidecar), if it has one. */
  exposed: ExposedInputs | null;
  /** What the page shows and submits: the exposed inputs, or the full form. */
  shown: WorkflowForm;
} | null = null;
let showAll = false;
const toolbar = byId("form-toolbar");
let selectedJobId: string | null = null;

function loadWorkflow(
  name: string,
  text: string,
  listedPath = "",
  values: FormValues | null = null,
  exposedText: string | null = null,
): void {
  let workflow: ApiWorkflow;
  try {
    workflow = parseWorkflowText(text);
  } catch (error) {
    if (!(error instanceof WorkflowFormatError)) throw error;
    // The refused file replaces the previous workflow: Run must not quietly run the old one.
    current = null;
    saveDraft(window.sessionStorage, null);
    formView.clear();
    toolbar.replaceChildren();
    submitButton.disabled = true;
    replaceChildren(workflowMessage, alertText(error.message));
    workflowMessage.dataset.state = "error";
    return;
  }
  const form = buildForm(workflow);
  let exposed: ExposedInputs | null = null;
  let exposedProblem: string | null = null;
  if (exposedText !== null) {
    try {
      exposed = parseExposedInputs(exposedText, form);
    } catch (error) {
      if (!(error instanceof ExposedInputsError)) throw error;
      exposedProblem = `${sidecarPath(listedPath)}: ${error.message}; showing every input.`;
    }
  }
  showAll = false;
  current = { name, text, listedPath, workflow, form, exposed, shown: form };
  showForm();
  optionsView.suggestFor(workflow);
  if (values !== null) formView.setValues(values);
  keepDraft();
  if (exposedProblem !== null) toolbar.append(alertText(exposedProblem));
  const nodes = Object.keys(workflow).length;
  replaceChildren(workflowMessage, `Loaded ${name}: ${nodes} node${nodes === 1 ? "" : "s"}.`);
  workflowMessage.dataset.state = "ok";
  submitButton.disabled = false;
  replaceChildren(submitMessage);
}

/** The exposed inputs (or every input), and the bar that switches and edits them. */
function showForm(): void {
  if (current === null) return;
  const { exposed, form, listedPath } = current;
  current.shown = exposed !== null && !showAll ? exposedForm(form, exposed) : form;
  formView.show(current.shown);
  const total = form.groups.reduce((n, g) => n + g.fields.length, 0);
  const parts: Array<Node | string> = [
    exposed === null
      ? `All ${total} inputs. `
      : showAll
        ? `All ${total} inputs (this workflow exposes ${exposed.inputs.length}). `
        : `${exposed.inputs.length} chosen inputs of ${total}. `,
  ];
  if (exposed !== null) {
    parts.push(
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          "data-testid": "toggle-all-inputs",
          onclick: () => {
            showAll = !showAll;
            showForm();
          },
        },
        showAll ? "Show chosen inputs" : "Show all inputs",
      ),
    );
  }
  parts.push(
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        "data-testid": "choose-inputs",
        disabled: listedPath === "",
        title:
          listedPath === "" ? "Only workflows from the list can keep exposed inputs (saved beside them)" : "",
        onclick: () => editExposed(),
      },
      "Choose inputs...",
    ),
  );
  replaceChildren(toolbar, ...parts);
}

function editExposed(): void {
  if (current === null) return;
  const { form, exposed, listedPath } = current;
  const editor = exposedEditor(
    form,
    exposed ?? defaultExposed(form),
    (chosen) => {
      void saveExposed(listedPath, chosen).then((problem) => {
        if (problem !== null) {
          replaceChildren(toolbar, alertText(`Not saved: ${problem}`));
          return;
        }
        if (current === null) return;
        current.exposed = chosen;
        showAll = false;
        showForm();
      });
    },
    () => showForm(),
  );
  replaceChildren(toolbar, "Choose the inputs to show:");
  byId("workflow-form-fields").replaceChildren(editor);
}

/** The workflow and its form values, kept for a reload (see ui/draft.ts). */
function keepDraft(): void {
  if (current === null) return;
  const { name, text, listedPath } = current;
  saveDraft(window.sessionStorage, { name, text, listedPath, values: formView.values({ peek: true }) });
}

async function pickListed(path: string): Promise<void> {
  if (path === "") return;
  try {
    const [text, exposedText] = await Promise.all([
      fetchWorkflowText(path),
      fetchSidecarText(sidecarPath(path)),
    ]);
    loadWorkflow(path.replace(/\.json$/i, ""), text, path, null, exposedText);
  } catch (error) {
    replaceChildren(workflowMessage, alertText((error as Error).message));
  }
}

async function submit(): Promise<void> {
  if (current === null || submitButton.disabled) return;
  formView.clearProblems();
  replaceChildren(submitMessage);
  const prepared = prepareJobInput(
    current.workflow,
    current.shown,
    formView.values(),
    formView.attachments(),
    // The page submits through /run: RunPod's 10 MB, or the app server's own limit if lower.
    Math.min(info?.maxBodyBytes ?? Infinity, REQUEST_LIMIT_BYTES.run),
  );
  if (!prepared.ok) {
    formView.showProblems(prepared.problems);
    replaceChildren(submitMessage, alertText(prepared.message));
    const tooLarge = prepared.tooLarge;
    if (
      tooLarge !== undefined &&
      formView.attachments().some((a) => "data" in a && a.data.startsWith("data:image/"))
    ) {
      submitMessage.append(
        h(
          "button",
          {
            type: "button",
            class: "secondary",
            "data-testid": "downscale",
            onclick: () => void shrinkAttachments(tooLarge.sizeBytes, tooLarge.maxBytes),
          },
          "Make the input images smaller to fit, then run",
        ),
      );
    }
    return;
  }
  let options;
  try {
    options = jobOptionsInput(optionsView.values());
    optionsView.markTimeout(false);
  } catch (error) {
    if (!(error instanceof JobOptionsError)) throw error;
    optionsView.markTimeout(true);
    replaceChildren(submitMessage, alertText(error.message));
    return;
  }
  submitButton.disabled = true;
  submitButton.textContent = "Submitting...";
  try {
    const id = await controller.submit({ ...prepared.input, ...options }, current.name);
    selectJob(id);
  } catch (error) {
    jobPanel.showSubmitError((error as Error).message);
    selectedJobId = null;
  } finally {
    submitButton.disabled = false;
    submitButton.textContent = "Run workflow";
  }
}

/** Redraw the attached images smaller until the request fits (a few passes at most), then submit. */
async function shrinkAttachments(sizeBytes: number, maxBytes: number): Promise<void> {
  replaceChildren(submitMessage, "Making the input images smaller...");
  // Only attached files can be redrawn; an image by URL is fetched by the worker, not sent.
  const images = formView
    .attachments()
    .filter((a): a is FileAttachment => "data" in a && a.data.startsWith("data:image/"));
  const imageBytes = images.reduce((n, a) => n + a.data.length, 0);
  // Everything else in the request stays as it is; the images get what is left, with a margin.
  const budget = maxBytes * 0.95 - (sizeBytes - imageBytes);
  if (budget <= 0) {
    replaceChildren(submitMessage, alertText("The request is too large even without its images."));
    return;
  }
  const scale = sideScale(imageBytes, budget);
  for (const attachment of images) formView.replaceAttachment(await downscaleAttachment(attachment, scale));
  await submit();
}

function selectJob(id: string): void {
  selectedJobId = id;
  const record = store.get(id);
  // A job restored after a reload has no result here yet: RunPod still has it for 30 minutes.
  if (record !== undefined && record.outcome === null) controller.follow(id);
  redraw();
}

function redraw(): void {
  renderJobsList(jobsList, store.list(), selectedJobId, selectJob);
  if (selectedJobId !== null) jobPanel.show(store.get(selectedJobId));
}

async function start(): Promise<void> {
  byId("workflow-drop").append(
    dropZone({
      text: "Drop an exported API-format workflow (.json) here, or press to choose a file",
      accept: ".json,application/json",
      label: "Workflow file",
      testId: "workflow-file",
      onFile: (file) => {
        select.value = "";
        void file.text().then((text) => loadWorkflow(file.name.replace(/\.json$/i, ""), text));
      },
    }),
  );
  splatPreview(byId("splat-preview"));
  byId("job-options").append(optionsView.element);
  select.addEventListener("change", () => void pickListed(select.value));
  submitButton.addEventListener("click", () => void submit());
  // Ctrl/Cmd+Enter runs from anywhere in the form, as in ComfyUI.
  byId("workflow-form").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      void submit();
    }
  });
  byId("workflow-form").addEventListener("submit", (event) => event.preventDefault());
  byId("workflow-form").addEventListener("input", keepDraft);
  byId("workflow-form").addEventListener("change", keepDraft);
  store.subscribe(redraw);
  // Jobs restored from an earlier page load that were still running: follow them to their end.
  for (const record of store.list()) {
    if (!isFinalStatus(record.status)) controller.follow(record.id);
  }
  window.addEventListener("pagehide", () => controller.stopAll());
  redraw();
  jobPanel.show(undefined);

  void showEndpoint(byId("endpoint-info")).then((answer) => {
    info = answer;
    if (answer !== null) optionsView.setServerDefault(answer.storage.output, answer.storage.bucket);
  });
  void mountModelLists(byId("model-lists"));
  const health = watchHealth(byId("health"), api);
  let lastStatuses = "";
  store.subscribe(() => {
    const statuses = store
      .list()
      .map((record) => record.status)
      .join();
    if (statuses !== lastStatuses) health.nudge();
    lastStatuses = statuses;
  });

  try {
    const workflows = await fetchWorkflowList();
    select.append(...workflows.map((entry) => h("option", { value: entry.path }, entry.name)));
    const draft = loadDraft(window.sessionStorage);
    if (draft !== null) {
      // A reload: the workflow and values being edited, not the default.
      select.value = workflows.some((entry) => entry.path === draft.listedPath) ? draft.listedPath : "";
      const exposedText =
        draft.listedPath === "" ? null : await fetchSidecarText(sidecarPath(draft.listedPath));
      loadWorkflow(draft.name, draft.text, draft.listedPath, draft.values, exposedText);
      workflowMessage.append(" Restored after a reload (dropped images are not kept: drop them again).");
      return;
    }
    const first = workflows.find((entry) => entry.name === "simple_test") ?? workflows[0];
    if (first !== undefined) {
      select.value = first.path;
      await pickListed(first.path);
    } else {
      replaceChildren(
        workflowMessage,
        "No workflows in the repo's workflows/ folder: drop an exported one above.",
      );
    }
  } catch (error) {
    replaceChildren(workflowMessage, alertText((error as Error).message));
  }
}

void start();
