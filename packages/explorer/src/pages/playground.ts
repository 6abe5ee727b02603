export async function render(_args: string[]): Promise<void> {
  (await import('../ui.js')).show('todo');
}
