/** Reading the worker's output shapes: results, progress, errors and outcomes. */

import { describe, expect, it } from "vitest";
import {
  RunPodProtocolError,
  guessMimeType,
  isFinalStatus,
  jobOutcome,
  mergeProgress,
  parseJobError,
  parseProgress,
  parseWorkerResult,
} from "../../src/api/index.js";

const image = {
  filename: "simple_test_00001_.png",
  type: "base64",
  data: "iVBORw0KGgo=",
  mime_type: "image/png",
  size_bytes: 8,
  node_id: "3",
  subfolder: "",
};

describe("parseWorkerResult", () => {
  it("reads README.md's result shape into camel case", () => {
    const result = parseWorkerResult({
      images: [image],
      files: [
        {
          ...image,
          filename: "clip.mp4",
          mime_type: "video/mp4",
          subfolder: "video",
          type: "s3_url",
          data: "https://b/clip.mp4",
        },
      ],
      text: [{ node_id: "7", text: "hello" }],
      prompt_id: "p1",
      timings: { validate_ms: 0.4, total_ms: 2441.8, bogus: "x" },
      errors: ["output 'x.png' could not be fetched"],
      notes: ["sharp_1.ply converted to .spz (66.1 MB -> 4.3 MB)"],
    });
    expect(result.notes).toEqual(["sharp_1.ply converted to .spz (66.1 MB -> 4.3 MB)"]);
    expect(parseWorkerResult({}).notes).toEqual([]);
    expect(result.images).toEqual([
      {
        filename: "simple_test_00001_.png",
        type: "base64",
        data: "iVBORw0KGgo=",
        mimeType: "image/png",
        sizeBytes: 8,
        nodeId: "3",
        subfolder: "",
      },
    ]);
    expect(result.files[0]).toMatchObject({
      filename: "clip.mp4",
      type: "s3_url",
      data: "https://b/clip.mp4",
      subfolder: "video",
    });
    expect(result.text).toEqual([{ nodeId: "7", text: "hello" }]);
    expect(result.promptId).toBe("p1");
    expect(result.timings).toEqual({ validate_ms: 0.4, total_ms: 2441.8 });
    expect(result.errors).toEqual(["output 'x.png' could not be fetched"]);
  });

  it("accepts worker-comfyui 5.x entries, guessing the media type from the name", () => {
    const result = parseWorkerResult({ images: [{ filename: "a.webp", type: "base64", data: "AA==" }] });
    expect(result.images[0]).toMatchObject({
      mimeType: "image/webp",
      sizeBytes: null,
      nodeId: null,
      subfolder: "",
    });
    expect(result.files).toEqual([]);
    expect(result.text).toEqual([]);
    expect(result.timings).toEqual({});
  });

  it("skips entries it cannot read and says which, keeping the rest", () => {
    const result = parseWorkerResult({
      images: [image, null, { type: "base64", data: "" }, { ...image, type: "ftp" }, { ...image, data: 5 }],
      files: "nope",
      text: ["plain string", { node_id: 4 }],
    });
    expect(result.images).toHaveLength(1);
    expect(result.text).toEqual([{ nodeId: null, text: "plain string" }]);
    expect(result.errors).toEqual([
      "result.images[1] is null, not an object; skipped",
      "result.images[2] has no filename; skipped",
      'result.images[3] (simple_test_00001_.png) has unknown type "ftp"; skipped',
      "result.images[4] (simple_test_00001_.png) has no data; skipped",
      "result.files is a string, not a list; skipped",
      "result.text[1] has no text; skipped",
    ]);
  });

  it.each([null, "text", [1], 3])("throws for an output that is not an object: %j", (output) => {
    expect(() => parseWorkerResult(output)).toThrow(RunPodProtocolError);
  });
});

describe("parseProgress", () => {
  it("reads the worker's progress payload", () => {
    expect(
      parseProgress({
        stage: "running",
        node: "5",
        node_class: "KSampler",
        step: 3,
        max_steps: 20,
        nodes_done: 2,
        nodes_total: 7,
        percent: 40,
        activity: "loading model sd15.safetensors",
        elapsed_s: 41.2,
        node_elapsed_s: 37.4,
      }),
    ).toEqual({
      stage: "running",
      node: "5",
      nodeClass: "KSampler",
      step: 3,
      maxSteps: 20,
      nodesDone: 2,
      nodesTotal: 7,
      percent: 40,
      activity: "loading model sd15.safetensors",
      elapsedS: 41.2,
      nodeElapsedS: 37.4,
    });
  });

  it("fills what a stage-only payload lacks with null and clamps percent", () => {
    expect(parseProgress({ stage: "uploading", percent: 140 })).toEqual({
      stage: "uploading",
      node: null,
      nodeClass: null,
      step: null,
      maxSteps: null,
      nodesDone: null,
      nodesTotal: null,
      percent: 100,
      activity: null,
      elapsedS: null,
      nodeElapsedS: null,
    });
    expect(parseProgress({ stage: "queued", percent: -3, step: "x" })?.percent).toBe(0);
  });

  it.each([undefined, null, "running", { percent: 5 }, { stage: 3 }])("is null for %j", (output) => {
    expect(parseProgress(output)).toBeNull();
  });
});

describe("mergeProgress", () => {
  const at = (percent: number | null, stage = "running") => parseProgress({ stage, percent });

  it("never lets the percentage go back, whatever order the polls answer in", () => {
    expect(mergeProgress(at(40), at(31))?.percent).toBe(40);
    expect(mergeProgress(at(40), at(55))?.percent).toBe(55);
    expect(mergeProgress(at(40), at(null, "collecting"))).toMatchObject({ stage: "collecting", percent: 40 });
  });

  it("keeps the last progress when a poll has none, and takes the first as it is", () => {
    expect(mergeProgress(at(40), null)?.percent).toBe(40);
    expect(mergeProgress(null, at(12))?.percent).toBe(12);
  });
});

describe("errors and outcomes", () => {
  it("splits CODE: message and keeps the whole text", () => {
    const text =
      "WORKFLOW_INVALID: ComfyUI rejected the workflow: node 4 (CheckpointLoaderSimple): ckpt_name: value not in list";
    expect(parseJobError(text)).toEqual({
      code: "WORKFLOW_INVALID",
      message: "ComfyUI rejected the workflow: node 4 (CheckpointLoaderSimple): ckpt_name: value not in list",
      text,
    });
  });

  it.each(["handler: something broke", '{"error_type": "ValueError"}', "", "lowercase: nope"])(
    "leaves a text without a code as it is: %j",
    (text) => {
      expect(parseJobError(text)).toEqual({ code: null, message: text, text });
    },
  );

  it("turns a FAILED job into its error and details", () => {
    const outcome = jobOutcome({
      id: "j",
      status: "FAILED",
      error: "EXECUTION_FAILED: node 3 (KSampler) raised RuntimeError: out of memory",
      output: { details: { node_id: "3" } },
    });
    expect(outcome).toEqual({
      kind: "failed",
      error: {
        code: "EXECUTION_FAILED",
        message: "node 3 (KSampler) raised RuntimeError: out of memory",
        text: "EXECUTION_FAILED: node 3 (KSampler) raised RuntimeError: out of memory",
      },
      details: { node_id: "3" },
    });
  });

  it("keeps a FAILED job without text or details readable", () => {
    expect(jobOutcome({ id: "j", status: "FAILED" })).toEqual({
      kind: "failed",
      error: {
        code: null,
        message: "the job failed without an error message",
        text: "the job failed without an error message",
      },
      details: null,
    });
  });

  it("reads CANCELLED, TIMED_OUT and COMPLETED", () => {
    expect(jobOutcome({ id: "j", status: "CANCELLED" })).toEqual({ kind: "cancelled" });
    expect(jobOutcome({ id: "j", status: "TIMED_OUT" })).toEqual({ kind: "timed_out", error: null });
    expect(jobOutcome({ id: "j", status: "COMPLETED", output: { images: [image] } })).toMatchObject({
      kind: "completed",
    });
  });

  it("refuses an outcome for a running job, and a COMPLETED one without a result", () => {
    expect(() => jobOutcome({ id: "j", status: "IN_PROGRESS" })).toThrow(/still IN_PROGRESS/);
    expect(() => jobOutcome({ id: "j", status: "COMPLETED" })).toThrow(RunPodProtocolError);
  });

  it("knows which statuses are final", () => {
    expect(
      ["IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"].map((s) =>
        isFinalStatus(s as never),
      ),
    ).toEqual([false, false, true, true, true, true]);
  });

  it("guesses media types case-insensitively", () => {
    expect(guessMimeType("SPLAT_1.PLY")).toBe("application/ply");
    expect(guessMimeType("noext")).toBe("application/octet-stream");
  });
});
