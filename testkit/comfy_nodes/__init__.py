"""Custom node packs the fault suite copies into a real ComfyUI's custom_nodes/ (testkit.comfy_process)."""
