// Run history in <workspace>/.tandem/: an append-only runs.jsonl index (one full record per line, the
// last line of an id wins) and a folder per run with its events, step logs and summaries. Appends are
// whole lines, other files are written to a temp name and renamed, so a crash leaves at worst one torn
// last line, which is skipped. Everything written passes through the redactor.
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redactor, getDefaultRedactor } from '../core/redact';
import {
  appendStateFile,
  ensureStateFolders,
  readStateFile,
  readStateRange,
  StateFileError,
  writeStateFile,
} from '../core/state-file';
import { bootId, identify } from '../core/exec';
import {
  isFinished,
  runRecordSchema,
  type RunEvent,
  type RunRecord,
  type RunStatus,
  type StrategyName,
} from './model';

export const STATE_DIR_NAME = '.tandem';
const INDEX_FILE = 'runs.jsonl';
const INDEX_PROMPT_CHARS = 4000;
/** Index bytes read at a time; a line longer than this (records are a few KiB) is skipped as damage. */
const INDEX_CHUNK_BYTES = 16 * 1024 * 1024;
/** The largest events.jsonl or other run file read back. */
const RUN_FILE_MAX_BYTES = 64 * 1024 * 1024;

export interface ListFilter {
  owner?: string;
  status?: RunStatus;
  strategy?: StrategyName;
  /** Newest first; default 50, at most 1000. */
  limit?: number;
  /** Only runs created before this run (cursor for the next page). */
  before?: string;
}

export interface NewRun {
  kind: RunRecord['kind'];
  strategy: StrategyName | null;
  playbook?: RunRecord['playbook'];
  owner: string;
  prompt: string;
  workers: string[];
}

/**
 * Makes the .tandem folder (a real folder, never a link) with a .gitignore that keeps all of it out of
 * version control.
 */
export async function ensureStateDir(workspaceRoot: string): Promise<string> {
  const dir = path.join(workspaceRoot, STATE_DIR_NAME);
  await ensureStateFolders(workspaceRoot, dir);
  const ignore = path.join(dir, '.gitignore');
  const current = await readStateFile(workspaceRoot, ignore, { maxBytes: 4096 }).catch(() => null);
  if (current === undefined) await writeStateFile(workspaceRoot, ignore, '*\n');
  return dir;
}

function newRunId(now: Date): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `run-${stamp}-${randomBytes(3).toString('hex')}`;
}

const RUN_ID = /^run-\d{8}T\d{6}Z-[0-9a-f]{6}$/;

export class RunStoreError extends Error {
  constructor(
    readonly code: 'UNKNOWN_RUN' | 'INVALID_RUN_ID',
    message: string,
  ) {
    super(message);
    this.name = 'RunStoreError';
  }
}

export class RunStore {
  private readonly records = new Map<string, RunRecord>();
  /** Ids in creation order (oldest first). */
  private readonly order: string[] = [];
  private indexOffset = 0;
  private readonly nextSeq = new Map<string, number>();
  private writeChain: Promise<void> = Promise.resolve();
  private refreshChain: Promise<void> = Promise.resolve();
  private readonly emitter = new EventEmitter();
  private readonly host = identify(process.pid);
  /** Lines of runs.jsonl that could not be read (a torn last line after a crash). */
  skippedLines = 0;

  private constructor(
    readonly workspaceRoot: string,
    readonly stateDir: string,
    private readonly redactor: Redactor,
  ) {
    this.emitter.setMaxListeners(0);
  }

  static async open(workspaceRoot: string, options: { redactor?: Redactor } = {}): Promise<RunStore> {
    const stateDir = await ensureStateDir(workspaceRoot);
    await ensureStateFolders(workspaceRoot, path.join(stateDir, 'runs'));
    const store = new RunStore(workspaceRoot, stateDir, options.redactor ?? getDefaultRedactor());
    try {
      await store.repairTornLine();
      await store.refresh();
    } catch (error) {
      // A refused index (a link, a FIFO) keeps the server up: every call that needs it says why instead.
      if (!(error instanceof StateFileError)) throw error;
      store.problem = error;
    }
    return store;
  }

  /** Why the index could not be read at start-up, if it could not (it is re-read on every refresh). */
  problem: StateFileError | undefined;

  /** A crash can leave a last line without its newline; end it so the next append starts clean. */
  private async repairTornLine(): Promise<void> {
    const tail = await readStateRange(this.workspaceRoot, this.indexPath, 0, 0);
    if (tail === undefined || tail.size === 0) return;
    const last = await readStateRange(this.workspaceRoot, this.indexPath, tail.size - 1, 1);
    if (last !== undefined && last.bytes[0] !== 0x0a) {
      await appendStateFile(this.workspaceRoot, this.indexPath, '\n');
    }
  }

  /** Grows whenever index lines were read (written here or by another process): a cheap change marker. */
  get version(): number {
    return this.indexOffset;
  }

  get indexPath(): string {
    return path.join(this.stateDir, INDEX_FILE);
  }

  runDir(id: string): string {
    if (!RUN_ID.test(id))
      throw new RunStoreError('INVALID_RUN_ID', `"${id}" is not a run id (run-YYYYMMDDTHHMMSSZ-xxxxxx).`);
    return path.join(this.stateDir, 'runs', id);
  }

  /**
   * Reads lines appended to the index since the last read (by this or another process). Reads are taken one
   * at a time: two reads of the same bytes at once would both advance the offset, and later lines would be read
   * from the middle and lost.
   */
  refresh(): Promise<void> {
    const next = this.refreshChain.then(() => this.readAppended());
    this.refreshChain = next.catch(() => undefined);
    return next;
  }

  private async readAppended(): Promise<void> {
    for (;;) {
      const read = await readStateRange(
        this.workspaceRoot,
        this.indexPath,
        this.indexOffset,
        INDEX_CHUNK_BYTES,
      );
      this.problem = undefined;
      if (read === undefined || read.bytes.length === 0) return;
      // Leave a last line without its newline for the next read: it may still be being written.
      const end = read.bytes.lastIndexOf(0x0a);
      if (end === -1) {
        if (read.bytes.length < INDEX_CHUNK_BYTES) return;
        // No line is this long: skip the damage up to the next newline.
        this.indexOffset += read.bytes.length;
        this.skippedLines += 1;
        continue;
      }
      this.indexOffset += end + 1;
      for (const line of read.bytes.subarray(0, end).toString('utf8').split('\n')) this.ingest(line);
      if (this.indexOffset >= read.size) return;
    }
  }

  private ingest(line: string): void {
    if (line.trim() === '') return;
    let parsed;
    try {
      parsed = runRecordSchema.safeParse(JSON.parse(line));
    } catch {
      this.skippedLines += 1;
      return;
    }
    if (!parsed.success) {
      this.skippedLines += 1;
      return;
    }
    const record = parsed.data;
    if (!this.records.has(record.id)) this.order.push(record.id);
    this.records.set(record.id, record);
  }

  /** Serialises appends of this process so lines never interleave. */
  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const next = this.writeChain.then(work, work);
    this.writeChain = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  private async appendRecord(record: RunRecord): Promise<void> {
    const clean = this.redactor.redactValue(record);
    const line = JSON.stringify(clean) + '\n';
    await this.enqueue(async () => {
      await appendStateFile(this.workspaceRoot, this.indexPath, line);
    });
    // Our own line is now in the file; read it back with anything others appended before it.
    await this.refresh();
    if (!this.records.has(clean.id)) this.order.push(clean.id);
    this.records.set(clean.id, clean);
  }

  async create(input: NewRun): Promise<RunRecord> {
    // A refused index (a link, a FIFO) is found before the run folder and its prompt are written.
    await this.refresh();
    const now = new Date();
    const record: RunRecord = {
      id: newRunId(now),
      kind: input.kind,
      strategy: input.strategy,
      playbook: input.playbook ?? null,
      owner: input.owner,
      prompt:
        input.prompt.length > INDEX_PROMPT_CHARS
          ? `${input.prompt.slice(0, INDEX_PROMPT_CHARS)}…`
          : input.prompt,
      status: 'queued',
      createdAt: now.toISOString(),
      startedAt: null,
      endedAt: null,
      workers: input.workers,
      stepCount: 0,
      outcome: null,
      decision: null,
      applied: false,
      host: { pid: process.pid, startTime: this.host.startTime ?? null, bootId: bootId() ?? null },
    };
    await ensureStateFolders(this.workspaceRoot, this.runDir(record.id));
    await writeStateFile(
      this.workspaceRoot,
      path.join(this.runDir(record.id), 'prompt.txt'),
      this.redactor.redact(input.prompt),
    );
    await this.appendRecord(record);
    await this.appendEvent(record.id, { type: 'run_queued', message: `Run queued by ${input.owner}.` });
    return this.get(record.id);
  }

  async update(
    id: string,
    patch: Partial<Omit<RunRecord, 'id' | 'createdAt' | 'owner' | 'host'>>,
  ): Promise<RunRecord> {
    const current = this.get(id);
    const next: RunRecord = { ...current, ...patch };
    await this.appendRecord(next);
    return this.get(id);
  }

  get(id: string): RunRecord {
    const record = this.records.get(id);
    if (!record) {
      throw new RunStoreError(
        'UNKNOWN_RUN',
        `No run "${id}" in this workspace. List the runs (run_list) and use one of their ids.`,
      );
    }
    return { ...record };
  }

  has(id: string): boolean {
    return this.records.has(id);
  }

  get size(): number {
    return this.records.size;
  }

  /** Newest first, filtered; `before` pages through older runs. */
  list(filter: ListFilter = {}): RunRecord[] {
    const limit = Math.max(1, Math.min(1000, filter.limit ?? 50));
    let start = this.order.length - 1;
    if (filter.before !== undefined) {
      const at = this.order.lastIndexOf(filter.before);
      start = at === -1 ? -1 : at - 1;
    }
    const out: RunRecord[] = [];
    for (let i = start; i >= 0 && out.length < limit; i--) {
      const record = this.records.get(this.order[i] as string) as RunRecord;
      if (filter.owner !== undefined && record.owner !== filter.owner) continue;
      if (filter.status !== undefined && record.status !== filter.status) continue;
      if (filter.strategy !== undefined && record.strategy !== filter.strategy) continue;
      out.push({ ...record });
    }
    return out;
  }

  /** Runs not finished: used at start-up to find what a dead server left behind. */
  unfinished(): RunRecord[] {
    return [...this.records.values()]
      .filter((record) => !isFinished(record.status))
      .map((record) => ({ ...record }));
  }

  private eventsPath(id: string): string {
    return path.join(this.runDir(id), 'events.jsonl');
  }

  private async seqFor(id: string): Promise<number> {
    const known = this.nextSeq.get(id);
    if (known !== undefined) return known;
    const events = await this.readEvents(id);
    const next = (events[events.length - 1]?.seq ?? 0) + 1;
    this.nextSeq.set(id, next);
    return next;
  }

  async appendEvent(id: string, event: Omit<RunEvent, 'seq' | 'time'>): Promise<RunEvent> {
    return this.enqueue(async () => {
      const seq = await this.seqFor(id);
      this.nextSeq.set(id, seq + 1);
      const full = this.redactor.redactValue({ seq, time: new Date().toISOString(), ...event }) as RunEvent;
      const line = JSON.stringify(full) + '\n';
      try {
        await appendStateFile(this.workspaceRoot, this.eventsPath(id), line);
      } catch (error) {
        // A run whose folder is gone (damaged or hand-edited state) still gets its events written.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        await ensureStateFolders(this.workspaceRoot, this.runDir(id));
        await appendStateFile(this.workspaceRoot, this.eventsPath(id), line);
      }
      this.emitter.emit(id, full);
      return full;
    });
  }

  /** A run's events after `after`; none when it has no events file. A refused file is an error. */
  async readEvents(id: string, after = 0, limit = 1000): Promise<RunEvent[]> {
    const text = await readStateFile(this.workspaceRoot, this.eventsPath(id), {
      maxBytes: RUN_FILE_MAX_BYTES,
    });
    if (text === undefined) return [];
    const events: RunEvent[] = [];
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        const event = JSON.parse(line) as RunEvent;
        if (event.seq > after) events.push(event);
      } catch {
        // A torn last line after a crash.
      }
      if (events.length >= limit) break;
    }
    return events;
  }

  /**
   * Events after `after`; when there are none yet and the run is not finished, waits up to `timeoutMs`
   * for the next one (or until the signal aborts), then returns what arrived.
   */
  async waitForEvents(
    id: string,
    after: number,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<RunEvent[]> {
    this.get(id);
    const ready = await this.readEvents(id, after);
    if (ready.length > 0 || isFinished(this.get(id).status) || timeoutMs <= 0) return ready;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        clearInterval(poll);
        this.emitter.off(id, done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      // Another process may own the run: look at the file now and then as well.
      const poll = setInterval(() => {
        void this.readEvents(id, after, 1).then((events) => {
          if (events.length > 0) done();
        }, done);
      }, 500);
      this.emitter.on(id, done);
      signal?.addEventListener('abort', done, { once: true });
    });
    return this.readEvents(id, after);
  }

  async writeRunFile(id: string, name: string, content: string): Promise<string> {
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`Bad run file name "${name}".`);
    const file = path.join(this.runDir(id), name);
    const clean = this.redactor.redact(content);
    try {
      await writeStateFile(this.workspaceRoot, file, clean);
    } catch (error) {
      // As for events: a run whose folder is gone (damaged state found at recovery) still gets its files.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      await ensureStateFolders(this.workspaceRoot, this.runDir(id));
      await writeStateFile(this.workspaceRoot, file, clean);
    }
    return file;
  }

  /** A file of a run folder; undefined when it is missing or refused (a link, a FIFO, too large). */
  async readRunFile(id: string, name: string): Promise<string | undefined> {
    try {
      return await readStateFile(this.workspaceRoot, path.join(this.runDir(id), name), {
        maxBytes: RUN_FILE_MAX_BYTES,
      });
    } catch {
      return undefined;
    }
  }

  /** Makes a step's log folder (every folder on the way checked) before its worker writes there. */
  async ensureStepLogDir(id: string, index: number, name: string): Promise<string> {
    return ensureStateFolders(this.workspaceRoot, this.stepLogDir(id, index, name));
  }

  stepLogDir(id: string, index: number, name: string): string {
    return path.join(
      this.runDir(id),
      'steps',
      `${String(index).padStart(2, '0')}-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`,
    );
  }
}
