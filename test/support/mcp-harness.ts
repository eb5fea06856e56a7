// An MCP client and server in one process for the tool tests: services on a temporary workspace with the
// fake worker adapters, the tool registry, one McpServer and an SDK Client linked in memory.
import * as assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { RequestOptions } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { WorkspaceJail } from '../../src/core/jail';
import { createServerFactory, createToolRegistry } from '../../src/mcp/server';
import { openServices, type ServicesOptions, type TandemServices } from '../../src/mcp/services';
import type { RegistryOptions, ToolRegistry } from '../../src/mcp/tool-registry';
import { FakeWorkerAdapter } from './fake-adapter';

export type OnCallRecord = Parameters<NonNullable<RegistryOptions['onCall']>>[0];
export type ToolArgs = Record<string, unknown>;
export type Structured = Record<string, unknown>;

export interface McpHarness {
  client: Client;
  services: TandemServices;
  registry: ToolRegistry;
  /** The workspace root (realpath). */
  root: string;
  fakes: { codex: FakeWorkerAdapter; gemini: FakeWorkerAdapter };
  /** Every call the registry handled, as its onCall hook saw it. */
  calls: OnCallRecord[];
  /** Calls a tool that must succeed; returns its structuredContent. */
  callOk(name: string, args: ToolArgs, options?: RequestOptions): Promise<Structured>;
  /** Calls a tool that must fail with a Tandem error; returns the error code. */
  callError(name: string, args: ToolArgs): Promise<string>;
  /** Calls a tool whose input the SDK must refuse (zod); returns the error text. */
  callInvalid(name: string, args: ToolArgs): Promise<string>;
  /** Closes client, server and services; removes the workspace unless keepRoot. */
  close(options?: { keepRoot?: boolean }): Promise<void>;
}

export interface HarnessOptions {
  /** Reuse a workspace (e.g. to reopen services on it); default a new temporary folder with a README.md. */
  root?: string;
  trusted?: boolean;
  limits?: ServicesOptions['limits'];
  /** Start-up recovery (default true). Off for a second server in the same process as a live first one. */
  recover?: boolean;
  sandbox?: ServicesOptions['sandbox'];
  bwrapPath?: string;
}

function textOf(result: CallToolResult): string {
  return result.content.map((part) => (part.type === 'text' ? part.text : `[${part.type}]`)).join('\n');
}

export async function callRaw(
  client: Client,
  name: string,
  args: ToolArgs,
  options?: RequestOptions,
): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args }, undefined, options)) as CallToolResult;
}

export async function callOk(
  client: Client,
  name: string,
  args: ToolArgs,
  options?: RequestOptions,
): Promise<Structured> {
  const result = await callRaw(client, name, args, options);
  assert.notEqual(result.isError, true, `${name} failed: ${textOf(result)}`);
  assert.ok(result.structuredContent, `${name} returned no structuredContent`);
  assert.ok(textOf(result).length > 0, `${name} returned no text summary`);
  return result.structuredContent;
}

export async function callError(client: Client, name: string, args: ToolArgs): Promise<string> {
  const result = await callRaw(client, name, args);
  const text = textOf(result);
  assert.equal(result.isError, true, `${name} should have failed but answered: ${text}`);
  const code = result._meta?.['tandem/errorCode'];
  assert.equal(typeof code, 'string', `${name}: no tandem/errorCode in _meta (${text})`);
  assert.ok(
    text.startsWith(`${code as string}: `),
    `${name}: the text should start with "${code}: ": ${text}`,
  );
  assert.ok(text.length > `${code as string}: `.length + 10, `${name}: the error says nothing: ${text}`);
  return code as string;
}

export async function callInvalid(client: Client, name: string, args: ToolArgs): Promise<string> {
  const result = await callRaw(client, name, args);
  const text = textOf(result);
  assert.equal(result.isError, true, `${name} should have refused its input but answered: ${text}`);
  assert.match(text, /Input validation error/, `${name}: not an input validation error: ${text}`);
  return text;
}

export async function openHarness(options: HarnessOptions = {}): Promise<McpHarness> {
  let root = options.root;
  if (root === undefined) {
    root = await mkdtemp(path.join(os.tmpdir(), 'tandem-mcp-'));
    await writeFile(path.join(root, 'README.md'), '# Test workspace\n');
  }
  // services.jail is made inside openServices; the fakes get their own jail on the same root.
  const jail = await WorkspaceJail.open(root);
  const fakes = {
    codex: new FakeWorkerAdapter('codex', jail),
    gemini: new FakeWorkerAdapter('gemini', jail),
  };
  const services = await openServices({
    workspaceRoot: root,
    adapters: fakes,
    ...(options.trusted === undefined ? {} : { trusted: options.trusted }),
    ...(options.limits === undefined ? {} : { limits: options.limits }),
    ...(options.recover === undefined ? {} : { recover: options.recover }),
    ...(options.sandbox === undefined ? {} : { sandbox: options.sandbox }),
    ...(options.bwrapPath === undefined ? {} : { bwrapPath: options.bwrapPath }),
  });
  const calls: OnCallRecord[] = [];
  const registry = createToolRegistry(services, (call) => calls.push(call));
  const server = createServerFactory(registry)();
  const client = new Client({ name: 'tandem-test', version: '0.0.0' });
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await server.connect(serverTransport);
  await client.connect(clientTransport);
  // The client checks structuredContent against each tool's outputSchema once it has listed the tools.
  await client.listTools();
  const workspace = root;
  return {
    client,
    services,
    registry,
    root: services.workspaceRoot,
    fakes,
    calls,
    callOk: (name, args, requestOptions) => callOk(client, name, args, requestOptions),
    callError: (name, args) => callError(client, name, args),
    callInvalid: (name, args) => callInvalid(client, name, args),
    async close(closeOptions = {}) {
      await client.close();
      await server.close();
      await services.close();
      if (!closeOptions.keepRoot) {
        await rm(workspace, { recursive: true, force: true });
      }
    },
  };
}

/** Polls until the condition holds (or fails after timeoutMs). */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
