// Splits a byte stream into lines for JSONL parsing: survives chunks that split lines (and multi-byte
// characters), and caps each line so one endless line cannot grow memory.

export interface SplitLine {
  text: string;
  /** The line was longer than the cap; `text` holds its first `maxLineBytes` bytes. */
  truncated: boolean;
  /** Bytes the full line had, without its line ending. */
  byteLength: number;
}

export class LineSplitter {
  private parts: Buffer[] = [];
  private keptBytes = 0;
  private lineBytes = 0;

  constructor(
    private readonly onLine: (line: SplitLine) => void,
    private readonly maxLineBytes = 1024 * 1024,
  ) {
    if (!Number.isInteger(maxLineBytes) || maxLineBytes < 1) {
      throw new RangeError(`maxLineBytes must be a positive integer, got ${maxLineBytes}`);
    }
  }

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline === -1) {
        this.keep(chunk.subarray(start));
        return;
      }
      this.keep(chunk.subarray(start, newline));
      this.emit();
      start = newline + 1;
    }
  }

  /** Emits what is left after the last newline, if anything. */
  flush(): void {
    if (this.lineBytes > 0) this.emit();
  }

  private keep(piece: Buffer): void {
    if (piece.length === 0) return;
    this.lineBytes += piece.length;
    const room = this.maxLineBytes - this.keptBytes;
    if (room <= 0) return;
    const kept = piece.length <= room ? piece : piece.subarray(0, room);
    // Copy: the caller may reuse its chunk buffer.
    this.parts.push(Buffer.from(kept));
    this.keptBytes += kept.length;
  }

  private emit(): void {
    let bytes = Buffer.concat(this.parts, this.keptBytes);
    const truncated = this.lineBytes > this.keptBytes;
    let byteLength = this.lineBytes;
    if (!truncated && bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) {
      bytes = bytes.subarray(0, bytes.length - 1);
      byteLength -= 1;
    }
    this.parts = [];
    this.keptBytes = 0;
    this.lineBytes = 0;
    this.onLine({ text: bytes.toString('utf8'), truncated, byteLength });
  }
}
