// Loader hooks, registered only when an ES-module score.js was first loaded as CommonJS (Node 18
// without "type": "module"): the app's own .js files (not its node_modules) load as ES modules.
let appDirUrl;

export function initialize(data) {
  appDirUrl = data && data.appDirUrl;
}

export async function load(url, context, nextLoad) {
  if (appDirUrl && url.startsWith(appDirUrl)) {
    const path = url.split(/[?#]/)[0];
    if (path.endsWith('.js') && !path.slice(appDirUrl.length).split('/').includes('node_modules')) {
      return nextLoad(url, { ...context, format: 'module' });
    }
  }
  return nextLoad(url, context);
}
