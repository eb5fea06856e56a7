// Dashboard webview front end. It runs inside the webview's sandbox and talks to the extension host
// only through postMessage; it loads nothing remote.
const root = document.getElementById('app');
if (root) {
  root.textContent = 'Tandem dashboard';
}
