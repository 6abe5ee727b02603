/** Server-sent events as a Verity node streams them (`data: …` lines, events split by a blank line). */

/**
 * The `data` of each event of `body`, as it arrives (`[DONE]` included; comment lines dropped).
 *
 * @example
 * ```ts
 * for await (const data of sseData(response.body)) if (data !== '[DONE]') chunks.push(JSON.parse(data));
 * ```
 */
export async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
        const data = event
          .split('\n')
          .filter((l) => l.startsWith('data: '))
          .map((l) => l.slice(6))
          .join('\n');
        if (data !== '') yield data;
      }
    }
  } finally {
    reader.releaseLock();
  }
}
