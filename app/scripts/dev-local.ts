/**
 * `npm run dev:local`: the app against the local endpoint, in one command. Starts the ComfyUI test
 * server (or uses the ComfyUI at COMFY_HOST, with COMFYUI_PATH), the local endpoint on
 * DEV_ENDPOINT_PORT (8000) and the app on APP_PORT (3000), then waits for Ctrl+C to stop them all.
 */

import path from "node:path";
import { fileURLToPath } from "node:url";
import { startStack } from "./stack.js";

const APP_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

function port(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw === undefined || raw === "" ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    console.error(`${name} must be a port number (0 for any free one), got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return value;
}

async function main(): Promise<void> {
  const comfyHost = process.env.COMFY_HOST;
  const stepDelay = Number(process.env.DEV_STEP_DELAY_S ?? "0.2");
  const stack = await startStack({
    appDir: APP_DIR,
    endpointPort: port("DEV_ENDPOINT_PORT", 8000),
    appPort: port("APP_PORT", 3000),
    say: (line) => console.log(line),
    localS3: process.env.DEV_LOCAL_S3 !== "0",
    // Progress twice a second (the worker's default is once) so the bar moves smoothly.
    workerEnv: { COMFY_PROGRESS_INTERVAL_S: process.env.COMFY_PROGRESS_INTERVAL_S ?? "0.5" },
    // Slow sampler steps on the test server, so the progress bar has something to show.
    ...(comfyHost ? { comfyHost, comfyuiPath: process.env.COMFYUI_PATH ?? "" } : { stepDelayS: stepDelay }),
  });
  console.log("");
  console.log(`  App:       ${stack.appUrl}`);
  console.log(`  Endpoint:  ${stack.endpointUrl}  (Authorization: Bearer ${stack.apiKey})`);
  console.log(`  ComfyUI:   ${stack.comfyUrl ?? comfyHost}`);
  if (stack.s3Url !== null) {
    console.log(
      `  Local S3:  ${stack.s3Url}  bucket comfy-outputs (in memory; big outputs come back as s3_url)`,
    );
  }
  console.log(`  Logs:      ${stack.logDir}`);
  console.log("\n  Press Ctrl+C to stop.\n");
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    console.log("stopping...");
    void stack.stop().then(() => process.exit(0));
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main().catch((error: unknown) => {
  console.error(`dev:local could not start: ${(error as Error).message}`);
  process.exit(1);
});
