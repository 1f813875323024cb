export default async function globalTeardown(): Promise<void> {
  const teardown = (globalThis as Record<string, unknown>).__RDM_TEARDOWN__ as (() => Promise<void>) | undefined;
  await teardown?.();
}
