// The extension's bookkeeping rules (one server per workspace folder, labels), with stand-in servers: plain
// Node, no editor needed.
import assert from 'node:assert/strict';
import {
  FolderServers,
  ShutDownError,
  labelFolders,
  type FolderRef,
} from '../../src/extension/folder-servers';

class StandInServer {
  closed = 0;
  constructor(readonly folder: FolderRef) {}
  async close(): Promise<void> {
    this.closed += 1;
  }
}

function folder(name: string, key = `file:///w/${name}`): FolderRef {
  return { key, name, path: `/w/${name}` };
}

/** A start the test finishes by hand. */
function deferred<T>(): { promise: Promise<T>; resolve(value: T): void; reject(error: Error): void } {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('FolderServers (one MCP server per workspace folder)', () => {
  it('starts one server per folder, however many callers ask at once', async () => {
    let starts = 0;
    const servers = new FolderServers(async (ref: FolderRef) => {
      starts += 1;
      await new Promise((resolve) => setTimeout(resolve, 5));
      return new StandInServer(ref);
    });
    const a = folder('a');
    const [first, second, third] = await Promise.all([servers.get(a), servers.get(a), servers.get(a)]);
    assert.equal(starts, 1);
    assert.equal(first, second);
    assert.equal(second, third);
    await servers.get(folder('b'));
    assert.equal(starts, 2);
    assert.deepEqual(
      servers
        .running()
        .map((entry) => entry.folder.name)
        .sort(),
      ['a', 'b'],
    );
  });

  it('forgets a failed start, so the next request tries again', async () => {
    let attempts = 0;
    const logged: string[] = [];
    const servers = new FolderServers(
      async (ref: FolderRef) => {
        attempts += 1;
        if (attempts === 1) throw new Error('port in use');
        return new StandInServer(ref);
      },
      (line) => logged.push(line),
    );
    await assert.rejects(servers.get(folder('a')), /port in use/);
    const server = await servers.get(folder('a'));
    assert.equal(attempts, 2);
    assert.ok(server instanceof StandInServer);
    assert.ok(
      logged.some((line) => line.includes('port in use')),
      logged.join('\n'),
    );
  });

  it('stops the servers of folders that left the workspace and keeps the others', async () => {
    const made: StandInServer[] = [];
    const servers = new FolderServers(async (ref: FolderRef) => {
      const server = new StandInServer(ref);
      made.push(server);
      return server;
    });
    await servers.get(folder('a'));
    await servers.get(folder('b'));
    await servers.retain(new Set([folder('b').key]));
    assert.deepEqual(
      made.map((server) => [server.folder.name, server.closed]),
      [
        ['a', 1],
        ['b', 0],
      ],
    );
    assert.deepEqual(
      servers.running().map((entry) => entry.folder.name),
      ['b'],
    );
  });

  it('closeAll closes every server, one still starting included, and refuses new ones', async () => {
    const slow = deferred<StandInServer>();
    const ready = new StandInServer(folder('ready'));
    const servers = new FolderServers(async (ref: FolderRef) => (ref.name === 'slow' ? slow.promise : ready));
    await servers.get(folder('ready'));
    const slowStart = servers.get(folder('slow'));
    const closing = servers.closeAll();
    const late = new StandInServer(folder('slow'));
    slow.resolve(late);
    await closing;
    assert.equal(await slowStart, late);
    assert.equal(ready.closed, 1);
    assert.equal(late.closed, 1, 'a server whose start finished during shutdown is closed too');
    await assert.rejects(servers.get(folder('ready')), ShutDownError);
    await servers.closeAll();
    assert.equal(ready.closed, 1, 'closeAll twice closes once');
  });

  it('closeAll does not throw when a server fails to close, and still closes the rest', async () => {
    const logged: string[] = [];
    const good = new StandInServer(folder('good'));
    const servers = new FolderServers(
      async (ref: FolderRef) =>
        ref.name === 'bad' ? { close: () => Promise.reject(new Error('stuck')) } : good,
      (line) => logged.push(line),
    );
    await servers.get(folder('bad'));
    await servers.get(folder('good'));
    await servers.closeAll();
    assert.equal(good.closed, 1);
    assert.ok(
      logged.some((line) => line.includes('stuck')),
      logged.join('\n'),
    );
  });
  it('closes every server even when its logger throws (a closed output channel at shutdown)', async () => {
    const made: StandInServer[] = [];
    const servers = new FolderServers(
      async (ref: FolderRef) => {
        const server = new StandInServer(ref);
        made.push(server);
        return server;
      },
      () => {
        throw new Error('Channel has been closed');
      },
    );
    await servers.get(folder('a'));
    await servers.get(folder('b'));
    await servers.closeAll();
    assert.deepEqual(
      made.map((server) => server.closed),
      [1, 1],
    );
  });
});

describe('labelFolders (MCP server labels)', () => {
  it('labels each folder "Tandem (name)"', () => {
    assert.deepEqual(
      [...labelFolders([folder('api'), folder('web')]).keys()],
      ['Tandem (api)', 'Tandem (web)'],
    );
  });

  it('keeps labels unique when two folders share a name', () => {
    const labels = labelFolders([
      folder('app', 'file:///one/app'),
      folder('app', 'file:///two/app'),
      folder('lib'),
    ]);
    assert.deepEqual([...labels.keys()], ['Tandem (app #1)', 'Tandem (app #2)', 'Tandem (lib)']);
    assert.equal(labels.get('Tandem (app #2)')?.key, 'file:///two/app');
  });
});
