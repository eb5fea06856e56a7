// The one door every MCP tool goes through. The registry adds the required `agentId` to each input
// schema and hands it to the handler in a context object (so schema and handler cannot disagree),
// refuses a second tool with the same name, refuses every mutating tool while panic is engaged, and
// turns thrown errors into results with a stable code and a sentence that says what to do.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import * as z from 'zod';
import { HUMAN_CALLER } from '../core/ownership';
import type { TaskOffer, TaskToolConfig } from './tasks';

/** Who is calling. "human" is reserved for the person at the editor and cannot be claimed by an agent. */
export const agentIdSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$/,
    'agentId identifies the calling agent: 1-64 letters, digits or . _ : @ - (e.g. "copilot" or "claude-code:42")',
  )
  .refine((id) => id !== HUMAN_CALLER, `agentId "${HUMAN_CALLER}" is reserved for the editor user`)
  .describe(
    'Who is calling: a stable id of the agent, recorded as the owner of what it starts; only the owner may stop, dispatch to or cancel it. A label that keeps cooperating agents apart, not authentication.',
  );

export type ToolErrorCode =
  | 'PANIC_ENGAGED'
  | 'INVALID_INPUT'
  | 'UNKNOWN_WORKER'
  | 'UNKNOWN_RUN'
  | 'NOT_OWNER'
  | 'PATH_OUTSIDE_WORKSPACE'
  | 'NOT_INSTALLED'
  | 'WORKER_BUSY'
  | 'RUN_FINISHED'
  | 'RUN_ELSEWHERE'
  | 'UNTRUSTED_WORKSPACE'
  | 'UNKNOWN_PLAYBOOK'
  | 'INVALID_PLAYBOOK'
  | 'UNSAFE_STATE'
  | 'INTERNAL';

export class ToolError extends Error {
  constructor(
    readonly code: ToolErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ToolError';
  }
}

export interface ToolContext {
  agentId: string;
  /** Aborted when the client cancels the call (notifications/cancelled) or the connection ends. */
  signal: AbortSignal;
  /** Sends notifications/progress when the client asked for them (a progress token); otherwise a no-op. */
  progress(progress: number, message: string, total?: number): Promise<void>;
}

export interface ToolAnnotations {
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  openWorldHint: boolean;
}

export interface ToolReply<O> {
  structured: O;
  text: string;
}

export interface ToolDefinition<
  I extends z.ZodRawShape = z.ZodRawShape,
  O extends z.ZodRawShape = z.ZodRawShape,
> {
  name: string;
  title: string;
  description: string;
  /** The tool's own fields; `agentId` is added by the registry. */
  input: I;
  output: O;
  /** Refused while panic is engaged. */
  mutating: boolean;
  annotations: ToolAnnotations;
  handler: (
    context: ToolContext,
    input: z.infer<z.ZodObject<I>>,
  ) => Promise<ToolReply<z.infer<z.ZodObject<O>>>>;
}

export class DuplicateToolError extends Error {
  constructor(readonly toolName: string) {
    super(`The tool "${toolName}" is registered twice; every tool name must be unique.`);
    this.name = 'DuplicateToolError';
  }
}

/** Maps errors of the layers below to tool error codes; unknown errors become INTERNAL. */
export type ErrorMapper = (error: unknown) => ToolError | undefined;

export interface RegistryOptions {
  /** Whether panic is engaged right now (re-read on every mutating call). */
  panicEngaged: () => Promise<{ engaged: boolean; by: string | null; reason: string | null }>;
  mapError?: ErrorMapper;
  /** Sees every handled call: for audit logs and the schema/handler parity test. */
  onCall?: (call: { tool: string; agentId: string; ok: boolean; code?: ToolErrorCode }) => void;
  /** Offers some tools as MCP Tasks too (experimental); their calls still go through `call`. */
  tasks?: TaskOffer;
}

type AnyDefinition = ToolDefinition<z.ZodRawShape, z.ZodRawShape>;

type CallExtra = Pick<
  RequestHandlerExtra<ServerRequest, ServerNotification>,
  'signal' | '_meta' | 'sendNotification'
>;

export class ToolRegistry {
  private readonly tools = new Map<string, AnyDefinition>();

  constructor(private readonly options: RegistryOptions) {}

  define<I extends z.ZodRawShape, O extends z.ZodRawShape>(definition: ToolDefinition<I, O>): void {
    if (this.tools.has(definition.name)) throw new DuplicateToolError(definition.name);
    if ('agentId' in definition.input) {
      throw new Error(
        `The tool "${definition.name}" declares agentId itself; the registry adds it to every tool.`,
      );
    }
    if (!/^[a-z][a-z0-9_]{1,63}$/.test(definition.name)) {
      throw new Error(`The tool name "${definition.name}" must be snake_case letters and digits.`);
    }
    this.tools.set(definition.name, definition as unknown as AnyDefinition);
  }

  list(): AnyDefinition[] {
    return [...this.tools.values()];
  }

  /** The full input shape a client sees: the tool's fields plus the required agentId. */
  inputShape(definition: AnyDefinition): z.ZodRawShape {
    return { agentId: agentIdSchema, ...definition.input };
  }

  /** The task offer, if any: the server adds its store and capability. */
  get tasks(): TaskOffer | undefined {
    return this.options.tasks;
  }

  /** Registers every tool on one server (one per session; the state behind them is shared). */
  registerAll(server: McpServer): void {
    for (const definition of this.tools.values()) {
      const config: TaskToolConfig = {
        title: definition.title,
        description: definition.description,
        inputSchema: z.object(this.inputShape(definition)).strict(),
        outputSchema: definition.output,
        annotations: { title: definition.title, ...definition.annotations },
      };
      const call = (args: unknown, extra: RequestHandlerExtra<ServerRequest, ServerNotification>) =>
        this.call(definition, args as Record<string, unknown>, extra);
      if (this.options.tasks?.tools.has(definition.name)) {
        this.options.tasks.register(server, definition.name, config, call);
      } else {
        server.registerTool(definition.name, config, call);
      }
    }
  }

  /**
   * Calls a tool by name with no client request behind it (the task store; the editor's commands with
   * `asHuman`): the input is checked against the same strict schema a client's call is, then goes through the
   * same guardrails. `asHuman` is the editor user's path: the reserved caller "human" that no client can claim.
   */
  async callTool(
    name: string,
    args: Record<string, unknown>,
    options: { signal?: AbortSignal; asHuman?: boolean } = {},
  ): Promise<CallToolResult> {
    const definition = this.tools.get(name);
    if (!definition) throw new Error(`No tool "${name}".`);
    const schema = options.asHuman
      ? z.object(definition.input).strict()
      : z.object(this.inputShape(definition)).strict();
    const parsed = schema.safeParse(args);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      return {
        isError: true,
        content: [{ type: 'text', text: `INVALID_INPUT: ${where}${issue?.message ?? 'invalid input'}` }],
        _meta: { 'tandem/errorCode': 'INVALID_INPUT' },
      };
    }
    const extra = {
      signal: options.signal ?? new AbortController().signal,
      sendNotification: async () => undefined,
    };
    if (options.asHuman) return this.invoke(definition, HUMAN_CALLER, parsed.data, extra);
    return this.call(definition, parsed.data, extra);
  }

  /** Runs one client call through the guardrails. Public for in-process callers. */
  async call(
    definition: AnyDefinition,
    args: Record<string, unknown>,
    extra: CallExtra,
  ): Promise<CallToolResult> {
    const { agentId, ...input } = args;
    const parsedId = agentIdSchema.safeParse(agentId);
    if (!parsedId.success) {
      const error = new ToolError(
        'INVALID_INPUT',
        parsedId.error.issues[0]?.message ?? 'agentId is required',
      );
      return this.failure(definition, typeof agentId === 'string' ? agentId : '', error);
    }
    return this.invoke(definition, parsedId.data, input, extra);
  }

  private async invoke(
    definition: AnyDefinition,
    caller: string,
    input: Record<string, unknown>,
    extra: CallExtra,
  ): Promise<CallToolResult> {
    try {
      if (definition.mutating) {
        const panic = await this.options.panicEngaged();
        if (panic.engaged) {
          throw new ToolError(
            'PANIC_ENGAGED',
            `Panic is engaged (by ${panic.by ?? 'unknown'}${panic.reason ? `: ${panic.reason}` : ''}). ` +
              `${definition.name} is refused until a human releases it (editor command "Tandem: Release Panic" or \`tandem-mcp panic release\`).`,
          );
        }
      }
      const progressToken = extra._meta?.progressToken;
      const context: ToolContext = {
        agentId: caller,
        signal: extra.signal,
        progress: async (progress, message, total) => {
          if (progressToken === undefined) return;
          await extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken, progress, message, ...(total === undefined ? {} : { total }) },
          });
        },
      };
      const reply = await definition.handler(context, input as never);
      this.options.onCall?.({ tool: definition.name, agentId: caller, ok: true });
      return {
        content: [{ type: 'text', text: reply.text }],
        structuredContent: reply.structured as Record<string, unknown>,
      };
    } catch (error) {
      const mapped = error instanceof ToolError ? error : (this.options.mapError?.(error) ?? undefined);
      return this.failure(
        definition,
        caller,
        mapped ??
          new ToolError(
            'INTERNAL',
            `Tandem hit an internal error in ${definition.name}: ${(error as Error)?.message ?? String(error)}`,
          ),
      );
    }
  }

  private failure(definition: AnyDefinition, caller: string, toolError: ToolError): CallToolResult {
    this.options.onCall?.({ tool: definition.name, agentId: caller, ok: false, code: toolError.code });
    return {
      isError: true,
      content: [{ type: 'text', text: `${toolError.code}: ${toolError.message}` }],
      _meta: { 'tandem/errorCode': toolError.code },
    };
  }
}
