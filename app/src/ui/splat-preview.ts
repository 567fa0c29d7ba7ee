/**
 * A splat file from disk (a `.ply` downloaded from a pod, a converted `.spz` or `.splat`) in the same 3D
 * view the results use, to compare with what the endpoint returns.
 */

import { h } from "./dom.js";
import { dropZone } from "./drop-zone.js";
import { isSplatName, mountSplat } from "./splat-view.js";

export function splatPreview(root: HTMLElement): void {
  const media = h("div", { class: "output-media", "data-testid": "preview-media" });
  const card = h("figure", { class: "output-card output-splat", hidden: true }, media);
  let dispose = (): void => undefined;
  root.append(
    dropZone({
      text: "Drop a .ply, .spz or .splat file here, or press to choose one",
      accept: ".ply,.spz,.splat",
      label: "Splat file to look at",
      testId: "splat-file",
      onFile: (file) => {
        dispose();
        media.replaceChildren();
        delete media.dataset.splatCount;
        card.hidden = false;
        if (!isSplatName(file.name)) {
          media.append(h("p", { role: "alert" }, `${file.name} is not a .ply, .spz or .splat file.`));
          dispose = () => undefined;
          return;
        }
        dispose = mountSplat(media, file.name, () => file.arrayBuffer());
      },
    }),
    card,
  );
}
