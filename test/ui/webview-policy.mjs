// What a webview may load, checked from outside it: the Content-Security-Policy its document declares, and
// the requests its frames make while it works. The only origins a VS Code webview needs are the workbench's
// own (code-server here, which serves the webview host page) and the webview resource origin, whose requests
// the webview's service worker answers from the extension's files without touching the network.
import { URL } from 'node:url';

/** Hosts of the webview resource origin (VS Code's `webviewResourceBaseHost`, vscode-cdn.net). */
const RESOURCE_HOST = /^[a-z0-9+.-]+\.vscode-resource\.vscode-cdn\.net$/;
/** Where the workbench serves the webview host page and its service worker. */
const WEBVIEW_HOST_PATH = '/vs/workbench/contrib/webview/browser/pre/';

/** A CSP string as a Map from directive name to its list of sources, e.g. 'script-src' → ["'nonce-…'"]. */
export function parseCsp(text) {
  const directives = new Map();
  for (const part of text.split(';')) {
    const [name, ...sources] = part.trim().split(/\s+/);
    if (!name) continue;
    // The first occurrence of a directive wins; browsers ignore repeats.
    if (!directives.has(name.toLowerCase())) directives.set(name.toLowerCase(), sources);
  }
  return directives;
}

/**
 * The sources of a parsed CSP that could reach the network: scheme-only `http:` / `https:` / `ws(s):`, `*`,
 * and any host source except the webview resource origin. Each is reported as "directive source".
 */
export function networkSources(directives) {
  const found = [];
  for (const [name, sources] of directives) {
    for (const source of sources) {
      const lower = source.toLowerCase();
      if (lower.startsWith("'") || lower === 'data:' || lower === 'blob:') continue;
      const host = /^(?:https:\/\/)?([^/:]+)/.exec(lower)?.[1] ?? '';
      const resourceOrigin =
        /^https:\/\//.test(lower) && (RESOURCE_HOST.test(host) || host === '*.vscode-cdn.net');
      if (!resourceOrigin) found.push(`${name} ${source}`);
    }
  }
  return found;
}

function frameChain(frame) {
  const urls = [];
  for (let at = frame; at; at = at.parentFrame()) urls.push(at.url());
  return urls;
}

/**
 * Whether a request belongs to a webview: it loads a webview host page or its service worker, or its frame, or
 * a frame above it, is a webview host page, or the webview service worker makes it.
 */
function fromWebview(request) {
  if (request.url().includes(WEBVIEW_HOST_PATH)) return true;
  let frame;
  try {
    frame = request.frame();
  } catch {
    // A service worker's request has no frame.
  }
  if (frame) return frameChain(frame).some((url) => url.includes(WEBVIEW_HOST_PATH));
  const worker = request.serviceWorker?.();
  return worker !== null && worker !== undefined && worker.url().includes(WEBVIEW_HOST_PATH);
}

/**
 * Starts recording the requests of every webview frame (and of the webview service worker) in the page's
 * browser context. `stop()` ends the recording and resolves to the requests with their responses.
 */
export function recordWebviewRequests(page) {
  const requests = [];
  const context = page.context();
  const onRequest = (request) => {
    if (fromWebview(request)) requests.push(request);
  };
  context.on('request', onRequest);
  return {
    requests,
    async stop() {
      context.off('request', onRequest);
      return Promise.all(
        requests.map(async (request) => ({
          request,
          url: request.url(),
          response: await request.response().catch(() => null),
          failure: request.failure()?.errorText,
        })),
      );
    },
  };
}

/**
 * Why a recorded request breaks the rule "local only", or undefined when it keeps it: its origin must be the
 * workbench's, or the webview resource origin answered by the service worker (so it never left the browser).
 */
export function remoteReason({ url, response, failure }, workbenchOrigin) {
  if (url.startsWith('data:') || url.startsWith('blob:')) return undefined;
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return 'an unparsable URL';
  }
  if (parsed.origin === workbenchOrigin) return undefined;
  if (parsed.protocol === 'https:' && RESOURCE_HOST.test(parsed.hostname)) {
    if (response?.fromServiceWorker()) return undefined;
    return response
      ? 'a webview resource answered from the network, not by the service worker'
      : `a webview resource with no answer from the service worker${failure ? ` (${failure})` : ''}`;
  }
  return `origin ${parsed.origin} is neither the workbench's (${workbenchOrigin}) nor the webview resource origin`;
}
