// Small pieces every editor command shares: optional arguments, error reporting, and reading a tool's reply.
import * as vscode from 'vscode';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

/** A command's optional argument object (tests, keybindings, tree items and the dashboard pass one). */
export function asObject<T extends object>(value: unknown): T {
  return (typeof value === 'object' && value !== null ? value : {}) as T;
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A tool's refusal or failure, with its code (PANIC_ENGAGED, UNTRUSTED_WORKSPACE, ...). */
export class ToolCallError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ToolCallError';
  }
}

/** The structured reply of a tool call; a refusal becomes a ToolCallError carrying its message. */
export function replyOf<T>(result: CallToolResult): T {
  const text = result.content
    .map((part) => (part.type === 'text' ? part.text : ''))
    .join('\n')
    .trim();
  if (result.isError) {
    const code = result._meta?.['tandem/errorCode'];
    throw new ToolCallError(typeof code === 'string' ? code : 'ERROR', text);
  }
  return (result.structuredContent ?? {}) as T;
}

/** Wraps a command so a failure is logged and shown to the user, and the command returns undefined. */
export function guarded<T>(
  name: string,
  log: (line: string) => void,
  run: (args?: unknown) => Promise<T>,
): (args?: unknown) => Promise<T | undefined> {
  return async (args?: unknown) => {
    try {
      return await run(args);
    } catch (error) {
      log(`${name} failed: ${messageOf(error)}`);
      void vscode.window.showErrorMessage(`Tandem: ${messageOf(error)}`);
      return undefined;
    }
  };
}
