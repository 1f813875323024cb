// docker-compose.yml cannot be run here (no Docker engine), so this test keeps it honest by
// parsing it: services, images, commands, environment, ports, healthchecks, mounted files and the
// Temporal search attributes, each checked against the code it has to agree with.
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { SEARCH_ATTRIBUTES } from '../domain/search-attributes';
import { loadConfig } from '../runtime/config';

const root = path.resolve(__dirname, '..');
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');

type Dict = Record<string, unknown>;
interface Service {
  image?: string;
  build?: unknown;
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Dict | string[];
  ports?: (string | Dict)[];
  volumes?: (string | Dict)[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  container_name?: string;
  deploy?: Dict;
}

// `merge: true` resolves the `<<: *anchor` merge keys that Compose understands.
const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service>; volumes?: Dict };
const services = compose.services;
const packageJson = JSON.parse(read('package.json')) as { scripts: Record<string, string> };

/** The zod schema's keys in runtime/config.ts (two-space-indented `NAME:` lines). */
const configKeys = new Set([...read('runtime/config.ts').matchAll(/^ {2}([A-Z][A-Z0-9_]*):/gm)].map((m) => m[1]));

function env(service: Service): Record<string, string> {
  const e = service.environment ?? {};
  if (Array.isArray(e)) {
    return Object.fromEntries(e.map((line) => {
      const i = line.indexOf('=');
      return i < 0 ? [line, ''] : [line.slice(0, i), line.slice(i + 1)];
    }));
  }
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, String(v)]));
}

/** Compose interpolation: `${VAR:-default}` → default, `${VAR:?message}` → a sample (required). */
function interpolate(value: string, samples: Record<string, string>): string {
  return value.replace(/\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}/g, (_m, name: string, op?: string, arg?: string) => {
    if (name in samples) return samples[name];
    if (op === '-') return arg ?? '';
    throw new Error(`no sample for required variable ${name}`);
  });
}

function words(cmd: string | string[] | undefined): string[] {
  if (cmd === undefined) return [];
  return Array.isArray(cmd) ? cmd : cmd.trim().split(/\s+/);
}

function dependsOn(service: Service): Record<string, string> {
  const d = service.depends_on ?? {};
  if (Array.isArray(d)) return Object.fromEntries(d.map((name) => [name, 'service_started']));
  return Object.fromEntries(Object.entries(d).map(([name, v]) => [name, v?.condition ?? 'service_started']));
}

/** Published host ports ("3000:3000", "127.0.0.1:1883:1883" or the long syntax). */
function publishedPorts(service: Service): number[] {
  return (service.ports ?? []).map((p) => {
    if (typeof p === 'string') {
      const parts = p.split('/')[0].split(':');
      return Number(parts.length >= 2 ? parts[parts.length - 2] : parts[0]);
    }
    return Number(p.published ?? p.target);
  });
}

/** Bind mounts (short syntax "src:dst[:mode]" whose source is a path, or long syntax type: bind). */
function bindSources(service: Service): string[] {
  return (service.volumes ?? []).flatMap((v) => {
    if (typeof v === 'string') {
      const src = v.split(':')[0];
      return /^[./~]/.test(src) ? [src] : [];
    }
    return v.type === 'bind' ? [String(v.source)] : [];
  });
}

const APP_SERVICES = ['api', 'worker', 'bridge', 'migrate'];

describe('docker-compose.yml', () => {
  test('has the services of the production-like stack', () => {
    for (const name of [
      'postgres', 'temporal', 'temporal-schema', 'temporal-admin-tools', 'temporal-ui',
      'mosquitto', 'prometheus', 'grafana', 'migrate', 'api', 'worker', 'bridge',
    ]) {
      expect(Object.keys(services)).toContain(name);
    }
  });

  test('every image is pinned to an explicit tag, never latest', () => {
    for (const [name, service] of Object.entries(services)) {
      expect({ name, hasImage: typeof service.image === 'string' }).toEqual({ name, hasImage: true });
      const image = service.image as string;
      const tag = image.includes('@') ? 'digest' : image.slice(image.lastIndexOf('/') + 1).split(':')[1];
      expect({ name, image, tagged: Boolean(tag) && tag !== 'latest' }).toEqual({ name, image, tagged: true });
    }
  });

  test('the three Temporal images are one release (server and admin-tools tags match)', () => {
    const tag = (s: string) => (services[s].image as string).split(':')[1];
    expect(tag('temporal')).toMatch(/^1\.\d+\.\d+$/);
    expect(tag('temporal-schema')).toBe(tag('temporal'));
    expect(tag('temporal-admin-tools')).toBe(tag('temporal'));
  });

  test('api, worker, bridge and migrate are one build and run npm scripts that exist', () => {
    const builds = APP_SERVICES.map((s) => JSON.stringify([services[s].build, services[s].image]));
    expect(services.api.build).toBeDefined();
    expect(new Set(builds).size).toBe(1);
    const expected: Record<string, string> = { api: 'api', worker: 'worker', bridge: 'bridge', migrate: 'migrate' };
    for (const s of APP_SERVICES) {
      const cmd = words(services[s].command);
      expect(cmd.slice(0, 2)).toEqual(['npm', 'run']);
      expect(cmd[2]).toBe(expected[s]);
      expect(Object.keys(packageJson.scripts)).toContain(cmd[2]);
    }
  });

  test('the Dockerfile builds the shared image on node 20 and runs it as a non-root user', () => {
    const dockerfile = read(services.api.build && typeof services.api.build === 'object'
      ? String((services.api.build as Dict).dockerfile ?? 'Dockerfile')
      : 'Dockerfile');
    expect(dockerfile).toMatch(/^FROM node:20-bookworm-slim\b/m);
    expect(dockerfile).toMatch(/^RUN npm ci\b/m);
    const users = [...dockerfile.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]);
    expect(users.length).toBeGreaterThan(0);
    expect(users[users.length - 1]).not.toMatch(/^(root|0)$/);
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim());
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'data', '.git']));
  });

  test('every variable the app services set is a key of runtime/config.ts', () => {
    expect(configKeys.size).toBeGreaterThan(10);
    expect(configKeys).toContain('DATABASE_URL');
    for (const s of APP_SERVICES) {
      for (const key of Object.keys(env(services[s]))) {
        expect({ service: s, key, known: configKeys.has(key) }).toEqual({ service: s, key, known: true });
      }
    }
  });

  test('the values the app services get pass runtime/config.ts validation', () => {
    const samples = { ADMIN_TOKEN: 'a'.repeat(24), DEVICE_SECRET_KEY: 'k'.repeat(32) };
    for (const s of APP_SERVICES) {
      const resolved = Object.fromEntries(Object.entries(env(services[s])).map(([k, v]) => [k, interpolate(v, samples)]));
      const config = loadConfig(resolved); // throws a ConfigError naming the bad variable
      if (s === 'api') expect(config.PORT).toBe(3000);
    }
  });

  test('the api and the worker are wired to the stack, with the secrets required', () => {
    const api = env(services.api);
    const worker = env(services.worker);
    for (const key of ['PORT', 'HOST', 'DATABASE_URL', 'MQTT_URL', 'TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'ADMIN_TOKEN', 'DEVICE_SECRET_KEY', 'DATA_DIR']) {
      expect(api).toHaveProperty(key);
    }
    expect(api.PORT).toBe('3000');
    expect(api.HOST).toBe('0.0.0.0');
    // The worker: the api's environment minus PORT, so both reach the same stack.
    const { PORT: _port, ...apiWithoutPort } = api;
    expect(worker).toEqual(apiWithoutPort);
    expect(env(services.migrate).DATABASE_URL).toBe(api.DATABASE_URL);

    expect(new URL(api.DATABASE_URL).hostname).toBe('postgres');
    expect(new URL(api.MQTT_URL).hostname).toBe('mosquitto');
    expect(api.TEMPORAL_ADDRESS).toBe('temporal:7233');
    expect(api.TEMPORAL_NAMESPACE).toBe(env(services['temporal-admin-tools']).TEMPORAL_NAMESPACE);
    // Required: Compose refuses to start without them (${VAR:?message}); no default secret ships.
    expect(api.ADMIN_TOKEN).toMatch(/^\$\{ADMIN_TOKEN:\?[^}]+\}$/);
    expect(api.DEVICE_SECRET_KEY).toMatch(/^\$\{DEVICE_SECRET_KEY:\?[^}]+\}$/);
  });

  test('the worker can run as several replicas', () => {
    expect(services.worker.container_name).toBeUndefined();
    expect(services.worker.ports ?? []).toEqual([]);
  });

  test('publishes the api (3000), the Temporal UI (8233) and MQTT (1883)', () => {
    expect(publishedPorts(services.api)).toContain(3000);
    expect(publishedPorts(services['temporal-ui'])).toContain(8233);
    expect((services['temporal-ui'].ports ?? []).map(String)).toContain('8233:8080');
    expect(env(services['temporal-ui']).TEMPORAL_ADDRESS).toBe('temporal:7233');
    expect(publishedPorts(services.mosquitto)).toContain(1883);
    // No two services publish the same host port.
    const all = Object.values(services).flatMap(publishedPorts);
    expect(new Set(all).size).toBe(all.length);
  });

  test('depends_on names real services, and service_healthy only services with a healthcheck', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const [dep, condition] of Object.entries(dependsOn(service))) {
        expect({ name, dep, exists: dep in services }).toEqual({ name, dep, exists: true });
        expect(['service_started', 'service_healthy', 'service_completed_successfully']).toContain(condition);
        if (condition === 'service_healthy') {
          const hc = services[dep].healthcheck;
          expect({ name, dep, healthcheck: Boolean(hc?.test) && !hc?.disable }).toEqual({ name, dep, healthcheck: true });
        }
        if (condition === 'service_completed_successfully') {
          // A one-shot: it must not be restarted forever, or the dependent never starts.
          expect({ name, dep, restart: (services[dep] as Dict).restart ?? 'no' }).toEqual({ name, dep, restart: 'no' });
        }
      }
    }
  });

  test('the api starts after migrations, Temporal (with its namespace) and the broker', () => {
    const deps = dependsOn(services.api);
    expect(deps).toMatchObject({
      migrate: 'service_completed_successfully',
      temporal: 'service_healthy',
      'temporal-admin-tools': 'service_completed_successfully',
    });
    expect(deps).toHaveProperty('mosquitto');
    expect(dependsOn(services.temporal)).toHaveProperty('temporal-schema');
    expect(dependsOn(services['temporal-schema'])).toEqual({ postgres: 'service_healthy' });
    const test = words(services.api.healthcheck?.test).join(' ');
    expect(test).toContain('/readyz');
    expect(test).toContain(':3000');
  });

  test('mounts only files of this repository, and they exist', () => {
    const sources = Object.values(services).flatMap(bindSources);
    expect(sources.length).toBeGreaterThan(0);
    for (const src of sources) {
      const abs = path.resolve(root, src);
      expect({ src, insideRepo: src.startsWith('./') && abs.startsWith(root + path.sep) }).toEqual({ src, insideRepo: true });
      expect({ src, exists: fs.existsSync(abs) }).toEqual({ src, exists: true });
    }
    // Scripts run by the one-shot containers exist in the mounted folder.
    for (const s of ['temporal-schema', 'temporal-admin-tools']) {
      const script = words(services[s].command).find((w) => w.startsWith('/deploy/'));
      expect(script).toBeDefined();
      expect(fs.existsSync(path.join(root, 'deploy/temporal', path.basename(script as string)))).toBe(true);
    }
  });

  test('mosquitto.conf turns on TCP_NODELAY, listens on 1883 and persists', () => {
    const conf = read('deploy/mosquitto/mosquitto.conf').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    expect(conf).toContain('set_tcp_nodelay true');
    expect(conf.some((l) => /^listener 1883\b/.test(l))).toBe(true);
    expect(conf).toContain('persistence true');
  });

  test('prometheus scrapes the api and the worker, and grafana has it as a datasource', () => {
    const prom = parse(read('deploy/prometheus/prometheus.yml')) as { scrape_configs: Dict[] };
    const jobs = Object.fromEntries(prom.scrape_configs.map((j) => [j.job_name, JSON.stringify(j)]));
    expect(jobs.api).toContain('3000');
    expect(jobs).toHaveProperty('worker');
    const ds = parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as { datasources: Dict[] };
    expect(ds.datasources).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'prometheus', url: 'http://prometheus:9090' })]));
  });

  test('registers exactly the search attributes of domain/search-attributes.ts', () => {
    // Temporal CLI type names for the SDK's IndexedValueType names.
    const cliType: Record<string, string> = {
      KEYWORD: 'Keyword', TEXT: 'Text', INT: 'Int', DOUBLE: 'Double', BOOL: 'Bool', DATETIME: 'Datetime', KEYWORD_LIST: 'KeywordList',
    };
    const declared = env(services['temporal-admin-tools']).SEARCH_ATTRIBUTES.trim().split(/\s+/).map((pair) => pair.split('='));
    const expected = Object.entries(SEARCH_ATTRIBUTES).map(([name, type]) => [name, cliType[type]]);
    expect(Object.fromEntries(declared)).toEqual(Object.fromEntries(expected));
    expect(declared).toHaveLength(expected.length);
    expect(read('deploy/temporal/setup-namespace.sh')).toContain('operator search-attribute create');
  });
});
