// The MCP server factory shared by stdio, loopback HTTP and the editor: the tools are defined once per
// workspace's services, and each session gets its own McpServer registering them.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { TANDEM_VERSION } from '../version';
import type { TandemServices } from './services';
import { ToolRegistry, type RegistryOptions } from './tool-registry';
import { TaskOffer } from './tasks';
import { defineTools, mapError } from './tools';

export function createToolRegistry(
  services: TandemServices,
  onCall?: RegistryOptions['onCall'],
): ToolRegistry {
  // A task's result is its finished run as run_wait reads it for the run's owner: the tool's own answer.
  const tasks = new TaskOffer(services, (runId, owner) =>
    registry.callTool('run_wait', { agentId: owner, runId, after: 0, timeoutSeconds: 0 }),
  );
  const registry: ToolRegistry = new ToolRegistry({
    panicEngaged: async () => {
      const state = await services.panic.reload();
      return { engaged: state.engaged, by: state.engagedBy, reason: state.reason };
    },
    mapError,
    tasks,
    ...(onCall ? { onCall } : {}),
  });
  defineTools(registry, services);
  return registry;
}

export const SERVER_INSTRUCTIONS =
  'Tandem runs the codex and gemini CLIs as workers on this workspace. Pass your agentId on every call. ' +
  'Start work with strategy_run, playbook_run (playbook_list shows the playbooks and their inputs) or ' +
  'worker_spawn + task_dispatch; each returns a run id at once, then follow it with ' +
  'run_wait using the returned cursor. run_get shows steps, verdicts and the summary. panic_engage stops everything.';

export function createServerFactory(registry: ToolRegistry): () => McpServer {
  return () => {
    const tasks = registry.tasks;
    const server = new McpServer(
      { name: 'tandem', title: 'Tandem', version: TANDEM_VERSION },
      {
        capabilities: { logging: {}, ...(tasks ? { tasks: tasks.capability } : {}) },
        instructions: SERVER_INSTRUCTIONS,
        ...(tasks ? { taskStore: tasks.store } : {}),
      },
    );
    registry.registerAll(server);
    return server;
  };
}
