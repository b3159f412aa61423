// What a host would provide, for tests: log lines are kept; spoke objects come from `objects`.
export const logged = [];
export const objects = [];
export function log(level, message) {
  logged.push([level, message]);
}
export function listObjects(kind, namespace, _selector) {
  return objects
    .filter((o) => o.apiVersion === kind.apiVersion && o.kind === kind.kind && (namespace === undefined || o.metadata?.namespace === namespace))
    .map((o) => JSON.stringify(o));
}
export function getObject(kind, namespace, name) {
  const o = objects.find((x) => x.apiVersion === kind.apiVersion && x.kind === kind.kind && x.metadata?.namespace === namespace && x.metadata?.name === name);
  return o === undefined ? undefined : JSON.stringify(o);
}
