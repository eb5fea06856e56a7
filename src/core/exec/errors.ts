// Typed errors of the exec helper; boundaries (MCP tools, CLI, editor) map them to user-facing results.

export type ExecErrorCode = 'BINARY_NOT_FOUND' | 'INVALID_ARGUMENT' | 'SPAWN_FAILED' | 'REGISTRY_CLOSED';

export class ExecError extends Error {
  readonly code: ExecErrorCode;

  constructor(code: ExecErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ExecError';
    this.code = code;
  }
}
