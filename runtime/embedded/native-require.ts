// Loading ESM-only packages (aedes 1.x) from this CommonJS project, also under jest.
import { Module, createRequire } from 'node:module';

/**
 * Node's own loader for `id`: Node >= 20.19 can require() an ES module. jest swaps require and
 * even module.createRequire for its registry, which cannot on Node 20 ("Must use import to load
 * ES Module"; jest does from Node 24.9), so a plain Module instance loads it instead. Resolution
 * is fine either way. The module is then shared with no jest mocks: fine for a server library.
 */
export function requireNative<T>(id: string, from: string = __filename): T {
  const resolved = createRequire(from).resolve(id);
  return new Module(resolved).require(resolved) as T;
}
