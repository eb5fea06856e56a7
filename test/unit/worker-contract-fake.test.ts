import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkspaceJail } from '../../src/core/jail';
import { describeWorkerContract } from '../contract/worker-contract';
import { FakeWorkerAdapter } from '../support/fake-adapter';

let root = '';
let adapter: FakeWorkerAdapter;

describeWorkerContract(
  'fake adapter',
  async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'tandem-fake-contract-'));
    const jail = await WorkspaceJail.open(root);
    adapter = new FakeWorkerAdapter('codex', jail);
    return { adapter, root: jail.root, promptsSeen: () => adapter.prompts, hangIdleTimeoutMs: 1000 };
  },
  async () => {
    rmSync(root, { recursive: true, force: true });
  },
);
