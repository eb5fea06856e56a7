// Extension entry point. The MCP server, views and commands are wired in by later layers;
// activation stays cheap and everything registered goes into context.subscriptions.
import type * as vscode from 'vscode';

export function activate(_context: vscode.ExtensionContext): void {
  // Nothing to start eagerly: the server starts when the editor or a command first needs it.
}

export function deactivate(): void {
  // Nothing is running yet when no layer has started.
}
