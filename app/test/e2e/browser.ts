/**
 * Debian's Chromium driven by playwright-core. Playwright's own browser builds are never
 * downloaded (that fails on this network): CHROMIUM (default /usr/bin/chromium) is launched with
 * a fresh profile that is deleted afterwards.
 */

import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type BrowserContext, chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

// Headless, sandbox off (CI runs as root), nothing that phones home. SwiftShader gives WebGL2
// without a GPU, which the splat viewer needs; newer Chromium only uses it when told to.
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--enable-unsafe-swiftshader",
];

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchBrowser(downloadsDir: string): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM)`);
  }
  const profile = await mkdtemp(path.join(tmpdir(), "app-e2e-profile-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 800 },
    acceptDownloads: true,
    downloadsPath: downloadsDir,
  });
  return {
    context,
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
