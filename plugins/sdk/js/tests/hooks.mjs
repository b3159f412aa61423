// Module hooks for testing the SDK under Node: the WIT imports (`flotilla:types/log@0.1.0`,
// `flotilla:policy-check/spoke@0.1.0`) resolve to stubs/host.mjs, which records calls.
export async function resolve(specifier, context, next) {
  if (specifier.startsWith('flotilla:')) {
    return { url: new URL('./stubs/host.mjs', import.meta.url).href, shortCircuit: true };
  }
  return next(specifier, context);
}
