/**
 * The live plant as its own process: `node --import tsx bench/live/plant-process.ts` with its configuration
 * as JSON in the environment variable LIVE_PLANT (see PlantProcessConfig). It
 *
 * - serves `/metrics` on 127.0.0.1 (a free port; the first stdout line is `{"event":"listening","port":N}`);
 * - reads the VirtualService from the API server every `pollMs` (as istiod watches it) and applies a new
 *   mirror percentage after the propagation delay;
 * - advances the plant at least every `tickMs` and on every scrape, and prints one ground-truth line a tick
 *   (`{"event":"tick",...TruthRow}`) on stdout;
 * - exits on SIGTERM/SIGINT, when its parent goes away (stdin closes), or at `deadlineMs` at the latest.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Guardrails } from '../../src/core/types.js';
import { EXPOSITION_CONTENT_TYPE, type ExpositionNames } from '../../src/sim/exposition.js';
import { buildScenario, type ScenarioName, withProductionNoise } from '../../src/sim/scenarios.js';
import { LivePlant, routeMirrorPercent } from './plant.js';
import { adaptScenario } from './scenario.js';

/** What the parent passes in LIVE_PLANT. */
export interface PlantProcessConfig {
  readonly scenario: ScenarioName;
  readonly seed: number;
  readonly durationSeconds: number;
  readonly t0Ms: number;
  readonly warmupSeconds: number;
  readonly propagationSeconds: number;
  readonly tickMs: number;
  readonly pollMs: number;
  /** ±share of production noise (0.05 = ±5 %). */
  readonly productionNoise: number;
  readonly bounds: { readonly minPercent: number; readonly maxPercent: number };
  readonly guardrails: Guardrails;
  readonly initialPercent: number;
  readonly names: ExpositionNames;
  readonly api: {
    readonly url: string;
    readonly token: string;
    readonly namespace: string;
    readonly name: string;
    readonly route: string;
    readonly mirrorHost: string;
  };
  /** Epoch ms after which the process exits whatever happens. */
  readonly deadlineMs: number;
}

const config = JSON.parse(process.env.LIVE_PLANT ?? '') as PlantProcessConfig;
const scenario = adaptScenario(
  buildScenario(config.scenario, config.seed, config.durationSeconds),
  config.durationSeconds,
);
const plantConfig = withProductionNoise(
  scenario.plant,
  config.seed,
  -config.warmupSeconds - 5,
  config.durationSeconds + 120,
  config.productionNoise,
);
const plant = new LivePlant({
  plant: plantConfig,
  seed: config.seed,
  t0Ms: config.t0Ms,
  startSeconds: plantNow() - 0.001,
  bounds: config.bounds,
  guardrails: config.guardrails,
  propagationSeconds: config.propagationSeconds,
  initialPercent: config.initialPercent,
  names: config.names,
});

function plantNow(): number {
  return (Date.now() - config.t0Ms) / 1000;
}

const out = (obj: object) => {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
};

const server = createServer((req, res) => {
  if (req.url === '/metrics' || req.url?.startsWith('/metrics?')) {
    plant.advanceTo(plantNow());
    const body = plant.metrics();
    res.writeHead(200, {
      'content-type': EXPOSITION_CONTENT_TYPE,
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found\n');
});

let stopping = false;
const timers: NodeJS.Timeout[] = [];
function stop(code: number): void {
  if (stopping) return;
  stopping = true;
  for (const t of timers) clearInterval(t);
  server.closeAllConnections();
  server.close(() => process.exit(code));
  setTimeout(() => process.exit(code), 2000).unref();
}

let polling = false;
let readErrors = 0;
async function poll(): Promise<void> {
  if (polling || stopping) return;
  polling = true;
  const { api } = config;
  try {
    const res = await fetch(
      `${api.url}/apis/networking.istio.io/v1/namespaces/${api.namespace}/virtualservices/${api.name}`,
      { headers: { authorization: `Bearer ${api.token}` }, signal: AbortSignal.timeout(2000) },
    );
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const percent = routeMirrorPercent(await res.json(), api.route, api.mirrorHost);
    if (percent !== undefined) {
      const t = plantNow();
      plant.advanceTo(t);
      plant.read(percent, t);
    }
  } catch (err) {
    readErrors++;
    if (readErrors <= 5 || readErrors % 100 === 0) {
      out({
        event: 'read-error',
        count: readErrors,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  } finally {
    polling = false;
  }
}

function tick(): void {
  if (Date.now() > config.deadlineMs) {
    stop(0);
    return;
  }
  plant.advanceTo(plantNow());
  out({ event: 'tick', ...plant.truth() });
}

process.on('SIGTERM', () => stop(0));
process.on('SIGINT', () => stop(0));
// The parent holds our stdin open: when it dies, stdin ends and so do we.
process.stdin.on('end', () => stop(0));
process.stdin.on('error', () => stop(0));
process.stdin.resume();
process.stdout.on('error', () => stop(0));

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  out({ event: 'listening', port, uSafe: plant.uSafe });
  timers.push(setInterval(tick, config.tickMs));
  timers.push(setInterval(() => void poll(), config.pollMs));
  void poll();
});
