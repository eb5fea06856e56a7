// Bounded capture of a child's output: the first and last bytes in memory, the exact total counted,
// and optionally the whole stream spilled to a log file, redacted, that stops growing at its own cap.
import { createWriteStream, type WriteStream } from 'node:fs';
import { StreamRedactor, type Redactor } from '../redact';

export interface CapturedOutput {
  /** Head and tail joined with a marker line when bytes were dropped in between. */
  text: string;
  head: string;
  tail: string;
  /** Bytes the stream carried in all. */
  totalBytes: number;
  /** Bytes held in memory (head + tail), never more than the cap. */
  capturedBytes: number;
  /** Bytes were dropped between head and tail. */
  truncated: boolean;
  logFile?: CapturedLog;
}

export interface CapturedLog {
  path: string;
  /** Bytes of redacted text in the file. */
  bytesWritten: number;
  /** The redacted stream went past the log cap; the file holds its first `bytesWritten` bytes. */
  truncated: boolean;
  error?: string;
}

/**
 * Keeps the first half of the cap as the head and the last half as a ring buffer tail. Memory is taken
 * as output arrives, so a short-lived quiet child costs next to nothing.
 */
export class HeadTailBuffer {
  private readonly headCap: number;
  private readonly tailCap: number;
  private headParts: Buffer[] = [];
  private headLength = 0;
  private tail: Buffer | undefined;
  private tailStart = 0;
  private tailLength = 0;
  private total = 0;

  constructor(readonly capBytes: number) {
    if (!Number.isInteger(capBytes) || capBytes < 2) {
      throw new RangeError(`capture cap must be an integer of at least 2 bytes, got ${capBytes}`);
    }
    this.headCap = Math.ceil(capBytes / 2);
    this.tailCap = Math.floor(capBytes / 2);
  }

  get totalBytes(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    this.total += chunk.length;
    let data = chunk;
    if (this.headLength < this.headCap) {
      const taken = Math.min(data.length, this.headCap - this.headLength);
      // Copy: the caller may reuse its chunk buffer.
      this.headParts.push(Buffer.from(data.subarray(0, taken)));
      this.headLength += taken;
      // Many tiny chunks would cost more in Buffer objects than in bytes: fold them together.
      if (this.headParts.length > 64) this.headParts = [Buffer.concat(this.headParts, this.headLength)];
      data = data.subarray(taken);
    }
    if (data.length === 0) return;
    const size = this.tailCap;
    this.tail ??= Buffer.allocUnsafe(size);
    const tail = this.tail;
    if (data.length >= size) {
      data.copy(tail, 0, data.length - size);
      this.tailStart = 0;
      this.tailLength = size;
      return;
    }
    let writeAt = (this.tailStart + this.tailLength) % size;
    for (let offset = 0; offset < data.length;) {
      const n = Math.min(data.length - offset, size - writeAt);
      data.copy(tail, writeAt, offset, offset + n);
      offset += n;
      writeAt = (writeAt + n) % size;
    }
    const overflow = this.tailLength + data.length - size;
    if (overflow > 0) {
      this.tailStart = (this.tailStart + overflow) % size;
      this.tailLength = size;
    } else {
      this.tailLength += data.length;
    }
  }

  result(): CapturedOutput {
    const head = Buffer.concat(this.headParts, this.headLength).toString('utf8');
    const tail = this.tail ?? Buffer.alloc(0);
    const tailBytes = Buffer.concat([
      tail.subarray(this.tailStart, Math.min(tail.length, this.tailStart + this.tailLength)),
      tail.subarray(0, Math.max(0, this.tailStart + this.tailLength - tail.length)),
    ]);
    const tailText = tailBytes.toString('utf8');
    const capturedBytes = this.headLength + this.tailLength;
    const truncated = this.total > capturedBytes;
    const dropped = this.total - capturedBytes;
    const text = truncated
      ? `${head}\n[... ${dropped} bytes not kept in memory ...]\n${tailText}`
      : head + tailText;
    return { text, head, tail: tailText, totalBytes: this.total, capturedBytes, truncated };
  }
}

/**
 * Spills a stream to a file, redacted, up to `maxBytes` of redacted text. There is no way to spill without a
 * redactor: a child's output is the one thing Tandem writes that no record schema has looked at. The cap
 * cuts redacted text, so it can cut a mask but never leave half of a secret; once it is reached nothing more
 * is redacted, which bounds the cost of a flood. `write` returns false when the caller should pause the source
 * until `drained()` resolves, so a fast child cannot outrun the disk and grow memory.
 */
export class CappedLogFile {
  private readonly stream: WriteStream;
  private readonly redacting: StreamRedactor;
  private written = 0;
  /** The cap is reached (perhaps a few bytes short, where a character did not fit). */
  private full = false;
  private truncated = false;
  private error: string | undefined;
  private readonly closed: Promise<void>;

  constructor(
    readonly path: string,
    private readonly maxBytes: number,
    redactor: Redactor,
  ) {
    this.redacting = new StreamRedactor(redactor);
    this.stream = createWriteStream(path, { flags: 'w', mode: 0o600 });
    this.closed = new Promise((resolve) => {
      this.stream.once('close', resolve);
      this.stream.once('error', (err) => {
        this.error = err.message;
        resolve();
      });
    });
  }

  write(chunk: Buffer): boolean {
    if (this.error !== undefined) return true;
    if (this.full) {
      if (chunk.length > 0) this.truncated = true;
      return true;
    }
    return this.writeText(this.redacting.push(chunk));
  }

  private writeText(text: string): boolean {
    if (text === '') return true;
    const bytes = Buffer.from(text, 'utf8');
    const room = this.maxBytes - this.written;
    let part = bytes;
    if (bytes.length > room) {
      // A whole character: back off over UTF-8 continuation bytes (10xxxxxx).
      let end = room;
      while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--;
      part = bytes.subarray(0, end);
      this.truncated = true;
    }
    this.written += part.length;
    if (this.written >= this.maxBytes || part !== bytes) this.full = true;
    return this.stream.write(part);
  }

  drained(): Promise<void> {
    if (this.error !== undefined || !this.stream.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.stream.off('drain', done);
        this.stream.off('close', done);
        resolve();
      };
      this.stream.on('drain', done);
      this.stream.on('close', done);
    });
  }

  async close(): Promise<CapturedLog> {
    if (this.error === undefined && !this.full) this.writeText(this.redacting.end());
    if (!this.stream.closed && !this.stream.destroyed) this.stream.end();
    await this.closed;
    const log: CapturedLog = { path: this.path, bytesWritten: this.written, truncated: this.truncated };
    if (this.error !== undefined) log.error = this.error;
    return log;
  }
}
