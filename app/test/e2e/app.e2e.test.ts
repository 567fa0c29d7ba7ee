/**
 * The app in a real browser, through the real chain: Chromium -> app server -> local endpoint ->
 * worker -> ComfyUI test server. Nothing is mocked; each job really runs.
 *
 * With SAVE_SCREENSHOTS=1 (npm run screenshots) the main states are saved under app/screenshots/
 * for README.md; otherwise under test-results/ (not committed).
 */

import { cp, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Locator, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Stack, startStack } from "../../scripts/stack.js";
import { type Browser, launchBrowser } from "./browser.js";
import { SHARP_SPLATS, writeSharpPly } from "./splat-file.js";

const APP_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const FIXTURES = path.join(APP_DIR, "test", "e2e", "fixtures");
const SHOTS =
  process.env.SAVE_SCREENSHOTS === "1"
    ? path.join(APP_DIR, "screenshots")
    : path.join(APP_DIR, "test-results");
// Each KSampler step sleeps this long on the test server: long enough to watch, short enough for CI.
const STEP_DELAY_S = 0.15;
const JOB_TIMEOUT_MS = 30_000;

let stack: Stack;
let browser: Browser;
let downloads: string;

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true });
  downloads = await mkdtemp(path.join(tmpdir(), "app-e2e-downloads-"));
  // Progress every 0.2 s (the worker's default is 1 s), so the test sees many steps in a short job.
  stack = await startStack({
    appDir: APP_DIR,
    stepDelayS: STEP_DELAY_S,
    copyWorkflows: true,
    // The pasted-URL test serves its image on loopback, which the worker's URL guard refuses
    // unless the operator's allow-list names it.
    workerEnv: { COMFY_PROGRESS_INTERVAL_S: "0.2", INPUT_URL_ALLOWLIST: "127.0.0.1/32" },
  });
  browser = await launchBrowser(downloads);
});

afterAll(async () => {
  await browser?.close();
  // The servers' logs outlive the stack's temporary folder, for whoever reads a failed run.
  if (stack !== undefined) {
    await cp(stack.logDir, path.join(APP_DIR, "test-results", "stack-logs"), { recursive: true });
  }
  await stack?.stop();
  await rm(downloads, { recursive: true, force: true });
});

/** A fresh tab (so a fresh session) on the app, with the default workflow loaded. */
async function openApp(): Promise<Page> {
  const page = await browser.context.newPage();
  const problems: string[] = [];
  page.on("pageerror", (error) => problems.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(message.text());
  });
  (page as Page & { problems: string[] }).problems = problems;
  await page.goto(stack.appUrl);
  await expect.poll(() => page.getByTestId("workflow-message").textContent()).toMatch(/^Loaded simple_test/);
  return page;
}

/** Console errors and uncaught exceptions seen on the page: a clean run has none. */
function pageProblems(page: Page): string[] {
  return (page as Page & { problems: string[] }).problems;
}

async function loadListed(page: Page, name: string): Promise<void> {
  await page.selectOption("#workflow-select", `${name}.json`);
  await expect
    .poll(() => page.getByTestId("workflow-message").textContent())
    .toMatch(new RegExp(`^Loaded ${name}`));
}

async function loadFile(page: Page, fixture: string): Promise<void> {
  await page.getByTestId("workflow-file").setInputFiles(path.join(FIXTURES, fixture));
}

/** Load a fixture workflow and wait until the page says it loaded it ("Loaded <name>..."). */
async function loadWorkflow(page: Page, fixture: string): Promise<void> {
  await loadFile(page, fixture);
  const name = fixture.replace(/\.json$/, "");
  await expect
    .poll(() => page.getByTestId("workflow-message").textContent())
    .toMatch(new RegExp(`^Loaded ${name}`));
}

function field(page: Page, key: string): Locator {
  return page.locator(`[name="${key}"]`);
}

/** Click Run and return the new job's id once the page shows it. */
async function run(page: Page): Promise<string> {
  const before = await page.locator(".job-item").count();
  await page.click("#submit");
  await expect.poll(() => page.locator(".job-item").count(), { timeout: 10_000 }).toBe(before + 1);
  return (await page.locator('.job-item[aria-current="true"]').getAttribute("data-job-id")) ?? "";
}

async function waitForStatus(page: Page, id: string, status: string): Promise<void> {
  await page
    .locator(`.job-item[data-job-id="${id}"][data-status="${status}"]`)
    .waitFor({ timeout: JOB_TIMEOUT_MS });
}

/** What the endpoint itself says about a job, asked directly with the key (as the app server does). */
async function endpointStatus(id: string): Promise<{ status: string; error?: string; output?: unknown }> {
  const response = await fetch(`${stack.endpointUrl}/status/${id}`, {
    headers: { Authorization: `Bearer ${stack.apiKey}` },
  });
  return (await response.json()) as { status: string; error?: string; output?: unknown };
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, name) });
}

/** How many pixels of a canvas (as shown on screen) are clearly orange or green. */
async function countPixels(canvas: Locator, colour: "orange" | "green"): Promise<number> {
  const png = (await canvas.screenshot({ timeout: 90_000 })).toString("base64");
  return canvas.page().evaluate(
    async ({ data, colour }) => {
      const img = new Image();
      img.src = `data:image/png;base64,${data}`;
      await img.decode();
      const c = document.createElement("canvas");
      c.width = img.width;
      c.height = img.height;
      const context = c.getContext("2d") as CanvasRenderingContext2D;
      context.drawImage(img, 0, 0);
      const pixels = context.getImageData(0, 0, c.width, c.height).data;
      let count = 0;
      for (let i = 0; i < pixels.length; i += 4) {
        const [r, g, b] = [pixels[i] as number, pixels[i + 1] as number, pixels[i + 2] as number];
        if (colour === "orange" ? r > 120 && r > b + 60 : g > 80 && g > r + 40 && g > b + 30) count++;
      }
      return count;
    },
    { data: png, colour },
  );
}

/**
 * The colour at the centre of an element as shown on screen: for images from another origin (a
 * bucket), which a canvas may not read back.
 */
async function shownCentrePixel(element: Locator): Promise<number[]> {
  const png = (await element.screenshot()).toString("base64");
  return element.page().evaluate(async (data) => {
    const img = new Image();
    img.src = `data:image/png;base64,${data}`;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.width;
    c.height = img.height;
    const context = c.getContext("2d") as CanvasRenderingContext2D;
    context.drawImage(img, 0, 0);
    return [...context.getImageData(img.width >> 1, img.height >> 1, 1, 1).data];
  }, png);
}

/** True when `upper` ends above where `lower` starts on the page (and comes first in the DOM). */
async function isAbove(upper: Locator, lower: Locator): Promise<boolean> {
  const [a, b] = [await upper.boundingBox(), await lower.boundingBox()];
  if (a === null || b === null) return false;
  const first = await upper.evaluate(
    (element, other) =>
      (element.compareDocumentPosition(other as Node) & Node.DOCUMENT_POSITION_FOLLOWING) !== 0,
    await lower.elementHandle(),
  );
  return first && a.y + a.height <= b.y + 1;
}

/** The colour at the centre of a displayed <img>, read back through a 2D canvas. */
async function centrePixel(image: Locator): Promise<number[]> {
  return image.evaluate(async (element) => {
    const img = element as HTMLImageElement;
    await img.decode();
    const canvas = document.createElement("canvas");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const context = canvas.getContext("2d") as CanvasRenderingContext2D;
    context.drawImage(img, 0, 0);
    return [...context.getImageData(img.naturalWidth >> 1, img.naturalHeight >> 1, 1, 1).data];
  });
}

describe("running workflows", () => {
  it("submits simple_test and shows the image with its timings", async () => {
    const page = await openApp();
    await expect.poll(() => page.getByTestId("health").textContent()).toMatch(/Workers: 1 idle/);
    const id = await run(page);
    await waitForStatus(page, id, "COMPLETED");
    const image = page.getByTestId("output-image");
    await image.waitFor();
    expect(await image.evaluate((img) => (img as HTMLImageElement).naturalWidth)).toBe(512);
    // simple_test inverts a 0x3399FF image.
    expect(await centrePixel(image)).toEqual([0xff - 0x33, 0xff - 0x99, 0xff - 0xff, 255]);
    const timings = await page.getByTestId("timings").textContent();
    expect(timings).toMatch(/execution/);
    expect(timings).toMatch(/total/);
    await shot(page, "result-image.png");
    expect(pageProblems(page)).toEqual([]);
    await page.close();
  });

  it("shows outputs stored in the local bucket (s3_url, read across origins)", async () => {
    const page = await openApp();
    await page.getByTestId("job-output").selectOption("s3");
    const id = await run(page);
    await waitForStatus(page, id, "COMPLETED");
    const result = (await endpointStatus(id)).output as { images: Array<{ type: string; data: string }> };
    expect(result.images[0]?.type).toBe("s3_url");
    expect(result.images[0]?.data.startsWith(`${stack.s3Url}/comfy-outputs/`)).toBe(true);
    const image = page.getByTestId("output-image");
    await image.waitFor();
    expect(await image.getAttribute("src")).toBe(result.images[0]?.data);
    expect(await shownCentrePixel(image)).toEqual([0xff - 0x33, 0xff - 0x99, 0xff - 0xff, 255]);
    // A .ply from the bucket is fetched by the page (CORS) and drawn.
    await loadWorkflow(page, "splat.json");
    const splatJob = await run(page);
    await waitForStatus(page, splatJob, "COMPLETED");
    const files = ((await endpointStatus(splatJob)).output as { files: Array<{ type: string }> }).files;
    expect(files[0]?.type).toBe("s3_url");
    const media = page.locator(".job-results .output-splat .output-media");
    await expect.poll(() => media.getAttribute("data-state"), { timeout: 15_000 }).toBe("ready");
    await expect
      .poll(() => countPixels(media.locator("canvas"), "orange"), { timeout: 15_000 })
      .toBeGreaterThan(50);
    await shot(page, "result-s3.png");
    expect(pageProblems(page)).toEqual([]);
    await page.close();
  });

  it("runs a preview-only workflow: include_temp is ticked for it", async () => {
    const page = await openApp();
    expect(await page.getByTestId("job-include-temp").isChecked()).toBe(false);
    await loadWorkflow(page, "preview_only.json");
    expect(await page.getByTestId("job-include-temp").isChecked()).toBe(true);
    expect(await page.getByTestId("options-note").textContent()).toMatch(/only previews/);
    await page.getByTestId("job-timeout").fill("30");
    const id = await run(page);
    await waitForStatus(page, id, "COMPLETED");
    const image = page.getByTestId("output-image");
    await image.waitFor();
    expect(await centrePixel(image)).toEqual([0, 255, 0, 255]);
    await page.close();
  });

  it("shows the worker's warnings above the results they concern", async () => {
    const page = await openApp();
    // Two branches, one with width 0: ComfyUI runs the good one and the worker says what it skipped.
    await loadWorkflow(page, "partly_broken.json");
    const id = await run(page);
    await waitForStatus(page, id, "COMPLETED");
    const { output } = await endpointStatus(id);
    const reported = (output as { errors?: string[] }).errors ?? [];
    expect(reported.length).toBeGreaterThan(0);
    expect(reported[0]).toMatch(/^skipped by ComfyUI: /);
    const warnings = page.locator(".job-results .warnings");
    for (const line of reported) expect(await warnings.textContent()).toContain(line);
    const kept = page.locator(".job-results .outputs img");
    await expect.poll(() => kept.count()).toBe(1);
    expect(await centrePixel(kept)).toEqual([255, 102, 0, 255]);
    expect(await isAbove(warnings, page.locator(".job-results .outputs"))).toBe(true);
    await shot(page, "warnings.png");
    expect(pageProblems(page)).toEqual([]);
    await page.close();
  });

  it("keeps the header's health at most 5 s old, and checks it again when a job starts and ends", async () => {
    const page = await openApp();
    const health = page.locator("#health");
    const checks: number[] = [];
    page.on("request", (request) => {
      if (request.url().endsWith("/api/runpod/health")) checks.push(Date.now());
    });
    const age = async (): Promise<number> =>
      Date.now() - Number(await health.getAttribute("data-checked-at"));
    await expect.poll(() => health.getAttribute("data-state")).toBe("ok");
    // Idle: sampled over 12 s, the line is never older than the 5 s interval (plus a request's time).
    for (let i = 0; i < 8; i++) {
      expect(await age()).toBeLessThan(6_500);
      await page.waitForTimeout(1_500);
    }
    // Submit right after a periodic check, so the next periodic one is ~5 s away: a check within
    // 2.5 s can only be the one the submit asked for.
    const before = checks.length;
    await expect.poll(() => checks.length, { timeout: 7_000, interval: 50 }).toBeGreaterThan(before);
    // When the page shows the job finished, by the page's own clock (the test only polls for it).
    await page.evaluate(() => {
      const seen = new MutationObserver(() => {
        if (document.querySelector('.job-item[data-status="COMPLETED"]') === null) return;
        (window as unknown as { completedAt: number }).completedAt = Date.now();
        seen.disconnect();
      });
      seen.observe(document.body, { subtree: true, attributes: true, childList: true });
    });
    const submitted = Date.now();
    const id = await run(page);
    await expect
      .poll(() => checks.some((at) => at > submitted + 200 && at < submitted + 2_500), { timeout: 3_000 })
      .toBe(true);
    await waitForStatus(page, id, "COMPLETED");
    const ended = await page.evaluate(() => (window as unknown as { completedAt: number }).completedAt);
    await expect
      .poll(() => checks.some((at) => at >= ended && at < ended + 2_500), { timeout: 3_000 })
      .toBe(true);
    await expect.poll(() => health.textContent(), { timeout: 3_000 }).toMatch(/0 in queue, 0 in workers/);
    expect(await age()).toBeLessThan(6_500);
    expect(pageProblems(page)).toEqual([]);
    await page.close();
  });

  it("refuses a request over RunPod's 10 MB /run limit before sending it, saying by how much", async () => {
    const page = await openApp();
    await loadWorkflow(page, "invert_input.json");
    // 8 MB of image bytes are 10.7 MB as base64.
    await page.getByTestId("image-input-10").setInputFiles({
      name: "huge.png",
      mimeType: "image/png",
      buffer: Buffer.alloc(8 * 1024 * 1024, 7),
    });
    await expect.poll(() => page.locator(".image-preview img").count()).toBe(1);
    await page.click("#submit");
    await expect
      .poll(() => page.getByTestId("submit-message").textContent())
      .toMatch(/This request is 10\.7 MB, over the 10\.0 MB limit \(RunPod takes at most 10 MB on \/run/);
    expect(await page.locator(".job-item").count()).toBe(0);
    await page.close();
  });

  it("refuses a timeout that is not a number of seconds", async () => {
    const page = await openApp();
    await page.getByTestId("job-timeout").fill("soon");
    await page.click("#submit");
    await expect
      .poll(() => page.getByTestId("submit-message").textContent())
      .toMatch(/timeout must be a number/);
    expect(await page.getByTestId("job-timeout").getAttribute("aria-invalid")).toBe("true");
    expect(await page.locator(".job-item").count()).toBe(0);
    await page.close();
  });

  it("says at once that the endpoint is not answering and that it tries again, instead of going quiet", async () => {
    const page = await openApp();
    // The first /run answers 502 as the app server does when RunPod cannot be reached.
    let refused = 0;
    await page.route("**/api/runpod/run", async (route) => {
      if (refused++ === 0) {
        await route.fulfill({
          status: 502,
          contentType: "application/json",
          body: JSON.stringify({ error: "the RunPod endpoint could not be reached: ECONNREFUSED" }),
        });
      } else await route.continue();
    });
    const started = Date.now();
    await page.click("#submit");
    const notice = page.getByTestId("connection");
    await notice.waitFor({ state: "visible", timeout: 2_000 });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await notice.textContent()).toMatch(
      /^The endpoint did not answer \/run \(HTTP 502: the RunPod endpoint could not be reached: ECONNREFUSED\); trying again in \d+\.\d s \(attempt 2 of 5\)\.$/,
    );
    // The retry goes through and the job runs.
    await expect.poll(() => page.locator(".job-item").count(), { timeout: 15_000 }).toBe(1);
    const id = (await page.locator(".job-item").first().getAttribute("data-job-id")) ?? "";
    await waitForStatus(page, id, "COMPLETED");
    await page.close();
  });

  it("downloads a result byte for byte", async () => {
    const page = await openApp();
    const id = await run(page);
    await waitForStatus(page, id, "COMPLETED");
    const card = page.locator(".output-card").first();
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      card.getByTestId("download").click(),
    ]);
    expect(download.suggestedFilename()).toBe(await card.getAttribute("data-filename"));
    const saved = await readFile(await download.path());
    const result = (await endpointStatus(id)).output as {
      images: Array<{ data: string; size_bytes: number }>;
    };
    expect(saved.equals(Buffer.from(result.images[0]?.data ?? "", "base64"))).toBe(true);
    expect(saved.length).toBe(result.images[0]?.size_bytes);
    expect(saved.subarray(1, 4).toString()).toBe("PNG");
    await page.close();
  });

  it("shows live progress with stage, node and steps", async () => {
    const page = await openApp();
    await loadListed(page, "txt2img");
    await field(page, "3.steps").fill("40");
    await field(page, "6.text").fill("a lighthouse at dusk, oil painting");
    // Record every progress line the page shows, as it shows it.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { seen: string[] }).seen = seen;
      new MutationObserver(() => {
        const text = document.querySelector('[data-testid="progress-text"]')?.textContent;
        if (text && seen.at(-1) !== text) seen.push(text);
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    const id = await run(page);
    await expect
      .poll(() => page.getByTestId("progress-text").textContent(), { timeout: JOB_TIMEOUT_MS })
      .toMatch(/Running KSampler \(node 3\), step [1-3]\d of 40/);
    const bar = page.getByTestId("progress-bar");
    expect(Number(await bar.getAttribute("aria-valuenow"))).toBeGreaterThan(0);
    await shot(page, "progress.png");
    await waitForStatus(page, id, "COMPLETED");
    await page.getByTestId("output-image").waitFor();
    const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
    const steps = seen
      .map((text) => /step (\d+) of 40/.exec(text)?.[1])
      .filter((s): s is string => s !== undefined)
      .map(Number);
    expect(new Set(steps).size).toBeGreaterThanOrEqual(5);
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    const percents = seen
      .map((text) => /^(\d+)%/.exec(text)?.[1])
      .filter((p): p is string => p !== undefined)
      .map(Number);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    await page.close();
  });

  it("shows a job the worker holds behind another as waiting in the worker, then its result", async () => {
    // The stack's one worker holds two jobs (COMFY_PIPELINE_DEPTH, default 2): the second is taken,
    // uploaded and queued in ComfyUI while the first runs.
    const page = await openApp();
    await loadListed(page, "txt2img");
    await field(page, "3.steps").fill("40");
    const first = await run(page);
    await expect
      .poll(() => page.getByTestId("progress-text").textContent(), { timeout: JOB_TIMEOUT_MS })
      .toMatch(/Running KSampler \(node 3\), step \d+ of 40/);
    await loadListed(page, "simple_test");
    const second = await run(page);
    const card = page.locator(`.job-item[data-job-id="${second}"]`);
    await expect
      .poll(() => page.getByTestId("progress-text").textContent(), { timeout: JOB_TIMEOUT_MS })
      .toBe("0% · Waiting in the worker, queued behind another job in this worker");
    expect(await card.getAttribute("data-status")).toBe("IN_PROGRESS");
    expect(await card.getByTestId("status-badge").textContent()).toBe("waiting in worker");
    const held = await endpointStatus(second);
    expect(held.status).toBe("IN_PROGRESS");
    expect(held.output).toMatchObject({ stage: "waiting" });
    // The first job is still the one running.
    const running = page.locator(`.job-item[data-job-id="${first}"]`);
    expect(await running.getAttribute("data-status")).toBe("IN_PROGRESS");
    expect(await running.getByTestId("status-badge").textContent()).toBe("running");
    await shot(page, "waiting-in-worker.png");
    await waitForStatus(page, first, "COMPLETED");
    await waitForStatus(page, second, "COMPLETED");
    expect(await card.getByTestId("status-badge").textContent()).toBe("completed");
    const image = page.getByTestId("output-image");
    await image.waitFor();
    expect(await centrePixel(image)).toEqual([0xff - 0x33, 0xff - 0x99, 0xff - 0xff, 255]);
    expect(pageProblems(page)).toEqual([]);
    await page.close();
  });

  it("cancels a slow job, and the worker is free again at once", async () => {
    const page = await openApp();
    await loadListed(page, "txt2img");
    await field(page, "3.steps").fill("2000");
    const id = await run(page);
    await expect
      .poll(() => page.getByTestId("progress-text").textContent(), { timeout: JOB_TIMEOUT_MS })
      .toMatch(/step \d+ of 2000/);
    const started = Date.now();
    await page.getByTestId("cancel").click();
    // "Stopping" (not "cancelled") until the job's own status says so.
    expect(await page.getByTestId("cancel").textContent()).toBe("Stopping...");
    await waitForStatus(page, id, "CANCELLED");
    expect(await page.getByTestId("job-cancelled").textContent()).toMatch(/may keep ComfyUI busy/);
    expect(Date.now() - started).toBeLessThan(15_000);
    await page.getByTestId("job-cancelled").waitFor();
    expect(await page.getByTestId("cancel").isHidden()).toBe(true);
    expect((await endpointStatus(id)).status).toBe("CANCELLED");
    await shot(page, "cancelled.png");
    await loadListed(page, "simple_test");
    const next = await run(page);
    await waitForStatus(page, next, "COMPLETED");
    await page.close();
  });

  it("shows the worker's validation error with its code and text exactly", async () => {
    const page = await openApp();
    await loadListed(page, "txt2img");
    // A model name offered as a suggestion list still takes any name (here one the image lacks).
    expect(await field(page, "4.ckpt_name").getAttribute("list")).toBe("models-checkpoints");
    await field(page, "4.ckpt_name").fill("no_such_model.safetensors");
    await field(page, "3.steps").fill("0");
    const id = await run(page);
    await waitForStatus(page, id, "FAILED");
    const { error, output } = (await endpointStatus(id)) as { error: string; output?: unknown };
    expect(error).toMatch(/^WORKFLOW_INVALID: /);
    expect(await page.getByTestId("error-code").textContent()).toBe("WORKFLOW_INVALID");
    expect(await page.getByTestId("error-text").textContent()).toBe(error);
    // Each of ComfyUI's problems is shown once, not in the text and again in a list.
    const shown = (await page.getByTestId("job-error").textContent()) ?? "";
    const details = (output as { details?: { problems?: string[] } } | undefined)?.details;
    const problems = details?.problems ?? [];
    expect(problems.length).toBeGreaterThanOrEqual(2);
    for (const problem of problems) expect(shown.split(problem).length - 1).toBe(1);
    expect(await page.getByTestId("job-error").getAttribute("role")).toBe("alert");
    await shot(page, "validation-error.png");
    await page.close();
  });
});

describe("outputs of every kind", () => {
  it("plays video in a player", async () => {
    const page = await openApp();
    await loadListed(page, "video");
    const id = await run(page);
    await waitForStatus(page, id, "COMPLETED");
    const videos = page.getByTestId("output-video");
    await videos.first().waitFor();
    expect(await videos.count()).toBe(2);
    expect(
      await videos
        .first()
        .evaluate((v) => (v as HTMLVideoElement).controls && (v as HTMLVideoElement).src.startsWith("blob:")),
    ).toBe(true);
    expect(await page.locator(".output-video [data-testid=download]").count()).toBe(2);
    await page.close();
  });

  it("shows text outputs", async () => {
    const page = await openApp();
    await loadListed(page, "text");
    const id = await run(page);
    await waitForStatus(page, id, "COMPLETED");
    const texts = await page.getByTestId("output-text").allTextContents();
    expect(texts.join("\n")).toContain("hello from the worker");
    await page.close();
  });

  it("draws a SHARP-size binary splat at once and keeps it drawn, with no interaction", async () => {
    const page = await openApp();
    const file = path.join(downloads, "sharp_size.ply");
    const size = await writeSharpPly(file, [40, 220, 60]);
    expect(size).toBeGreaterThan(60 * 1024 * 1024);
    await page.getByTestId("splat-file").setInputFiles(file);
    const media = page.getByTestId("preview-media");
    // A status line (and a progress bar) while the 66 MB file is read: never a silent blank.
    await expect.poll(() => media.getAttribute("data-state"), { timeout: 5_000 }).not.toBeNull();
    await expect
      .poll(() => media.getAttribute("data-state"), { timeout: 90_000, interval: 250 })
      .toBe("ready");
    // Drawing 1.18M splats in software (SwiftShader) keeps the page busy for seconds per frame.
    const slow = { timeout: 90_000 };
    expect(await media.getAttribute("data-splat-count", slow)).toBe(String(SHARP_SPLATS));
    const canvas = media.locator("canvas.splat-canvas");
    // No key, no drag, no wheel: the sorted splats must appear by themselves...
    await expect
      .poll(() => countPixels(canvas, "green"), { timeout: 60_000, interval: 1000 })
      .toBeGreaterThan(2000);
    // ...and still be there once the page has gone idle.
    await page.waitForTimeout(3000);
    const frames = Number(await canvas.getAttribute("data-frames", slow));
    await page.waitForTimeout(2000);
    expect(await countPixels(canvas, "green")).toBeGreaterThan(2000);
    // Idle means idle: no frames are drawn while nothing changes.
    expect(Number(await canvas.getAttribute("data-frames", slow))).toBe(frames);
    await shot(page, "splat-large.png");
    expect(pageProblems(page)).toEqual([]);
    await page.close();
  }, 300_000);

  it("draws the SPZ a job returns with convert: spz, with no interaction", async () => {
    const page = await openApp();
    await loadWorkflow(page, "splat.json");
    await expect.poll(() => page.getByTestId("convert-note").textContent()).toMatch(/makes Gaussian splats/);
    await page.selectOption("[data-testid=job-convert]", "spz");
    const id = await run(page);
    await waitForStatus(page, id, "COMPLETED");
    // The worker converted the stand-in's .ply (and returned only the .spz, as asked).
    const output = (await endpointStatus(id)).output as {
      files: Array<{ filename: string; mime_type: string }>;
      notes?: string[];
    };
    expect(output.files.map((f) => f.filename.replace(/_\d+/, "_N"))).toEqual(["splat_N.spz"]);
    expect(output.files[0]?.mime_type).toBe("application/x-spz");
    const media = page.locator(".job-results .output-splat .output-media");
    await expect.poll(() => media.getAttribute("data-splat-count"), { timeout: 10_000 }).toBe("512");
    const canvas = media.locator("canvas.splat-canvas");
    expect(await canvas.getAttribute("aria-label")).toMatch(/^3D view of splat_\d+\.spz \(512 splats\)/);
    // No key, no drag: the orange splats (0xFF6600 in the source) are drawn by themselves.
    await expect
      .poll(() => countPixels(canvas, "orange"), { timeout: 20_000, interval: 500 })
      .toBeGreaterThan(50);
    // The worker's note on the conversion is shown, above the results it explains.
    const notes = page.locator(".job-results [data-testid=worker-notes]");
    expect(await notes.textContent()).toMatch(/splat_\d+\.ply.*spz/);
    expect(await isAbove(notes, page.locator(".job-results .outputs"))).toBe(true);
    await shot(page, "splat-spz.png");
    expect(pageProblems(page)).toEqual([]);
    await page.close();
  });

  it("shows a Gaussian-splat .ply in an interactive 3D view", async () => {
    const page = await openApp();
    await loadWorkflow(page, "splat.json");
    const id = await run(page);
    await waitForStatus(page, id, "COMPLETED");
    const media = page.locator(".job-results .output-splat .output-media");
    // The test server's SharpPredict writes two layers of 16x16 gaussians (the real one: 768x768).
    await expect.poll(() => media.getAttribute("data-splat-count"), { timeout: 10_000 }).toBe("512");
    const canvas = media.locator("canvas.splat-canvas");
    expect(await canvas.getAttribute("aria-label")).toMatch(/^3D view of splat_\d+\.ply \(512 splats\)/);
    await canvas.focus();
    await page.keyboard.press("ArrowRight");
    await page.keyboard.press("+");
    await page.waitForTimeout(1500);
    // Something orange (the source colour, 0xFF6600) is drawn on the dark canvas.
    const orange = await countPixels(canvas, "orange");
    expect(orange).toBeGreaterThan(50);
    await expect
      .poll(() => page.locator(".job-results .output-splat [data-testid=download]").count())
      .toBe(1);
    await shot(page, "splat.png");
    expect(pageProblems(page)).toEqual([]);
    await page.close();
  });
});

describe("workflow input", () => {
  it("wires an image dropped on a LoadImage node into the job", async () => {
    const page = await openApp();
    await loadWorkflow(page, "invert_input.json");
    const png = (await readFile(path.join(FIXTURES, "red.png"))).toString("base64");
    const dataTransfer = await page.evaluateHandle((data) => {
      const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([bytes], "red photo.png", { type: "image/png" }));
      return transfer;
    }, png);
    await page.dispatchEvent('[data-node="10"] .drop-zone', "drop", { dataTransfer });
    await page.getByAltText("Attached red photo.png").waitFor();
    expect(await field(page, "10.image").isDisabled()).toBe(true);
    const id = await run(page);
    await waitForStatus(page, id, "COMPLETED");
    // Red in, cyan out: the worker uploaded our file and LoadImage read it.
    expect(await centrePixel(page.getByTestId("output-image"))).toEqual([0, 255, 255, 255]);
    await page.close();
  });

  it("sends a pasted image URL for the worker to download", async () => {
    const png = await readFile(path.join(FIXTURES, "red.png"));
    const requests: string[] = [];
    const files = createServer((request, response) => {
      requests.push(request.url ?? "");
      response.writeHead(200, { "Content-Type": "application/octet-stream" }).end(png);
    });
    await new Promise<void>((resolve) => files.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = files.address() as AddressInfo;
      const page = await openApp();
      await loadWorkflow(page, "invert_input.json");
      await page.getByTestId("image-url-10").fill("ftp://example.com/red.png");
      await page.getByTestId("image-url-use-10").click();
      await expect
        .poll(() => page.locator('[data-node="10"] .error-inline').textContent())
        .toMatch(/cannot be fetched/);
      const url = `http://127.0.0.1:${port}/photos/red.png?sig=abc`;
      await page.getByTestId("image-url-10").fill(url);
      await page.getByTestId("image-url-use-10").click();
      await page.getByTestId("image-url-shown-10").waitFor();
      expect(await field(page, "10.image").inputValue()).toBe("red.png");
      const id = await run(page);
      await waitForStatus(page, id, "COMPLETED");
      expect(requests).toEqual(["/photos/red.png?sig=abc"]); // fetched by the worker, once
      expect(await centrePixel(page.getByTestId("output-image"))).toEqual([0, 255, 255, 255]);
      await page.close();
    } finally {
      files.close();
    }
  });

  it("makes a too-large input image smaller on request, so the job fits and runs", async () => {
    const page = await openApp();
    await loadWorkflow(page, "invert_input.json");
    // A 2000x2000 PNG of noise (about 16 MB): far over RunPod's 10 MB /run limit as base64.
    const dataTransfer = await page.evaluateHandle(async () => {
      const canvas = document.createElement("canvas");
      canvas.width = 2000;
      canvas.height = 2000;
      const context = canvas.getContext("2d") as CanvasRenderingContext2D;
      const pixels = context.createImageData(2000, 2000);
      for (let i = 0; i < pixels.data.length; i += 4) {
        pixels.data[i] = Math.random() * 256;
        pixels.data[i + 1] = Math.random() * 256;
        pixels.data[i + 2] = Math.random() * 256;
        pixels.data[i + 3] = 255;
      }
      context.putImageData(pixels, 0, 0);
      const blob = await new Promise<Blob>((resolve) =>
        canvas.toBlob((b) => resolve(b as Blob), "image/png"),
      );
      const transfer = new DataTransfer();
      transfer.items.add(new File([blob], "noise.png", { type: "image/png" }));
      return transfer;
    });
    await page.dispatchEvent('[data-node="10"] .drop-zone', "drop", { dataTransfer });
    await page.getByAltText("Attached noise.png").waitFor();
    await page.click("#submit");
    await expect
      .poll(() => page.getByTestId("submit-message").textContent())
      .toMatch(/over the 10\.0 MB limit/);
    expect(await page.locator(".job-item").count()).toBe(0);
    await page.getByTestId("downscale").click();
    await expect.poll(() => page.locator(".job-item").count(), { timeout: 30_000 }).toBe(1);
    const id = (await page.locator(".job-item").first().getAttribute("data-job-id")) ?? "";
    await waitForStatus(page, id, "COMPLETED");
    const width = await page
      .getByAltText("Attached noise.png")
      .evaluate((img) => (img as HTMLImageElement).naturalWidth);
    expect(width).toBeLessThan(2000);
    expect(width).toBeGreaterThan(800);
    await page.close();
  });

  it("takes an audio file dropped on LoadAudio, with a hint while only a server-side name is set", async () => {
    const page = await openApp();
    await loadWorkflow(page, "audio_in.json");
    // The exported name is not on the worker: the form says so until a file is dropped.
    expect(await page.getByTestId("media-hint-1").textContent()).toMatch(
      /"example\.wav" must already be in ComfyUI's input\/ folder on the worker; drop a file/,
    );
    expect(await page.getByTestId("image-input-1").getAttribute("accept")).toBe("audio/*");
    // A short silent WAV (44-byte header + 4410 samples).
    const samples = 4410;
    const wav = Buffer.alloc(44 + samples * 2);
    wav.write("RIFF", 0);
    wav.writeUInt32LE(36 + samples * 2, 4);
    wav.write("WAVEfmt ", 8);
    wav.writeUInt32LE(16, 16);
    wav.writeUInt16LE(1, 20);
    wav.writeUInt16LE(1, 22);
    wav.writeUInt32LE(44100, 24);
    wav.writeUInt32LE(88200, 28);
    wav.writeUInt16LE(2, 32);
    wav.writeUInt16LE(16, 34);
    wav.write("data", 36);
    wav.writeUInt32LE(samples * 2, 40);
    await page
      .getByTestId("image-input-1")
      .setInputFiles({ name: "my voice.wav", mimeType: "audio/wav", buffer: wav });
    await expect.poll(() => page.locator(".image-preview audio").count()).toBe(1);
    expect(await page.getByTestId("media-hint-1").textContent()).toBe("");
    const id = await run(page);
    await waitForStatus(page, id, "COMPLETED");
    expect(await page.locator(".output-audio audio").count()).toBe(1);
    await page.close();
  });

  it("gives a UI-format export the Save (API Format) hint without submitting", async () => {
    const page = await openApp();
    await loadFile(page, "ui_format.json");
    const message = page.getByTestId("workflow-message");
    await expect.poll(() => message.textContent()).toMatch(/UI-format export/);
    expect(await message.textContent()).toContain(
      "Workflow > Export (API) (older menus: 'Save (API Format)')",
    );
    expect(await message.getByRole("alert").count()).toBe(1);
    expect(await page.locator(".job-item").count()).toBe(0);
    // simple_test was loaded before: the refused file replaced it, so Run cannot run the old one.
    expect(await page.locator("#submit").isDisabled()).toBe(true);
    expect(await page.locator("#workflow-form-fields [name]").count()).toBe(0);
    await page.close();
  });

  it("shows a workflow's chosen inputs, chosen and saved in the page, with their widgets", async () => {
    const page = await openApp();
    await loadListed(page, "txt2img");
    expect(await page.getByTestId("form-toolbar").textContent()).toMatch(/^All \d+ inputs\./);
    await page.getByTestId("choose-inputs").click();
    const editor = page.getByTestId("exposed-editor");
    await editor.waitFor();
    // The editor starts with prompts first; keep the positive prompt, steps (as a slider) and the seed.
    for (const row of await editor.locator(".exposed-row").all()) {
      const key = await row.getAttribute("data-key");
      const keep = key === "6.text" || key === "3.steps" || key === "3.seed";
      await row.getByRole("checkbox").setChecked(keep);
    }
    await editor.getByLabel("Label for 6.text").fill("Prompt");
    await editor.getByLabel("Widget for 3.steps").selectOption("slider");
    await editor.getByLabel("min for 3.steps").fill("1");
    await editor.getByLabel("max for 3.steps").fill("50");
    await editor.getByLabel("Label for 3.steps").fill("Steps");
    // Node order puts the seed before the steps: move the steps up.
    await editor.getByLabel("Move 3.steps up").click();
    await page.getByTestId("exposed-save").click();
    await expect
      .poll(() => page.getByTestId("form-toolbar").textContent())
      .toMatch(/^3 chosen inputs of \d+/);
    // Saved beside the workflow, in the folder the app lists.
    const saved = JSON.parse(await readFile(path.join(stack.workflowsDir, "txt2img.inputs.json"), "utf8"));
    expect(saved.inputs.map((i: { key: string }) => i.key)).toEqual(["6.text", "3.steps", "3.seed"]);
    // The form: the prompt first, under its label; the slider moves the number that is sent.
    const labels = await page.locator("#workflow-form-fields label[for]").allTextContents();
    expect(labels.slice(0, 2)).toEqual(["Prompt", "Steps"]);
    expect(await page.locator("#workflow-form-fields [name]").count()).toBe(3);
    await page.getByTestId("slider-3.steps").fill("7");
    expect(await field(page, "3.steps").inputValue()).toBe("7");
    await shot(page, "exposed-inputs.png");
    // A fresh page finds the sidecar; the full list is one click away; the job uses the values.
    await page.reload();
    await expect.poll(() => page.getByTestId("form-toolbar").textContent()).toMatch(/^3 chosen inputs/);
    await page.getByTestId("toggle-all-inputs").click();
    expect(await field(page, "4.ckpt_name").count()).toBe(1);
    await page.getByTestId("toggle-all-inputs").click();
    await field(page, "3.steps").fill("3");
    const id = await run(page);
    await waitForStatus(page, id, "COMPLETED");
    await page.close();
  });

  it("offers the image's model files (manifest.toml) on loader inputs, free text still allowed", async () => {
    const page = await openApp();
    await loadListed(page, "qwen_edit_sharp");
    const suggestions = async (key: string): Promise<string[]> => {
      const list = await field(page, key).getAttribute("list");
      if (list === null) return [];
      return page
        .locator(`datalist#${list} option`)
        .evaluateAll((options) => options.map((o) => (o as HTMLOptionElement).value));
    };
    // The lists arrive from /api/models, which reads the repo's manifest.toml (what the image installs).
    await expect
      .poll(() => suggestions("13.lora_name"))
      .toEqual([
        "Qwen-Image-Edit-2509-Lightning-4steps-V1.0-bf16.safetensors",
        "Qwen-Image-Edit-2509-Lightning-8steps-V1.0-bf16.safetensors",
      ]);
    expect(await suggestions("10.unet_name")).toEqual(["qwen_image_edit_2509_fp8_e4m3fn.safetensors"]);
    expect(await suggestions("11.clip_name")).toEqual(["qwen_2.5_vl_7b_fp8_scaled.safetensors"]);
    expect(await suggestions("12.vae_name")).toEqual(["qwen_image_vae.safetensors"]);
    // Showing the form changes nothing: the workflow's own value stays.
    expect(await field(page, "13.lora_name").inputValue()).toBe(
      "Qwen-Image-Edit-2509-Lightning-4steps-V1.0-bf16.safetensors",
    );
    // Picking a suggestion, or typing a name the list lacks, both stay in the field.
    await field(page, "13.lora_name").fill("Qwen-Image-Edit-2509-Lightning-8steps-V1.0-bf16.safetensors");
    expect(await field(page, "13.lora_name").inputValue()).toMatch(/8steps/);
    await field(page, "12.vae_name").fill("my_own_vae.safetensors");
    expect(await field(page, "12.vae_name").inputValue()).toBe("my_own_vae.safetensors");
    await field(page, "13.lora_name").scrollIntoViewIfNeeded();
    await field(page, "13.lora_name").focus();
    await shot(page, "model-names.png");
    expect(pageProblems(page)).toEqual([]);
    await page.close();
  });

  it("keeps the workflow and its edited values across a reload", async () => {
    const page = await openApp();
    await loadListed(page, "txt2img");
    await field(page, "6.text").fill("a lighthouse at dusk, kept across reloads");
    await field(page, "3.steps").fill("13");
    await page.reload();
    await expect
      .poll(() => page.getByTestId("workflow-message").textContent())
      .toMatch(/^Loaded txt2img.*Restored after a reload/);
    expect(await field(page, "6.text").inputValue()).toBe("a lighthouse at dusk, kept across reloads");
    expect(await field(page, "3.steps").inputValue()).toBe("13");
    expect(await page.locator("#workflow-select").inputValue()).toBe("txt2img.json");
    await page.close();
  });

  it("marks a bad value in the form and submits nothing", async () => {
    const page = await openApp();
    await field(page, "1.width").fill("wide");
    await page.click("#submit");
    expect(await field(page, "1.width").getAttribute("aria-invalid")).toBe("true");
    expect(await page.getByTestId("submit-message").textContent()).toBe("Fix the marked fields first.");
    expect(await page.evaluate(() => document.activeElement?.getAttribute("name"))).toBe("1.width");
    expect(await page.locator(".job-item").count()).toBe(0);
    await page.close();
  });

  it("randomises a seed", async () => {
    const page = await openApp();
    await loadListed(page, "txt2img");
    expect(await field(page, "3.seed").inputValue()).toBe("42");
    await page.getByTestId("randomise-3.seed").click();
    const seed = await field(page, "3.seed").inputValue();
    expect(seed).toMatch(/^\d+$/);
    expect(seed).not.toBe("42");
    await page.close();
  });
});

describe("session and keyboard", () => {
  it("runs from the keyboard alone, and every control has a name", async () => {
    const page = await openApp();
    const unnamed = await page.evaluate(() =>
      [...document.querySelectorAll("input, select, textarea, button")]
        .filter((el) => {
          const control = el as HTMLInputElement;
          return !(
            control.labels?.length ||
            control.getAttribute("aria-label") ||
            (el.tagName === "BUTTON" && el.textContent?.trim())
          );
        })
        .map((el) => el.outerHTML),
    );
    expect(unnamed).toEqual([]);
    // Tab order starts at the skip link, then the workflow picker, the file drop, the inputs
    // chooser, the first field.
    const order: Array<string | null> = [];
    for (let i = 0; i < 5; i++) {
      await page.keyboard.press("Tab");
      order.push(
        await page.evaluate(() => {
          const active = document.activeElement;
          return active?.getAttribute("name") || active?.getAttribute("aria-label") || active?.id || null;
        }),
      );
    }
    expect(order).toEqual([null, "workflow-select", "Workflow file", null, "1.width"]);
    await page.keyboard.press("Control+Enter");
    await page.locator('.job-item[data-status="COMPLETED"]').waitFor({ timeout: JOB_TIMEOUT_MS });
    await page.close();
  });

  it("lists this session's jobs to revisit, also after a reload", async () => {
    const page = await openApp();
    const first = await run(page);
    await waitForStatus(page, first, "COMPLETED");
    await loadListed(page, "text");
    const second = await run(page);
    await waitForStatus(page, second, "COMPLETED");
    expect(
      await page.locator(".job-item").evaluateAll((items) => items.map((i) => i.getAttribute("data-job-id"))),
    ).toEqual([second, first]);
    await page.click(`.job-item[data-job-id="${first}"]`);
    await page.getByTestId("output-image").waitFor();
    expect(await page.getByTestId("job-id").textContent()).toBe(first);
    await page.reload();
    await page.locator(`.job-item[data-job-id="${second}"]`).waitFor();
    await page.click(`.job-item[data-job-id="${second}"]`);
    // After a reload the result comes back from the endpoint, which keeps it for 30 minutes.
    await page.getByTestId("output-text").first().waitFor({ timeout: 10_000 });
    await shot(page, "session-jobs.png");
    await page.close();
  });
});
