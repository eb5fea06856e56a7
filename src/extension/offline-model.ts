// The built-in offline model, shared by every folder's server in this window when `tandem.offlineModel` is on:
// started on first use (its module is loaded only then), closed on deactivate.
import type { OfflineModelServer } from '../offline/model-server';
import type { ModelEndpoint } from '../workers/cli-adapter';

export class SharedOfflineModel {
  private server: Promise<OfflineModelServer> | undefined;

  constructor(private readonly log: (line: string) => void = () => undefined) {}

  endpoint(): Promise<ModelEndpoint> {
    this.server ??= (async () => {
      const { OfflineModelServer } = await import('../offline/model-server.js');
      const started = await OfflineModelServer.start();
      this.log(`offline model listening on ${started.geminiBaseUrl}`);
      return started;
    })();
    const starting = this.server;
    return starting.then(
      (model) => ({
        type: 'offline',
        openaiBaseUrl: model.openaiBaseUrl,
        geminiBaseUrl: model.geminiBaseUrl,
      }),
      (error: unknown) => {
        // Forget the failure so that the next server start tries again.
        if (this.server === starting) this.server = undefined;
        throw error;
      },
    );
  }

  async close(): Promise<void> {
    const starting = this.server;
    this.server = undefined;
    if (!starting) return;
    try {
      await (await starting).close();
    } catch {
      // it never started, or is already gone
    }
  }
}
