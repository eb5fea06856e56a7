// The help text of `tandem-mcp`, printed by `help` and after every usage error.
export const USAGE = `Usage: tandem-mcp <command> [options]

Commands:
  serve       the MCP server on one workspace, over stdio (default) or loopback HTTP
                --workspace DIR      the workspace (required)
                --http [PORT]        HTTP on 127.0.0.1 (PORT 0 or none: a free port) instead of stdio; the
                                     URL goes to stderr, {url, token, pid} to DIR/.tandem/http.json (0600).
                                     The bearer token is TANDEM_MCP_TOKEN if set (32+ characters), else random
                --offline            use the built-in offline model instead of the vendors' APIs
                --codex-path PATH, --gemini-path PATH   the CLIs to run (default: codex, gemini on PATH)
                --concurrency N      worker processes at once across all runs, 1-16 (default 4)
                --step-timeout S     seconds a worker step may run (default 900)
                --idle-timeout S     seconds a worker may stay silent before it is stopped (default 300)
                --session-idle-timeout S   with --http: seconds an MCP session may sit idle (no request,
                                     no call in flight, no open stream) before it is closed (default 1800)
                --max-sessions N     with --http: live MCP sessions at most, 1-10000 (default 64); a new one
                                     evicts the session idle the longest
                --sandbox MODE       the OS sandbox (bubblewrap) of gemini steps and verification commands:
                                     required (refuse a step without it), auto (default: warn and run
                                     without it when bubblewrap is missing) or off
                --bwrap-path PATH    bubblewrap to use (default: bwrap on PATH)
              Logs go to stderr. Stops on SIGINT/SIGTERM or when the stdio client goes away: runs are
              cancelled and every worker process is killed.
  run [--strategy S | --playbook NAME] [options] "TASK"
              run one strategy or playbook and wait for it; events to stderr, the summary to stdout
                --strategy S         single_worker, codex_writes_gemini_reviews, gemini_writes_codex_reviews,
                                     parallel_dual_write_review or security_redteam_pass
                --playbook NAME      a playbook (see \`tandem-mcp playbooks\`) instead of a strategy
                --input KEY=VALUE    a playbook input, repeatable; VALUE is read as JSON when it parses
                                     (2, ["npm","test"]), as text otherwise (gemini); a string input
                                     always takes it as text
                --fallback           a worker step that still fails after its retries goes to the other
                                     CLI (once; a reviewer is never the CLI that wrote)
                --prompt TEXT        the task, instead of the last argument
                --workspace DIR      default: the current directory
                --offline            use the built-in offline model ([[scenario:...]] tags script it)
                --writer codex|gemini            for single_worker and security_redteam_pass
                --apply if_approved|always|never when a change reaches the workspace (default if_approved)
                --json               print summary.json instead of summary.md
                --codex-path PATH, --gemini-path PATH
                --sandbox required|auto|off, --bwrap-path PATH   as for serve
              Exit code: 0 succeeded, 3 partial, 1 failed, cancelled or interrupted (or a playbook file that
              cannot be used), 130 after Ctrl-C.
  playbooks   the playbooks of a workspace: the built-ins and .tandem/playbooks/*.json, with their inputs,
              version hash, and for a file that cannot be used the reason (reads files only; exit 0)
                --workspace DIR  --json
  runs list   the runs of a workspace, newest first (reads .tandem/ only; starts nothing)
                --workspace DIR  --status S  --strategy S  --limit N (default 50)  --json
  runs show ID
              one run: its summary.md (the default, or --markdown), or with --json its summary.json
                --workspace DIR  --markdown | --json
              Exit code 1 when there is no such run.
  runs replay ID
              run a finished playbook run again (same playbook version, task, inputs and apply policy, from
              its playbook.json) and compare the traces: prints "replay: identical (N entries)", exit 0, or
              the first entries that differ, exit 1 (also for a run that is not a playbook run)
                --workspace DIR  --offline  --codex-path PATH  --gemini-path PATH
  panic engage --reason TEXT [--workspace DIR]
              engage the kill switch: no new work starts, and a tandem-mcp serve or run on the workspace
              cancels its runs within a second
  panic release [--workspace DIR] [--yes]
              lift it: asks you to type RELEASE on a terminal; elsewhere --yes is required
  panic status [--workspace DIR] [--json]
  demo        the offline demo: copies demo/sample-project to ~/.cache/tandem/demo/<time>, codex fixes a bug,
              gemini reviews, the change is applied; needs no network and no API key. Exit code 0 when the
              run succeeded and the change was applied.
                --live               use the vendors' real models (both CLIs must be logged in)
                --keep               keep the workspace afterwards (the default; its path is printed)
                --clean              remove the workspace afterwards
  probe       check the codex and gemini CLIs: installed, version, tested range, auth, warnings
                --json               print the JSON document described in docs/probe.md
                --codex-path PATH    probe this codex binary instead of \`codex\` on PATH
                --gemini-path PATH   probe this gemini binary instead of \`gemini\` on PATH
                --workspace DIR      the workspace to check for .env files (default: the current directory)
                --sandbox MODE, --bwrap-path PATH   the sandbox to report: bubblewrap's path and version,
                                     whether it works here (tried once), and the mode
              A missing CLI is reported, not an error: the exit code is 0 unless the usage is wrong (2).
  version     print the version of tandem-mcp
  help        print this help

Every command exits 2 for wrong usage.
`;
