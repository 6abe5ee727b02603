/** Server-sent events as a Verity node streams them (`data: …` lines, events split by a blank line). */

/**
 * A splitter of an event stream's bytes: each call takes the next bytes and returns the `data` of
 * every event they complete (comment lines dropped). For readers that must pass the bytes on as
 * they are (a paying fetch watching for the settlement) as well as for {@link sseData}.
 *
 * @example
 * ```ts
 * const split = sseSplitter();
 * for (const data of split(bytes)) console.log(data);
 * ```
 */
export function sseSplitter(): (bytes: Uint8Array) => string[] {
  const decoder = new TextDecoder();
  let buffer = '';
  return (bytes) => {
    buffer += decoder.decode(bytes, { stream: true });
    const out: string[] = [];
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
      if (data !== '') out.push(data);
    }
    return out;
  };
}

/**
 * The `data` of each event of `body`, as it arrives (`[DONE]` included; comment lines dropped).
 *
 * @example
 * ```ts
 * for await (const data of sseData(response.body)) if (data !== '[DONE]') chunks.push(JSON.parse(data));
 * ```
 */
export async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const split = sseSplitter();
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      yield* split(value);
    }
  } finally {
    reader.releaseLock();
  }
}
