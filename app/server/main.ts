/**
 * Entry point: `node dist/node/server/main.js`. Reads the settings, listens, and prints
 * `app listening on http://HOST:PORT` once the port accepts connections (scripts wait for it).
 */

import path from "node:path";
import { fileURLToPath } from "node:url";
import { createApp } from "./app.js";
import { ConfigError, loadConfig } from "./config.js";

// dist/node/server/main.js -> the app folder, which relative defaults are resolved against.
const APP_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

function main(): void {
  let config;
  try {
    config = loadConfig(process.env, APP_DIR);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`The app server cannot start:\n${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const server = createApp(config);
  server.listen(config.port, config.host, () => {
    const address = server.address();
    const port = typeof address === "object" && address !== null ? address.port : config.port;
    const host = config.host.includes(":") ? `[${config.host}]` : config.host;
    console.log(`app listening on http://${host}:${port} (endpoint ${config.baseUrl}/${config.endpointId})`);
  });
  const stop = (): void => {
    server.close(() => process.exit(0));
    // Open keep-alive or long-polling connections would hold close() back; they are ours to end.
    server.closeAllConnections();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main();
