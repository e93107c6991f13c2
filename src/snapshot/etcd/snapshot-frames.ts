/**
 * Reads the blob bytes out of a Maintenance.Snapshot response body as it arrives: gRPC
 * length-prefixed messages (1 byte compressed flag, 4 bytes big-endian length), each a
 * SnapshotResponse { header = 1; remaining_bytes = 2; blob = 3; version = 4 }.
 *
 * Blob bytes are handed on as views of the received buffers, never copied or reassembled; only
 * the few bytes of prefixes, tags and lengths are read one at a time, so they may be split across
 * buffers anywhere. Fields other than blob are skipped, whatever their type.
 */

export class SnapshotFrameError extends Error {}

type State = 'prefix' | 'tag' | 'length' | 'varint' | 'blob' | 'skip';

const BLOB_FIELD = 3;
const WIRE_VARINT = 0;
const WIRE_64BIT = 1;
const WIRE_BYTES = 2;
const WIRE_32BIT = 5;

export class SnapshotFrames {
  private state: State = 'prefix';
  private prefix = Buffer.alloc(5);
  private prefixFill = 0;
  /** Bytes of the current message not yet read. */
  private messageLeft = 0;
  /** Bytes of the current blob or skipped field not yet read. */
  private fieldLeft = 0;
  private field = 0;
  private value = 0;
  private shift = 0;
  /** Messages read so far. */
  messages = 0;

  /** Feeds received bytes; `emit` gets the blob bytes among them, in order. */
  feed(chunk: Buffer, emit: (blob: Buffer) => void): void {
    let i = 0;
    while (i < chunk.length) {
      switch (this.state) {
        case 'prefix':
          this.prefix[this.prefixFill++] = chunk[i++]!;
          if (this.prefixFill === 5) this.startMessage();
          break;
        case 'tag':
        case 'length':
        case 'varint': {
          const b = chunk[i++]!;
          this.messageLeft--;
          this.value += (b & 0x7f) * 2 ** this.shift;
          this.shift += 7;
          if (b & 0x80) {
            if (this.shift >= 70) throw new SnapshotFrameError('a varint in a snapshot message is too long');
            if (this.messageLeft === 0) throw new SnapshotFrameError('a snapshot message ends inside a varint');
            break;
          }
          const v = this.value;
          this.value = 0;
          this.shift = 0;
          this.varintDone(v);
          break;
        }
        case 'blob':
        case 'skip': {
          const n = Math.min(this.fieldLeft, chunk.length - i);
          if (this.state === 'blob') emit(chunk.subarray(i, i + n));
          i += n;
          this.fieldLeft -= n;
          this.messageLeft -= n;
          if (this.fieldLeft === 0) this.fieldDone();
          break;
        }
      }
    }
  }

  /** Whether the bytes so far end exactly at a message boundary (a clean end of stream). */
  get atBoundary(): boolean {
    return this.state === 'prefix' && this.prefixFill === 0;
  }

  private startMessage(): void {
    this.prefixFill = 0;
    if (this.prefix[0] !== 0) throw new SnapshotFrameError('etcd sent a compressed snapshot message, which was not asked for');
    this.messageLeft = this.prefix.readUInt32BE(1);
    this.messages++;
    this.state = this.messageLeft > 0 ? 'tag' : 'prefix';
  }

  private varintDone(v: number): void {
    if (this.state === 'tag') {
      this.field = Math.floor(v / 8);
      const wire = v % 8;
      if (wire === WIRE_VARINT) this.state = 'varint';
      else if (wire === WIRE_BYTES) this.state = 'length';
      else if (wire === WIRE_64BIT || wire === WIRE_32BIT) this.startField(wire === WIRE_64BIT ? 8 : 4, 'skip');
      else throw new SnapshotFrameError(`unexpected protobuf wire type ${wire} in a snapshot message`);
      if (this.messageLeft === 0) throw new SnapshotFrameError('a snapshot message ends after a field tag');
      return;
    }
    if (this.state === 'length') {
      this.startField(v, this.field === BLOB_FIELD ? 'blob' : 'skip');
      return;
    }
    this.fieldDone();
  }

  private startField(size: number, state: 'blob' | 'skip'): void {
    if (size > this.messageLeft) throw new SnapshotFrameError('a field runs past the end of its snapshot message');
    this.fieldLeft = size;
    this.state = state;
    if (size === 0) this.fieldDone();
  }

  private fieldDone(): void {
    this.state = this.messageLeft > 0 ? 'tag' : 'prefix';
  }
}
