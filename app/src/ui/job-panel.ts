/**
 * The selected job: its id and status, live progress with a Cancel button while it runs, then
 * its results. Progress arrives several times a second, so the panel keeps its elements and
 * updates them in place: the focused Cancel button stays focused, and a finished job's results
 * (a playing video, a turned 3D view) are built once.
 */

import { isFinalStatus, parseJobError } from "../api/index.js";
import { h, replaceChildren } from "./dom.js";
import type { JobController } from "./job-controller.js";
import type { JobRecord } from "./job-store.js";
import { statusBadge, statusText } from "./jobs-list.js";
import { progressView } from "./progress-view.js";
import { type Rendered, errorView, resultsView } from "./results-view.js";

export class JobPanel {
  private readonly _controller: JobController;
  private readonly _placeholder = h(
    "p",
    { class: "muted" },
    "Run a workflow to see its progress and results here.",
  );
  private readonly _header = h("div", { class: "job-header" });
  private readonly _progress = h("div", { class: "job-progress" });
  private readonly _cancel: HTMLButtonElement;
  private readonly _clientError = h("div", { class: "client-error", role: "alert" });
  private readonly _results = h("div", { class: "job-results" });
  /**
   * Screen readers hear status changes ("txt2img: running", "... completed") from here, not each
   * progress tick: the bar itself carries the percentage for whoever looks at it.
   */
  private readonly _announce = h("p", { class: "visually-hidden", role: "status" });
  private _announced = "";
  private _shownId: string | null = null;
  private _rendered: Rendered | null = null;
  private _clientErrorText: string | null = null;

  constructor(root: HTMLElement, controller: JobController) {
    this._controller = controller;
    this._cancel = h(
      "button",
      {
        type: "button",
        class: "danger",
        "data-testid": "cancel",
        onclick: () => {
          const id = this._shownId;
          if (id === null) return;
          this._cancel.disabled = true;
          // "Stopping" until the job's own status says CANCELLED (the poller sees it), not when
          // the cancel request returns.
          this._cancel.textContent = "Stopping...";
          void this._controller.cancel(id).then((accepted) => {
            if (!accepted && this._shownId === id) {
              this._cancel.disabled = false;
              this._cancel.textContent = "Cancel job";
            }
          });
        },
      },
      "Cancel job",
    );
    replaceChildren(
      root,
      this._placeholder,
      this._header,
      this._announce,
      h("div", { class: "job-live" }, this._progress),
      this._cancel,
      this._clientError,
      this._results,
    );
    this.show(undefined);
  }

  /** A failure before any job existed (the submit itself was refused). */
  showSubmitError(message: string): void {
    this.show(undefined);
    this._placeholder.hidden = true;
    replaceChildren(this._results, errorView("Not submitted", parseJobError(message), null));
  }

  show(record: JobRecord | undefined): void {
    if (record?.id !== this._shownId) {
      this._rendered?.dispose();
      this._rendered = null;
      this._results.replaceChildren();
      this._cancel.disabled = false;
      this._cancel.textContent = "Cancel job";
      this._shownId = record?.id ?? null;
    }
    this._placeholder.hidden = record !== undefined;
    this._header.hidden = record === undefined;
    if (record === undefined) {
      this._progress.replaceChildren();
      this._cancel.hidden = true;
      this._setClientError(null);
      return;
    }
    replaceChildren(
      this._header,
      statusBadge(record.status, record.progress),
      h("span", { class: "job-name" }, record.workflowName),
      h("code", { class: "job-id", "data-testid": "job-id" }, record.id),
    );
    const announcement = `${record.workflowName}: ${statusText(record.status, record.progress)}`;
    if (announcement !== this._announced) {
      this._announced = announcement;
      this._announce.textContent = announcement;
    }
    const running = !isFinalStatus(record.status);
    this._cancel.hidden = !running;
    if (running) replaceChildren(this._progress, progressView(record.status, record.progress));
    else if (record.outcome === null && record.clientError === null) {
      replaceChildren(this._progress, h("p", { class: "muted" }, "Reading the result..."));
    } else this._progress.replaceChildren();
    this._setClientError(record.clientError);
    if (record.outcome !== null && this._rendered === null) {
      this._rendered = resultsView(record.outcome, record.state);
      replaceChildren(this._results, this._rendered.element);
    }
  }

  private _setClientError(message: string | null): void {
    if (message === this._clientErrorText) return;
    this._clientErrorText = message;
    this._clientError.hidden = message === null;
    if (message === null) {
      this._clientError.replaceChildren();
      return;
    }
    const id = this._shownId;
    replaceChildren(
      this._clientError,
      h("p", {}, `This page lost track of the job: ${message}`),
      h(
        "button",
        { type: "button", class: "secondary", onclick: () => id !== null && this._controller.follow(id) },
        "Try again",
      ),
    );
  }
}
