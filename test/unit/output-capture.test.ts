import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { HeadTailBuffer, LineSplitter, type SplitLine } from '../../src/core/exec';
import { FIXTURES } from '../support/processes';

const SAMPLES = path.join(FIXTURES, 'cli-samples');

function splitAll(chunks: Buffer[], maxLineBytes: number): SplitLine[] {
  const lines: SplitLine[] = [];
  const splitter = new LineSplitter((line) => lines.push(line), maxLineBytes);
  for (const chunk of chunks) splitter.push(chunk);
  splitter.flush();
  return lines;
}

/** Cuts a buffer at the given offsets into consecutive chunks. */
function cut(buffer: Buffer, offsets: number[]): Buffer[] {
  const points = [...new Set(offsets.map((o) => o % (buffer.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const point of points) {
    chunks.push(buffer.subarray(start, point));
    start = point;
  }
  chunks.push(buffer.subarray(start));
  return chunks;
}

describe('line splitter', () => {
  it('joins a line split across chunks, including inside a multi-byte character', () => {
    const bytes = Buffer.from('{"a":"日本"}\n{"b":2}\n');
    const lines = splitAll([bytes.subarray(0, 8), bytes.subarray(8, 9), bytes.subarray(9)], 1024);
    assert.deepEqual(
      lines.map((line) => line.text),
      ['{"a":"日本"}', '{"b":2}'],
    );
  });

  it('strips CRLF line endings and emits a last line that has no newline', () => {
    const lines = splitAll([Buffer.from('one\r\ntwo')], 1024);
    assert.deepEqual(
      lines.map((line) => line.text),
      ['one', 'two'],
    );
  });

  it('caps a long line, marks it truncated and keeps its full byte length', () => {
    const lines = splitAll([Buffer.from('x'.repeat(5000) + '\nshort\n')], 100);
    assert.equal(lines[0]?.text.length, 100);
    assert.equal(lines[0]?.truncated, true);
    assert.equal(lines[0]?.byteLength, 5000);
    assert.deepEqual(lines[1], { text: 'short', truncated: false, byteLength: 5 });
  });

  it('gives the same lines however the stream is chunked (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ unit: 'grapheme', maxLength: 40 }).map((s) => s.replace(/[\r\n]/g, '')),
          { maxLength: 20 },
        ),
        fc.array(fc.nat(), { maxLength: 30 }),
        (texts, offsets) => {
          const bytes = Buffer.from(texts.map((text) => text + '\n').join(''));
          const lines = splitAll(cut(bytes, offsets), 1 << 20);
          assert.deepEqual(
            lines.map((line) => line.text),
            texts,
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('never holds more than the cap of a line, whatever the input (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 2000 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.integer({ min: 1, max: 64 }),
        (data, offsets, cap) => {
          const lines = splitAll(cut(Buffer.from(data), offsets), cap);
          for (const line of lines)
            assert.ok(Buffer.byteLength(line.text) <= cap * 3, 'decoded text is bounded');
          const newlines = data.filter((byte) => byte === 0x0a).length;
          const trailing = data.length > 0 && data[data.length - 1] !== 0x0a ? 1 : 0;
          assert.equal(lines.length, newlines + trailing);
        },
      ),
      { numRuns: 300 },
    );
  });

  for (const sample of ['codex-flood.stdout.jsonl', 'gemini-flood.stdout.jsonl']) {
    it(`survives the recorded ${sample}, whose last line was cut mid-JSON`, () => {
      const bytes = readFileSync(path.join(SAMPLES, sample));
      const lines = splitAll(cut(bytes, [7, 4096, 65_537]), 256 * 1024);
      assert.ok(lines.length > 0);
      const parsed = lines.filter((line) => {
        try {
          JSON.parse(line.text);
          return true;
        } catch {
          return false;
        }
      });
      assert.ok(parsed.length >= 1, 'the complete lines parse');
      assert.ok(lines.every((line) => Buffer.byteLength(line.text) <= 256 * 1024));
    });
  }
});

describe('head + tail capture buffer', () => {
  it('keeps everything while under the cap', () => {
    const buffer = new HeadTailBuffer(100);
    buffer.push(Buffer.from('hello '));
    buffer.push(Buffer.from('world'));
    const result = buffer.result();
    assert.equal(result.text, 'hello world');
    assert.equal(result.truncated, false);
    assert.equal(result.totalBytes, 11);
  });

  it('keeps the first and last halves and says how many bytes were dropped', () => {
    const buffer = new HeadTailBuffer(10);
    buffer.push(Buffer.from('abcdefghijklmnopqrstuvwxyz'));
    const result = buffer.result();
    assert.equal(result.head, 'abcde');
    assert.equal(result.tail, 'vwxyz');
    assert.equal(result.totalBytes, 26);
    assert.equal(result.capturedBytes, 10);
    assert.match(result.text, /\[\.\.\. 16 bytes not kept in memory \.\.\.\]/);
  });

  it('matches a reference model for any chunking (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 50 }), { maxLength: 30 }),
        fc.integer({ min: 2, max: 80 }),
        (chunks, cap) => {
          const buffer = new HeadTailBuffer(cap);
          for (const chunk of chunks) buffer.push(Buffer.from(chunk));
          const all = Buffer.concat(chunks.map((chunk) => Buffer.from(chunk)));
          const headSize = Math.ceil(cap / 2);
          const tailSize = Math.floor(cap / 2);
          const head = all.subarray(0, Math.min(all.length, headSize));
          const rest = all.subarray(head.length);
          const tail = rest.subarray(Math.max(0, rest.length - tailSize));
          const result = buffer.result();
          assert.equal(result.totalBytes, all.length);
          assert.equal(result.capturedBytes, head.length + tail.length);
          assert.ok(result.capturedBytes <= cap);
          assert.equal(result.head, head.toString('utf8'));
          assert.equal(result.tail, tail.toString('utf8'));
          assert.equal(result.truncated, all.length > head.length + tail.length);
        },
      ),
      { numRuns: 500 },
    );
  });
});
