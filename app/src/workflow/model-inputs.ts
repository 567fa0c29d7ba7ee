/**
 * Which loader inputs name a model file, and in which of ComfyUI's `models/` folders it lives, so
 * the form can offer the files the endpoint's image has (from its manifest.toml). Pure.
 *
 * Folder names are ComfyUI's (`folder_paths`) and manifest.toml's `folder`; ComfyUI's older
 * aliases (`unet` for `diffusion_models`, `clip` for `text_encoders`) count as the same folder.
 */

/** `ClassType.input` first: the same input name means another folder on these nodes. */
const FOLDER_BY_NODE_INPUT: Record<string, string> = {
  "CLIPVisionLoader.clip_name": "clip_vision",
  "UpscaleModelLoader.model_name": "upscale_models",
  "StyleModelLoader.style_model_name": "style_models",
  "GLIGENLoader.gligen_name": "gligen",
  "HypernetworkLoader.hypernetwork_name": "hypernetworks",
  "PhotoMakerLoader.photomaker_model_name": "photomaker",
};

/** ...then by input name (`clip_name1`..`clip_name4` of the dual/triple/quad CLIP loaders too). */
const FOLDER_BY_INPUT: ReadonlyArray<[RegExp, string]> = [
  [/^ckpt_name$/, "checkpoints"],
  [/^unet_name$/, "diffusion_models"],
  [/^vae_name$/, "vae"],
  [/^lora_name(_\d+)?$/, "loras"],
  [/^clip_name\d?$/, "text_encoders"],
  [/^control_net_name$/, "controlnet"],
];

const ALIASES: Record<string, string> = {
  unet: "diffusion_models",
  clip: "text_encoders",
  t2i_adapter: "controlnet",
  upscale_model: "upscale_models",
};

/** The models folder a loader input picks a file from, or null when it is not a model name. */
export function modelFolderFor(classType: string, input: string): string | null {
  const byNode = FOLDER_BY_NODE_INPUT[`${classType}.${input}`];
  if (byNode !== undefined) return byNode;
  for (const [pattern, folder] of FOLDER_BY_INPUT) if (pattern.test(input)) return folder;
  return null;
}

/** A manifest `folder` (or ComfyUI alias) as the name modelFolderFor uses. */
export function canonicalFolder(folder: string): string {
  const first = folder.split("/")[0] ?? folder;
  return ALIASES[first] ?? first;
}

/** What GET /api/models answers: model file names by folder, and where they came from. */
export interface ModelLists {
  /** "manifest": the image's manifest.toml; "none": no list (the page keeps free text only). */
  source: "manifest" | "none";
  folders: Record<string, string[]>;
  /** Why there is no list, or which file it came from. */
  note: string;
}

/** GET /api/models's body, checked; anything unexpected is no list rather than an error. */
export function parseModelLists(value: unknown): ModelLists {
  const none: ModelLists = { source: "none", folders: {}, note: "the app server sent no model list" };
  if (typeof value !== "object" || value === null) return none;
  const record = value as Record<string, unknown>;
  const folders: Record<string, string[]> = {};
  if (typeof record.folders === "object" && record.folders !== null) {
    for (const [folder, names] of Object.entries(record.folders as Record<string, unknown>)) {
      if (Array.isArray(names)) folders[folder] = names.filter((n): n is string => typeof n === "string");
    }
  }
  return {
    source: record.source === "manifest" ? "manifest" : "none",
    folders,
    note: typeof record.note === "string" ? record.note : "",
  };
}
