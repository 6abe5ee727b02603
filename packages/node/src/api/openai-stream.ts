/**
 * The streamed form of an OpenAI answer (`stream: true`): server-sent events written on the raw
 * response (docs/api.md "Language models: the OpenAI API").
 */
import type { FastifyReply } from 'fastify';

/**
 * Server-sent events on the raw response, started at the first event. The first event goes out
 * at once (time to first token); later ones are gathered for up to `flushMs` and written
 * together, because one socket write per token costs more (≈0.1 ms of syscall on loopback, and as
 * much again in the client) than generating a small model's token. `end` sends what is left and
 * the closing events in one write.
 */
export class EventStream {
  private started = false;
  private pending = '';
  private timer: ReturnType<typeof setTimeout> | undefined;
  constructor(
    private readonly reply: FastifyReply,
    private readonly flushMs: number,
  ) {}
  get isStarted(): boolean {
    return this.started;
  }
  private static frame(data: unknown): string {
    return `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
  }
  send(data: unknown): void {
    const raw = this.reply.raw;
    if (!this.started) {
      this.started = true;
      this.reply.hijack();
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      this.pending = EventStream.frame(data);
      // Same tick (the role chunk and the first token): one write.
      setImmediate(() => this.flush());
      return;
    }
    this.pending += EventStream.frame(data);
    if (this.flushMs === 0 || this.pending.length > 16_384) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.flushMs);
  }
  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending !== '' && !this.reply.raw.destroyed) this.reply.raw.write(this.pending);
    this.pending = '';
  }
  /** Writes `last` events and what is pending, and ends the response. */
  end(...last: unknown[]): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const tail = this.pending + last.map(EventStream.frame).join('');
    this.pending = '';
    if (!this.reply.raw.destroyed) this.reply.raw.end(tail);
  }
}
