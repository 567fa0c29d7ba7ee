/**
 * What an API-format graph does not say about its inputs: which strings are choices (and their
 * options), which numbers are seeds or whole numbers, which inputs name an uploaded image.
 *
 * RunPod serverless exposes no `/object_info`, so the app cannot ask ComfyUI; this table covers
 * the core nodes people put in studio workflows. Anything not listed still gets a plain text or
 * number field, and ComfyUI's own validation (WORKFLOW_INVALID) has the last word.
 */

/** ComfyUI 0.3.x `comfy.samplers.KSampler.SAMPLERS`. */
// prettier-ignore
const SAMPLERS = [
  "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "dpm_2",
  "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral", "dpmpp_2s_ancestral_cfg_pp",
  "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu",
  "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm", "ipndm",
  "ipndm_v", "deis", "res_multistep", "res_multistep_cfg_pp", "res_multistep_ancestral",
  "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp", "er_sde", "seeds_2",
  "seeds_3", "sa_solver", "sa_solver_pece", "ddim", "uni_pc", "uni_pc_bh2",
];

/** ComfyUI 0.3.x `comfy.samplers.SCHEDULER_NAMES`. */
// prettier-ignore
const SCHEDULERS = [
  "simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal", "linear_quadratic",
  "kl_optimal",
];

const UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"];

/** Options by `ClassType.input` first (the same name means different things on different nodes)... */
const CHOICES_BY_NODE_INPUT: Record<string, readonly string[]> = {
  "SaveVideo.format": ["auto", "mp4"],
  "SaveVideo.codec": ["auto", "h264"],
  "SaveWEBM.codec": ["vp9", "av1"],
  "SaveAnimatedWEBP.method": ["default", "fastest", "slowest"],
  "VHS_VideoCombine.format": ["image/gif", "image/webp", "video/h264-mp4", "video/webm"],
  "ImageScale.crop": ["disabled", "center"],
  "LatentUpscale.crop": ["disabled", "center"],
  "KSamplerAdvanced.add_noise": ["enable", "disable"],
  "KSamplerAdvanced.return_with_leftover_noise": ["disable", "enable"],
};

/** ...then by input name alone. */
const CHOICES_BY_INPUT: Record<string, readonly string[]> = {
  sampler_name: SAMPLERS,
  scheduler: SCHEDULERS,
  upscale_method: UPSCALE_METHODS,
};

/** Inputs that take a random seed (KSampler's `seed`, KSamplerAdvanced's `noise_seed`). */
const SEED_INPUTS = new Set(["seed", "noise_seed"]);

/** Number inputs ComfyUI declares INT: the form refuses fractions for these. */
// prettier-ignore
const INTEGER_INPUTS = new Set([
  "steps", "width", "height", "batch_size", "length", "color", "quality", "crf", "compress_level",
  "loop_count", "start_at_step", "end_at_step", "amount", "batch_index", "frame_rate_int",
]);

export type MediaKind = "image" | "video" | "audio";

/**
 * Nodes whose input names a file in ComfyUI's input folder (an upload in the node's schema):
 * the form offers a file drop there. Core and Video Helper Suite loaders.
 */
const MEDIA_INPUT_BY_NODE: Record<string, { input: string; media: MediaKind }> = {
  LoadImage: { input: "image", media: "image" },
  LoadImageMask: { input: "image", media: "image" },
  LoadVideo: { input: "file", media: "video" },
  LoadAudio: { input: "audio", media: "audio" },
  VHS_LoadVideo: { input: "video", media: "video" },
  VHS_LoadVideoFFmpeg: { input: "video", media: "video" },
  VHS_LoadAudioUpload: { input: "audio", media: "audio" },
};

// prettier-ignore
const MEDIA_BY_EXTENSION: Record<string, MediaKind> = {
  png: "image", jpg: "image", jpeg: "image", webp: "image", gif: "image", bmp: "image", tif: "image", tiff: "image",
  mp4: "video", webm: "video", mov: "video", mkv: "video", avi: "video", m4v: "video",
  wav: "audio", mp3: "audio", flac: "audio", ogg: "audio", m4a: "audio", opus: "audio",
};

/** The `accept` attribute of a file picker for each kind. */
export const MEDIA_ACCEPT: Record<MediaKind, string> = {
  image: "image/*",
  video: "video/*",
  audio: "audio/*",
};

/** String inputs shown as a text area: prompts and other long text. */
const MULTILINE_INPUTS = new Set([
  "text",
  "prompt",
  "positive",
  "negative",
  "string_a",
  "string_b",
  "text_g",
  "text_l",
]);

export function choicesFor(classType: string, input: string): readonly string[] | null {
  return CHOICES_BY_NODE_INPUT[`${classType}.${input}`] ?? CHOICES_BY_INPUT[input] ?? null;
}

export function isSeedInput(input: string): boolean {
  return SEED_INPUTS.has(input);
}

export function isIntegerInput(input: string): boolean {
  return SEED_INPUTS.has(input) || INTEGER_INPUTS.has(input);
}

/**
 * What kind of file the input names, when it names a file in ComfyUI's input folder: the known
 * loaders above, and any other `Load*` node input whose value is a plain file name with a media
 * extension (a custom loader such as `LoadImageWithAlpha`: `"photo.png"`). Paths (with `/`) are
 * the node's own business, not an upload.
 */
export function mediaInputKind(classType: string, input: string, value: unknown): MediaKind | null {
  const known = MEDIA_INPUT_BY_NODE[classType];
  if (known !== undefined) {
    return known.input === input ? known.media : null;
  }
  if (!classType.startsWith("Load") || typeof value !== "string" || /[\\/]/.test(value)) return null;
  const extension = /\.([A-Za-z0-9]+)$/.exec(value)?.[1]?.toLowerCase();
  return extension === undefined ? null : (MEDIA_BY_EXTENSION[extension] ?? null);
}

export function isMultilineInput(input: string): boolean {
  return MULTILINE_INPUTS.has(input);
}
