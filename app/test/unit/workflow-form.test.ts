/** The workflow form generator: reading files, building fields, writing values back, images. */

import { describe, expect, it } from "vitest";
import type { ApiWorkflow } from "../../src/api/index.js";
import {
  AttachmentError,
  safeFileName,
  urlAttachment,
  wireAttachments,
} from "../../src/workflow/attachments.js";
import {
  FormValueError,
  MAX_RANDOM_SEED,
  applyForm,
  buildForm,
  randomSeed,
} from "../../src/workflow/form.js";
import {
  API_FORMAT_HINT,
  WorkflowFormatError,
  checkWorkflow,
  parseWorkflowText,
} from "../../src/workflow/graph.js";
import { prepareJobInput } from "../../src/workflow/job-input.js";
import { jobOptionsInput, makesSplats, needsIncludeTemp } from "../../src/workflow/job-options.js";
import { mediaInputKind } from "../../src/workflow/known-inputs.js";
import { canonicalFolder, modelFolderFor, parseModelLists } from "../../src/workflow/model-inputs.js";
import { sideScale } from "../../src/ui/downscale.js";
import { defaultExposed, exposedForm, parseExposedInputs, sidecarPath } from "../../src/workflow/exposed.js";

/** txt2img as ComfyUI exports it (node ids out of order, `_meta` titles), plus an image loader. */
const TXT2IMG: ApiWorkflow = {
  "4": {
    class_type: "CheckpointLoaderSimple",
    inputs: { ckpt_name: "v1-5.safetensors" },
    _meta: { title: "Load Checkpoint" },
  },
  "10": { class_type: "LoadImage", inputs: { image: "input.png" } },
  "6": {
    class_type: "CLIPTextEncode",
    inputs: { text: "a red fox", clip: ["4", 1] },
    _meta: { title: "Positive" },
  },
  "3": {
    class_type: "KSampler",
    inputs: {
      seed: 42,
      steps: 20,
      cfg: 7.5,
      sampler_name: "euler",
      scheduler: "karras",
      denoise: 1,
      model: ["4", 0],
      positive: ["6", 0],
      negative: ["6", 0],
      latent_image: ["5", 0],
    },
  },
  "9": { class_type: "SaveImage", inputs: { filename_prefix: "fox", images: ["8", 0] } },
  "12": { class_type: "VHS_VideoCombine", inputs: { pingpong: false, format: "video/webm", frame_rate: 8 } },
  "13": { class_type: "Custom", inputs: { list_value: [1, 2, 3], object_value: { a: 1 }, nothing: null } },
};

describe("parseWorkflowText", () => {
  it("reads an API-format export", () => {
    const text = JSON.stringify({
      "1": { class_type: "EmptyImage", inputs: { width: 8 }, _meta: { title: "Blank" } },
    });
    expect(parseWorkflowText(text)).toEqual({
      "1": { class_type: "EmptyImage", inputs: { width: 8 }, _meta: { title: "Blank" } },
    });
  });

  it("gives a UI-format export the worker's Save (API Format) hint", () => {
    const ui = JSON.stringify({
      last_node_id: 9,
      nodes: [{ id: 1, type: "EmptyImage" }],
      links: [],
      version: 0.4,
    });
    expect(() => parseWorkflowText(ui)).toThrow(WorkflowFormatError);
    expect(() => parseWorkflowText(ui)).toThrow(
      "This is a UI-format export (it has 'nodes' and 'links'), which ComfyUI's API cannot run: in ComfyUI use " +
        "Workflow > Export (API) (older menus: 'Save (API Format)') and drop that file here.",
    );
  });

  it.each([
    [
      "text that is not JSON",
      "{nope",
      /^This file is not JSON \(.+\); in ComfyUI use Workflow > Export \(API\)/,
    ],
    ["a list", "[1,2]", /^A workflow must be a JSON object of nodes, not a list; in ComfyUI/],
    ["a number", "3", /not a number/],
    ["null", "null", /not null/],
    ["an empty object", "{}", /^The workflow has no nodes;/],
    ["a node that is a string", '{"1": "EmptyImage"}', /^Node 1 is a string, not a node object/],
    ["a node without class_type", '{"1": {"inputs": {}}}', /^Node 1 has no class_type: every node needs one/],
    ["an empty class_type", '{"1": {"class_type": "", "inputs": {}}}', /^Node 1 has no class_type/],
    [
      "inputs that are a list",
      '{"1": {"class_type": "X", "inputs": [1]}}',
      /^Node 1 \(X\) has inputs that are not an object/,
    ],
    [
      "a request whose workflow string is not JSON",
      '{"input": {"workflow": "{bad"}}',
      /input.workflow is a string that is not JSON/,
    ],
  ])("refuses %s", (_name, text, message) => {
    expect(() => parseWorkflowText(text)).toThrow(message);
  });

  it("every refusal carries the export hint or names the node", () => {
    try {
      parseWorkflowText("[]");
    } catch (error) {
      expect((error as Error).message).toContain(API_FORMAT_HINT);
    }
  });

  it("unwraps a RunPod request body, with the workflow as an object or a JSON string", () => {
    const graph = { "1": { class_type: "EmptyImage", inputs: {} } };
    expect(checkWorkflow({ input: { workflow: graph, images: [] } })).toEqual(graph);
    expect(checkWorkflow({ input: { workflow: JSON.stringify(graph) } })).toEqual(graph);
  });

  it("gives a node without inputs an empty inputs object and drops unknown node keys", () => {
    expect(checkWorkflow({ "1": { class_type: "X", is_changed: true } })).toEqual({
      "1": { class_type: "X", inputs: {} },
    });
  });
});

describe("buildForm", () => {
  const form = buildForm(TXT2IMG);
  const byKey = new Map(form.groups.flatMap((g) => g.fields).map((f) => [f.key, f]));

  it("groups fields by node, numeric ids in numeric order, titles from _meta", () => {
    expect(form.groups.map((g) => [g.nodeId, g.title])).toEqual([
      ["3", "KSampler"],
      ["4", "Load Checkpoint"],
      ["6", "Positive"],
      ["9", "SaveImage"],
      ["10", "LoadImage"],
      ["12", "VHS_VideoCombine"],
    ]);
  });

  it("makes a field per literal input and none for links, lists, objects or null", () => {
    expect(form.groups.find((g) => g.nodeId === "3")?.fields.map((f) => f.input)).toEqual([
      "seed",
      "steps",
      "cfg",
      "sampler_name",
      "scheduler",
      "denoise",
    ]);
    expect(form.groups.some((g) => g.nodeId === "13")).toBe(false);
  });

  it("knows prompts, seeds, whole numbers, decimals, choices, switches and input images", () => {
    expect(byKey.get("6.text")).toMatchObject({ kind: "text", multiline: true, value: "a red fox" });
    expect(byKey.get("9.filename_prefix")).toMatchObject({ kind: "text", multiline: false });
    expect(byKey.get("3.seed")).toMatchObject({ kind: "seed", value: 42 });
    expect(byKey.get("3.steps")).toMatchObject({ kind: "number", integer: true, value: 20 });
    expect(byKey.get("3.cfg")).toMatchObject({ kind: "number", integer: false, value: 7.5 });
    expect(byKey.get("3.denoise")).toMatchObject({ kind: "number", integer: false, value: 1 });
    expect(byKey.get("3.sampler_name")).toMatchObject({ kind: "choice", value: "euler" });
    expect(byKey.get("3.scheduler")?.kind === "choice" && byKey.get("3.scheduler")).toMatchObject({
      value: "karras",
    });
    expect(byKey.get("12.format")).toMatchObject({
      kind: "choice",
      options: ["image/gif", "image/webp", "video/h264-mp4", "video/webm"],
    });
    expect(byKey.get("12.pingpong")).toMatchObject({ kind: "boolean", value: false });
    expect(byKey.get("10.image")).toMatchObject({ kind: "media", media: "image", value: "input.png" });
    expect(byKey.get("4.ckpt_name")).toMatchObject({ kind: "text", value: "v1-5.safetensors" });
  });

  it("keeps a choice the table does not know, first, so showing the form changes nothing", () => {
    const custom = buildForm({
      "1": { class_type: "KSampler", inputs: { sampler_name: "my_custom_sampler" } },
    });
    const field = custom.groups[0]?.fields[0];
    expect(field?.kind).toBe("choice");
    expect(field?.kind === "choice" && field.options.slice(0, 2)).toEqual(["my_custom_sampler", "euler"]);
  });

  it("shows long or multi-line strings as a text area whatever their name", () => {
    const built = buildForm({
      "1": { class_type: "X", inputs: { note: "line 1\nline 2", long: "x".repeat(81) } },
    });
    expect(built.groups[0]?.fields.map((f) => f.kind === "text" && f.multiline)).toEqual([true, true]);
  });

  it("treats a fractional seed as a plain number rather than losing it", () => {
    const built = buildForm({ "1": { class_type: "X", inputs: { seed: 1.5 } } });
    expect(built.groups[0]?.fields[0]).toMatchObject({ kind: "number", integer: false, value: 1.5 });
  });

  it("gives an empty form for a graph of links only", () => {
    expect(buildForm({ "1": { class_type: "ImageInvert", inputs: { image: ["2", 0] } } })).toEqual({
      groups: [],
    });
  });
});

describe("applyForm", () => {
  const form = buildForm(TXT2IMG);

  it("writes parsed values into a copy and leaves the original alone", () => {
    const edited = applyForm(TXT2IMG, form, {
      "6.text": "a blue whale",
      "3.seed": " 123456789012345 ",
      "3.steps": "4",
      "3.cfg": "6.5",
      "3.denoise": ".75",
      "3.sampler_name": "dpmpp_2m",
      "12.pingpong": true,
    });
    expect(edited["6"]?.inputs.text).toBe("a blue whale");
    expect(edited["3"]?.inputs).toMatchObject({
      seed: 123456789012345,
      steps: 4,
      cfg: 6.5,
      denoise: 0.75,
      sampler_name: "dpmpp_2m",
    });
    expect(edited["12"]?.inputs.pingpong).toBe(true);
    expect(edited["3"]?.inputs.model).toEqual(["4", 0]);
    expect(TXT2IMG["3"]?.inputs.seed).toBe(42);
    expect(TXT2IMG["6"]?.inputs.text).toBe("a red fox");
  });

  it("keeps the workflow's value for fields not given, and ignores keys that are no field", () => {
    const edited = applyForm(TXT2IMG, form, { "3.model": "x", "99.seed": "1" });
    expect(edited).toEqual(TXT2IMG);
  });

  it("accepts an empty prompt: an empty string is a valid text", () => {
    expect(applyForm(TXT2IMG, form, { "6.text": "" })["6"]?.inputs.text).toBe("");
  });

  it.each([
    ["3.steps", "abc", "must be a number"],
    ["3.steps", "", "must be a number"],
    ["3.steps", "0x10", "must be a number"],
    ["3.steps", "2.5", "must be a whole number"],
    ["3.steps", "1e400", "must be a finite number"],
    ["3.steps", "1e20", "is too large to send exactly"],
    ["3.cfg", "7,5", "must be a number"],
    ["3.seed", "-1", "a seed is a whole number of 0 or more"],
    ["3.seed", "1.5", "a seed is a whole number of 0 or more"],
    ["3.seed", "18446744073709551615", "a seed above 9007199254740991 cannot be sent exactly from a browser"],
    [
      "3.sampler_name",
      "not_a_sampler",
      "must be one of euler, euler_cfg_pp, euler_ancestral, euler_ancestral_cfg_pp, heun, ...",
    ],
    ["12.pingpong", "yes", "must be on or off"],
    ["6.text", true, "must be text"],
  ])("refuses %s = %j: %s", (key, raw, message) => {
    try {
      applyForm(TXT2IMG, form, { [key]: raw });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(FormValueError);
      expect((error as FormValueError).problems).toEqual([{ key, message }]);
    }
  });

  it("reports every bad field at once", () => {
    const error = (() => {
      try {
        applyForm(TXT2IMG, form, { "3.steps": "x", "3.cfg": "y", "6.text": "fine" });
      } catch (e) {
        return e as FormValueError;
      }
      return null;
    })();
    expect(error?.problems.map((p) => p.key)).toEqual(["3.steps", "3.cfg"]);
    expect(error?.message).toBe("3.steps: must be a number; 3.cfg: must be a number");
  });

  it("names a field whose node left the workflow", () => {
    const { "3": _removed, ...without } = TXT2IMG;
    expect(() => applyForm(without, form, { "3.steps": "4" })).toThrow(
      "3.steps: node 3 is not in this workflow",
    );
  });

  it("draws random seeds as whole numbers below 2**50", () => {
    expect(randomSeed(() => 0)).toBe(0);
    expect(randomSeed(() => 0.999999999)).toBeLessThan(MAX_RANDOM_SEED);
    expect(Number.isSafeInteger(randomSeed())).toBe(true);
  });
});

describe("media inputs", () => {
  it("offers a file drop for every core and VHS loader, and for custom Load* nodes naming a media file", () => {
    expect(mediaInputKind("LoadImage", "image", "a.png")).toBe("image");
    expect(mediaInputKind("LoadImageMask", "image", "a.png")).toBe("image");
    expect(mediaInputKind("LoadVideo", "file", "clip.mp4")).toBe("video");
    expect(mediaInputKind("VHS_LoadVideo", "video", "clip.mp4")).toBe("video");
    expect(mediaInputKind("LoadAudio", "audio", "voice.wav")).toBe("audio");
    expect(mediaInputKind("LoadImageWithAlpha", "image", "photo.PNG")).toBe("image");
    expect(mediaInputKind("LoadSomethingAudio", "track", "song.flac")).toBe("audio");
    // Not uploads: other inputs of a known loader, paths, model names, non-loaders.
    expect(mediaInputKind("VHS_LoadVideo", "force_rate", "24")).toBeNull();
    expect(mediaInputKind("LoadImageFromPath", "path", "/data/photo.png")).toBeNull();
    expect(mediaInputKind("LoadSharpModel", "checkpoint_path", "sharp.pt")).toBeNull();
    expect(mediaInputKind("SaveImage", "filename_prefix", "out.png")).toBeNull();
  });

  it("wires a dropped video into LoadVideo and audio into LoadAudio", () => {
    const graph: ApiWorkflow = {
      "1": { class_type: "LoadVideo", inputs: { file: "old.mp4" } },
      "2": { class_type: "LoadAudio", inputs: { audio: "old.wav" } },
    };
    const form = buildForm(graph);
    expect(form.groups.flatMap((g) => g.fields).map((f) => f.kind === "media" && f.media)).toEqual([
      "video",
      "audio",
    ]);
    const { workflow, images } = wireAttachments(graph, [
      { nodeId: "1", fileName: "my clip.mp4", data: "data:video/mp4;base64,AAAA" },
      { nodeId: "2", fileName: "voice.wav", data: "data:audio/wav;base64,BBBB" },
    ]);
    expect(workflow["1"]?.inputs.file).toBe("my_clip.mp4");
    expect(workflow["2"]?.inputs.audio).toBe("voice.wav");
    expect(images.map((i) => i.name)).toEqual(["my_clip.mp4", "voice.wav"]);
  });
});

describe("exposed inputs", () => {
  const graph: ApiWorkflow = {
    "1": { class_type: "EmptyImage", inputs: { width: 64, color: 255 } },
    "3": { class_type: "KSampler", inputs: { seed: 1, steps: 20 } },
    "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "a.safetensors" } },
    "6": { class_type: "CLIPTextEncode", inputs: { text: "a fox" } },
  };
  const form = buildForm(graph);

  it("shows only the chosen inputs, in order, with labels and widgets", () => {
    const exposed = parseExposedInputs(
      JSON.stringify({
        version: 1,
        inputs: [
          { key: "6.text", label: "Prompt", widget: "textarea" },
          { key: "3.steps", widget: "slider", min: 1, max: 50 },
          { key: "1.color", label: "Background", widget: "color" },
          { key: "4.ckpt_name", widget: "choice", options: ["b.safetensors"] },
        ],
      }),
      form,
    );
    const fields = exposedForm(form, exposed).groups[0]?.fields ?? [];
    expect(fields.map((f) => f.key)).toEqual(["6.text", "3.steps", "1.color", "4.ckpt_name"]);
    expect(fields[0]).toMatchObject({ kind: "text", multiline: true, label: "Prompt" });
    // The workflow's own model stays first, so showing the form changes nothing.
    expect(fields[3]).toMatchObject({ kind: "choice", options: ["a.safetensors", "b.safetensors"] });
    // Inputs not shown keep the workflow's values.
    const edited = applyForm(graph, exposedForm(form, exposed), { "6.text": "a hare", "3.steps": "8" });
    expect(edited["6"]?.inputs.text).toBe("a hare");
    expect(edited["3"]?.inputs).toEqual({ seed: 1, steps: 8 });
  });

  it("names what is wrong with a sidecar", () => {
    for (const [text, message] of [
      ["{", /not JSON/],
      ["[]", /must be \{"version": 1, "inputs"/],
      ['{"inputs": [{"key": "9.text"}]}', /inputs\[0\]\.key "9\.text" is not an editable input/],
      ['{"inputs": [{"key": "6.text"}, {"key": "6.text"}]}', /listed twice/],
      ['{"inputs": [{"key": "3.steps", "widget": "knob"}]}', /widget must be one of/],
      [
        '{"inputs": [{"key": "3.steps", "widget": "slider", "min": 5, "max": 5}]}',
        /a slider needs min below max/,
      ],
      ['{"inputs": [{"key": "4.ckpt_name", "widget": "choice"}]}', /a choice needs options/],
    ] as const) {
      expect(() => parseExposedInputs(text, form)).toThrow(message);
    }
  });

  it("starts the editor with prompts first, and names sidecars after their workflow", () => {
    expect(defaultExposed(form).inputs[0]).toMatchObject({ key: "6.text", widget: "textarea" });
    expect(sidecarPath("video/clip.json")).toBe("video/clip.inputs.json");
  });
});

describe("downscaling to fit", () => {
  it("scales each side by the square root of the bytes to lose, with a margin", () => {
    expect(sideScale(4_000_000, 5_000_000)).toBe(1);
    expect(sideScale(16_000_000, 4_000_000)).toBeCloseTo(0.5 * 0.95);
    expect(sideScale(16_000_000, -1)).toBe(0.05);
  });
});

describe("model-name inputs", () => {
  it("knows which loader inputs name a file in which models folder", () => {
    expect(modelFolderFor("CheckpointLoaderSimple", "ckpt_name")).toBe("checkpoints");
    expect(modelFolderFor("UNETLoader", "unet_name")).toBe("diffusion_models");
    expect(modelFolderFor("VAELoader", "vae_name")).toBe("vae");
    expect(modelFolderFor("LoraLoaderModelOnly", "lora_name")).toBe("loras");
    expect(modelFolderFor("CLIPLoader", "clip_name")).toBe("text_encoders");
    expect(modelFolderFor("DualCLIPLoader", "clip_name2")).toBe("text_encoders");
    expect(modelFolderFor("CLIPVisionLoader", "clip_name")).toBe("clip_vision");
    expect(modelFolderFor("UpscaleModelLoader", "model_name")).toBe("upscale_models");
    expect(modelFolderFor("SomeNode", "model_name")).toBeNull();
    expect(modelFolderFor("CLIPTextEncode", "text")).toBeNull();
    expect(canonicalFolder("unet")).toBe("diffusion_models");
    expect(canonicalFolder("clip")).toBe("text_encoders");
    expect(canonicalFolder("loras/qwen")).toBe("loras");
  });

  it("makes model names single-line text fields marked with their folder, value untouched", () => {
    const form = buildForm({
      "10": { class_type: "UNETLoader", inputs: { unet_name: "qwen.safetensors", weight_dtype: "default" } },
      "13": { class_type: "LoraLoaderModelOnly", inputs: { lora_name: "x".repeat(100), model: ["10", 0] } },
    });
    const fields = form.groups.flatMap((group) => group.fields);
    expect(fields.find((f) => f.key === "10.unet_name")).toMatchObject({
      kind: "text",
      multiline: false,
      value: "qwen.safetensors",
      modelFolder: "diffusion_models",
    });
    // A long name stays one line (a name, not a prompt).
    expect(fields.find((f) => f.key === "13.lora_name")).toMatchObject({
      multiline: false,
      modelFolder: "loras",
    });
    expect(fields.find((f) => f.key === "10.weight_dtype")).not.toHaveProperty("modelFolder");
  });

  it("reads /api/models answers defensively", () => {
    expect(parseModelLists({ source: "manifest", folders: { loras: ["a", 3, "b"] }, note: "n" })).toEqual({
      source: "manifest",
      folders: { loras: ["a", "b"] },
      note: "n",
    });
    expect(parseModelLists("nope").source).toBe("none");
  });
});

describe("job options", () => {
  it("ticks include_temp only for workflows that preview and save nothing", () => {
    const preview: ApiWorkflow = {
      "1": { class_type: "EmptyImage", inputs: {} },
      "2": { class_type: "PreviewImage", inputs: { images: ["1", 0] } },
    };
    expect(needsIncludeTemp(preview)).toBe(true);
    expect(needsIncludeTemp({ ...preview, "3": { class_type: "SaveImage", inputs: {} } })).toBe(false);
    expect(needsIncludeTemp({ "1": { class_type: "SaveImage", inputs: {} } })).toBe(false);
  });

  it("turns the controls into job fields, refusing a timeout that is not seconds", () => {
    const none = { output: "", includeTemp: false, timeout: "", convert: "" } as const;
    expect(jobOptionsInput(none)).toEqual({});
    expect(jobOptionsInput({ output: "s3", includeTemp: true, timeout: " 90 ", convert: "" })).toEqual({
      output: "s3",
      include_temp: true,
      timeout: 90,
    });
    for (const bad of ["0", "-5", "soon", "Infinity"]) {
      expect(() => jobOptionsInput({ ...none, timeout: bad })).toThrow(
        /timeout must be a number of seconds above 0/,
      );
    }
  });

  it("sends the splat conversion the worker takes (input.convert), with the original when asked", () => {
    const none = { output: "", includeTemp: false, timeout: "" } as const;
    expect(jobOptionsInput({ ...none, convert: "spz" })).toEqual({ convert: { ply: "spz" } });
    expect(jobOptionsInput({ ...none, convert: "splat+ply" })).toEqual({
      convert: { ply: "splat", keep_original: true },
    });
    expect(jobOptionsInput({ ...none, convert: "spz+ply" })).toEqual({
      convert: { ply: "spz", keep_original: true },
    });
  });

  it("knows which workflows make splats", () => {
    expect(makesSplats({ "1": { class_type: "SharpPredict", inputs: {} } })).toBe(true);
    expect(makesSplats({ "1": { class_type: "SaveImage", inputs: {} } })).toBe(false);
  });
});

describe("wireAttachments", () => {
  const dataA = "data:image/png;base64,AAAA";
  const dataB = "data:image/png;base64,BBBB";
  const twoLoaders: ApiWorkflow = {
    "1": { class_type: "LoadImage", inputs: { image: "old.png" } },
    "2": { class_type: "LoadImage", inputs: { image: "old.png" } },
    "3": { class_type: "LoadImageMask", inputs: { image: "mask.png", channel: "alpha" } },
    "4": { class_type: "SaveImage", inputs: { images: ["1", 0] } },
  };

  it("names each attached file on its node and lists it once in images", () => {
    const { workflow, images } = wireAttachments(twoLoaders, [
      { nodeId: "1", fileName: "cat.png", data: dataA },
      { nodeId: "3", fileName: "mask.png", data: dataB },
    ]);
    expect(workflow["1"]?.inputs.image).toBe("cat.png");
    expect(workflow["2"]?.inputs.image).toBe("old.png");
    expect(workflow["3"]?.inputs).toEqual({ image: "mask.png", channel: "alpha" });
    expect(images).toEqual([
      { name: "cat.png", image: dataA },
      { name: "mask.png", image: dataB },
    ]);
    expect(twoLoaders["1"]?.inputs.image).toBe("old.png");
  });

  it("sends a pasted URL as a url entry named after its path, for the worker to fetch", () => {
    const signed = "https://bucket.s3.amazonaws.com/in/My%20Cat.png?X-Amz-Signature=abc";
    const { workflow, images } = wireAttachments(twoLoaders, [
      urlAttachment("1", `  ${signed} `),
      urlAttachment("2", signed),
      urlAttachment("3", "s3://bucket/masks/"),
    ]);
    expect(images).toEqual([
      { name: "My_Cat.png", url: signed },
      { name: "image.png", url: "s3://bucket/masks/" },
    ]);
    expect([workflow["1"]?.inputs.image, workflow["2"]?.inputs.image]).toEqual(["My_Cat.png", "My_Cat.png"]);
    expect(workflow["3"]?.inputs.image).toBe("image.png");
  });

  it.each([
    ["photo.png", "is not a URL; paste one starting with https://"],
    ["file:///etc/passwd", "file: URLs cannot be fetched"],
    ["ftp://host/p.png", "ftp: URLs cannot be fetched"],
  ])("refuses the pasted text %j, saying why", (text, message) => {
    expect(() => urlAttachment("1", text)).toThrow(AttachmentError);
    expect(() => urlAttachment("1", text)).toThrow(message);
  });

  it("sends the same file dropped on two nodes once", () => {
    const { workflow, images } = wireAttachments(twoLoaders, [
      { nodeId: "1", fileName: "cat.png", data: dataA },
      { nodeId: "2", fileName: "cat.png", data: dataA },
    ]);
    expect(images).toHaveLength(1);
    expect([workflow["1"]?.inputs.image, workflow["2"]?.inputs.image]).toEqual(["cat.png", "cat.png"]);
  });

  it("renames a different file with a name already used, because the worker refuses duplicates", () => {
    const { workflow, images } = wireAttachments(twoLoaders, [
      { nodeId: "1", fileName: "photo.png", data: dataA },
      { nodeId: "2", fileName: "photo.png", data: dataB },
    ]);
    expect(images.map((i) => i.name)).toEqual(["photo.png", "photo_2.png"]);
    expect(workflow["2"]?.inputs.image).toBe("photo_2.png");
  });

  it.each([
    ["../../etc/passwd", "passwd"],
    ["C:\\Users\\me\\My Photo (1).PNG", "My_Photo_1_.PNG"],
    ["..png", "png"],
    [".hidden.png", "hidden.png"],
    ["", "image.png"],
    ["日本.png", "png"],
    ["___", "image.png"],
  ])("makes %j a plain file name: %j", (input, expected) => {
    expect(safeFileName(input)).toBe(expected);
  });

  it("refuses a node that is missing or takes no image, and an empty file", () => {
    expect(() => wireAttachments(twoLoaders, [{ nodeId: "9", fileName: "a.png", data: dataA }])).toThrow(
      new AttachmentError("node 9 is not in this workflow"),
    );
    expect(() => wireAttachments(twoLoaders, [{ nodeId: "4", fileName: "a.png", data: dataA }])).toThrow(
      "node 4 (SaveImage) takes no input file",
    );
    expect(() => wireAttachments(twoLoaders, [{ nodeId: "1", fileName: "a.png", data: "" }])).toThrow(
      "a.png is empty",
    );
  });
});

describe("prepareJobInput", () => {
  const graph: ApiWorkflow = {
    "1": { class_type: "LoadImage", inputs: { image: "old.png" } },
    "2": { class_type: "KSampler", inputs: { seed: 1, steps: 20 } },
  };
  const form = buildForm(graph);
  const image = { nodeId: "1", fileName: "a b.png", data: "data:image/png;base64,AAAA" };

  it("gives the job input with edited values and wired images, and its size", () => {
    const prepared = prepareJobInput(graph, form, { "2.steps": "8" }, [image], 1024);
    expect(prepared).toEqual({
      ok: true,
      input: {
        workflow: {
          "1": { class_type: "LoadImage", inputs: { image: "a_b.png" } },
          "2": { class_type: "KSampler", inputs: { seed: 1, steps: 8 } },
        },
        images: [{ name: "a_b.png", image: image.data }],
      },
      sizeBytes: expect.any(Number),
    });
  });

  it("leaves images out when none are attached", () => {
    const prepared = prepareJobInput(graph, form, {}, [], null);
    expect(prepared.ok && prepared.input).toEqual({ workflow: graph });
  });

  it("returns the bad fields, an attachment problem, or the size over the limit", () => {
    expect(prepareJobInput(graph, form, { "2.steps": "many" }, [], null)).toEqual({
      ok: false,
      message: "Fix the marked fields first.",
      problems: [{ key: "2.steps", message: "must be a number" }],
    });
    expect(prepareJobInput(graph, form, {}, [{ ...image, nodeId: "2" }], null)).toEqual({
      ok: false,
      message: "node 2 (KSampler) takes no input file",
      problems: [],
    });
    const big = { ...image, data: `data:image/png;base64,${"A".repeat(2 * 1024 * 1024)}` };
    expect(prepareJobInput(graph, form, {}, [big], 1024 * 1024)).toEqual({
      ok: false,
      message:
        "This request is 2.0 MB, over the 1.0 MB limit (RunPod takes at most 10 MB on /run, which this page uses); use smaller input images. Nothing was sent.",
      problems: [],
      tooLarge: { sizeBytes: expect.any(Number), maxBytes: 1024 * 1024 },
    });
  });
});
