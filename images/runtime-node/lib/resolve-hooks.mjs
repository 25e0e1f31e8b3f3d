// Loader hook, registered before the scoring module is imported: the bare name `edgeml-runtime`
// (the API scoring code imports) resolves to the runtime's own module, wherever the app lives.
let runtimeUrl;

export function initialize(data) {
  runtimeUrl = data && data.runtimeUrl;
}

export async function resolve(specifier, context, nextResolve) {
  if (specifier === 'edgeml-runtime' && runtimeUrl) return { url: runtimeUrl, format: 'commonjs', shortCircuit: true };
  return nextResolve(specifier, context);
}
