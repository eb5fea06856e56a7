import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { WorkspaceJail } from '../../src/core/jail';
import { OfflineModelServer } from '../../src/offline/model-server';
import type { AdapterConfig } from '../../src/workers/cli-adapter';
import { createCodexAdapter } from '../../src/workers/codex';
import { createGeminiAdapter } from '../../src/workers/gemini';
import { describeWorkerContract } from '../contract/worker-contract';
import { CODEX_BIN, GEMINI_BIN, scratchDir } from '../support/real-cli';

for (const cli of [
  {
    name: 'codex (real CLI, offline model)',
    create: createCodexAdapter,
    binary: CODEX_BIN,
    hangIdleTimeoutMs: 3000,
    floodMayLoseTail: false,
  },
  {
    name: 'gemini (real CLI, offline model)',
    create: createGeminiAdapter,
    binary: GEMINI_BIN,
    hangIdleTimeoutMs: 8000,
    // Seen with 4 floods at once on 2 cores: gemini exits 0 with its stdout cut mid-event (the Node CLI does
    // not wait for a slow pipe), so the result event never arrives. Tandem reports cli_error, as it must.
    floodMayLoseTail: true,
  },
]) {
  let server: OfflineModelServer;
  let scratch = '';

  describeWorkerContract(
    cli.name,
    async () => {
      scratch = scratchDir('contract');
      const root = path.join(scratch, 'workspace');
      mkdirSync(root);
      server = await OfflineModelServer.start();
      const jail = await WorkspaceJail.open(root);
      const config: AdapterConfig = {
        jail,
        stateDir: path.join(scratch, 'state'),
        binaryPath: cli.binary,
        endpoint: {
          type: 'offline',
          openaiBaseUrl: server.openaiBaseUrl,
          geminiBaseUrl: server.geminiBaseUrl,
        },
      };
      return {
        adapter: cli.create(config),
        root: jail.root,
        promptsSeen: () =>
          server.requests.flatMap((request) => (request.prompt === undefined ? [] : [request.prompt])),
        hangIdleTimeoutMs: cli.hangIdleTimeoutMs,
        floodMayLoseTail: cli.floodMayLoseTail,
      };
    },
    async () => {
      await server.close();
      rmSync(scratch, { recursive: true, force: true });
    },
  );
}
