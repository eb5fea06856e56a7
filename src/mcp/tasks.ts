// MCP Tasks (experimental in SDK 1.32.2, kept to this one file because that API may change) for the long
// tools, strategy_run, playbook_run and task_dispatch, offered with taskSupport 'optional'.
//
// A task is a Tandem run: its id is the run id, its status is read from the run store (so tasks outlive
// the server, as runs do), its result is the tool's own answer read once the run has finished, and
// tasks/cancel cancels the run. Every call, with or without a task, goes through the registry's guarded
// call (agentId, panic, error mapping): the task is made from that call's answer.
//
// The SDK answers a plain tools/call on an optional task tool by creating a task and polling it. For
// such a call (no `task` in the request) the store hands back the registry's answer at once as an
// already finished task that is never listed, so a plain call behaves exactly as before. A task call
// the registry refused has no run: it becomes a failed task whose result is the refusal.
import { randomUUID } from 'node:crypto';
import type {
  CreateTaskOptions,
  CreateTaskRequestHandlerExtra,
  TaskRequestHandlerExtra,
  TaskStore,
} from '@modelcontextprotocol/sdk/experimental/tasks/interfaces.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type {
  CallToolResult,
  Request,
  RequestId,
  ServerNotification,
  ServerRequest,
  Task,
} from '@modelcontextprotocol/sdk/types.js';
import type * as z from 'zod';
import type { RunRecord, RunStatus } from '../orchestrator/model';
import type { TandemServices } from './services';

/** The tools offered as tasks too. */
export const TASK_TOOLS: ReadonlySet<string> = new Set(['strategy_run', 'playbook_run', 'task_dispatch']);

const TASK_FILE = 'task.json';
const POLL_INTERVAL_MS = 1000;
const LIST_PAGE = 50;
const LIST_SCAN = 1000;
/** Answers held in memory (plain calls until the SDK reads them, refused task calls): at most this many. */
const MAX_HELD = 200;

/** The registry's guarded call of one tool. */
export type GuardedCall = (
  args: Record<string, unknown>,
  extra: RequestHandlerExtra<ServerRequest, ServerNotification>,
) => Promise<CallToolResult>;

/** Reads a finished run as its tool answers it (run_wait from cursor 0, through the registry). */
export type RunReader = (runId: string, owner: string) => Promise<CallToolResult>;

export interface TaskToolConfig {
  title: string;
  description: string;
  inputSchema: z.ZodType;
  outputSchema: z.ZodRawShape;
  annotations: Record<string, unknown>;
}

/** Kept in the run's folder, next to its events: what makes a run a task. */
interface TaskFile {
  tool: string;
  ttl: number | null;
  createdAt: string;
  /** The session that created it: the only one that may cancel it through tasks/cancel. */
  sessionId: string | null;
}

interface Held {
  task: Task;
  result: CallToolResult;
  /** A plain call's answer: dropped once read. */
  once: boolean;
}

/** Finished runs map to the terminal task statuses; queued and running are "working". */
export function taskStatusOf(status: RunStatus): Task['status'] {
  switch (status) {
    case 'queued':
    case 'running':
      return 'working';
    // The tool call itself completed: its result says how the run ended. A client treats a failed task
    // as a failed call (an exception), which a run that ended badly is not.
    case 'succeeded':
    case 'partial':
    case 'failed':
    case 'interrupted':
      return 'completed';
    case 'cancelled':
      return 'cancelled';
  }
}

function runIdOf(result: CallToolResult): string | undefined {
  if (result.isError) return undefined;
  const run = result.structuredContent?.run as { id?: unknown } | undefined;
  return typeof run?.id === 'string' ? run.id : undefined;
}

/** A TaskStore backed by Tandem's run store. Reads are not bound to a session: runs are workspace-wide. */
export class RunTaskStore implements TaskStore {
  private readonly held = new Map<string, Held>();

  constructor(
    private readonly services: TandemServices,
    private readonly readRun: RunReader,
  ) {}

  async createTask(
    params: CreateTaskOptions,
    _requestId: RequestId,
    request: Request,
    sessionId?: string,
  ): Promise<Task> {
    const result = params.context?.result as CallToolResult | undefined;
    if (result === undefined) throw new Error('Tandem makes tasks only from the answer of its own tools.');
    const now = new Date().toISOString();
    const ttl = params.ttl ?? null;
    const requested = (request.params as { task?: unknown } | undefined)?.task !== undefined;
    const runId = runIdOf(result);
    if (!requested || runId === undefined) {
      // A refusal is the tool's answer, as on a plain call: the task completes and its result is the error
      // (clients treat a failed task as a transport failure and drop the text that says what to do).
      const text = result.content.map((part) => (part.type === 'text' ? part.text : '')).join('\n');
      const task: Task = {
        taskId: `call-${randomUUID()}`,
        status: 'completed',
        ...(result.isError ? { statusMessage: text.slice(0, 500) } : {}),
        ttl,
        createdAt: now,
        lastUpdatedAt: now,
      };
      this.hold(task.taskId, { task, result, once: !requested });
      return task;
    }
    const file: TaskFile = {
      tool: String((request.params as { name?: unknown } | undefined)?.name ?? ''),
      ttl,
      createdAt: now,
      sessionId: sessionId ?? null,
    };
    await this.services.store.writeRunFile(runId, TASK_FILE, JSON.stringify(file));
    return this.toTask(this.services.store.get(runId), file);
  }

  async getTask(taskId: string): Promise<Task | null> {
    const held = this.held.get(taskId);
    if (held) return { ...held.task };
    const found = await this.find(taskId);
    return found ? this.toTask(found.run, found.file) : null;
  }

  async getTaskResult(taskId: string): Promise<CallToolResult> {
    const held = this.held.get(taskId);
    if (held) {
      if (held.once) this.held.delete(taskId);
      return held.result;
    }
    const found = await this.find(taskId);
    if (!found) throw new Error(`No task "${taskId}".`);
    const run = await this.services.orchestrator.finished(taskId);
    if (taskStatusOf(run.status) === 'working') {
      throw new Error(`Task ${taskId} is still working; its result is ready once the run has finished.`);
    }
    return this.readRun(taskId, run.owner);
  }

  /** The result of a task is its run, read when asked: nothing to store. */
  async storeTaskResult(): Promise<void> {}

  /** Status comes from the run; only "cancelled" (tasks/cancel) acts, by cancelling the run. */
  async updateTaskStatus(
    taskId: string,
    status: Task['status'],
    _statusMessage?: string,
    sessionId?: string,
  ): Promise<void> {
    if (status !== 'cancelled') return;
    const held = this.held.get(taskId);
    if (held) {
      held.task = { ...held.task, status, lastUpdatedAt: new Date().toISOString() };
      return;
    }
    const found = await this.find(taskId);
    if (!found) throw new Error(`No task "${taskId}".`);
    if (found.file.sessionId !== null && found.file.sessionId !== (sessionId ?? null)) {
      throw new Error(
        `Task ${taskId} was created by another session; cancel its run with run_cancel and your agentId.`,
      );
    }
    await this.services.orchestrator.cancel(taskId, found.run.owner);
  }

  /** Runs started as tasks, newest first; the cursor is the last run id of the previous page. */
  async listTasks(cursor?: string): Promise<{ tasks: Task[]; nextCursor?: string }> {
    await this.services.store.refresh();
    const runs = this.services.store.list({
      limit: LIST_SCAN,
      ...(cursor === undefined ? {} : { before: cursor }),
    });
    const tasks: Task[] = [];
    for (const run of runs) {
      const file = await this.readTaskFile(run.id);
      if (!file) continue;
      tasks.push(this.toTask(run, file));
      if (tasks.length === LIST_PAGE) return { tasks, nextCursor: run.id };
    }
    const last = runs[runs.length - 1];
    return runs.length === LIST_SCAN && last ? { tasks, nextCursor: last.id } : { tasks };
  }

  private hold(taskId: string, held: Held): void {
    this.held.set(taskId, held);
    for (const oldest of this.held.keys()) {
      if (this.held.size <= MAX_HELD) break;
      this.held.delete(oldest);
    }
  }

  private async find(taskId: string): Promise<{ run: RunRecord; file: TaskFile } | undefined> {
    await this.services.store.refresh();
    if (!this.services.store.has(taskId)) return undefined;
    const file = await this.readTaskFile(taskId);
    return file ? { run: this.services.store.get(taskId), file } : undefined;
  }

  private async readTaskFile(runId: string): Promise<TaskFile | undefined> {
    const text = await this.services.store.readRunFile(runId, TASK_FILE);
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as TaskFile;
    } catch {
      return undefined;
    }
  }

  private toTask(run: RunRecord, file: TaskFile): Task {
    const status = taskStatusOf(run.status);
    return {
      taskId: run.id,
      status,
      ttl: file.ttl,
      createdAt: file.createdAt,
      lastUpdatedAt: run.endedAt ?? run.startedAt ?? file.createdAt,
      pollInterval: POLL_INTERVAL_MS,
      statusMessage: `Run ${run.id} is ${run.status}.${run.outcome ? ` ${run.outcome}` : ''}`,
    };
  }
}

/** What the registry needs to offer some of its tools as tasks, and the server to serve them. */
export class TaskOffer {
  readonly tools = TASK_TOOLS;
  readonly store: RunTaskStore;
  /** For McpServer's options. */
  readonly capability = { list: {}, cancel: {}, requests: { tools: { call: {} } } };

  constructor(services: TandemServices, readRun: RunReader) {
    this.store = new RunTaskStore(services, readRun);
  }

  /** Registers one tool with taskSupport 'optional'; both kinds of call run the registry's `call`. */
  register(server: McpServer, name: string, config: TaskToolConfig, call: GuardedCall): void {
    server.experimental.tasks.registerToolTask(
      name,
      { ...config, execution: { taskSupport: 'optional' } },
      {
        createTask: async (args: unknown, extra: CreateTaskRequestHandlerExtra) => {
          const result = await call(args as Record<string, unknown>, extra);
          const task = await extra.taskStore.createTask({
            ttl: extra.taskRequestedTtl ?? null,
            pollInterval: POLL_INTERVAL_MS,
            context: { result },
          });
          return { task };
        },
        getTask: async (_args: unknown, extra: TaskRequestHandlerExtra) =>
          extra.taskStore.getTask(extra.taskId),
        getTaskResult: async (_args: unknown, extra: TaskRequestHandlerExtra) =>
          (await extra.taskStore.getTaskResult(extra.taskId)) as CallToolResult,
      },
    );
  }
}
