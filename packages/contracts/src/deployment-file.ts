/**
 * Reading and writing deployment files (format: `deploy.ts`). Node only.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { VerityError } from '@verity/protocol';
import { type Deployment, deploymentFromJson, deploymentToJson } from './deploy.js';

/**
 * Reads and checks a deployment file; a missing or unreadable file is `CONFIG_INVALID` as well.
 *
 * @example
 * ```ts
 * const deployment = await readDeploymentFile('.verity/deployment.json');
 * ```
 */
export async function readDeploymentFile(path: string): Promise<Deployment> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new VerityError('CONFIG_INVALID', `cannot read deployment file ${path}`, { details: { path }, cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new VerityError('CONFIG_INVALID', `deployment file ${path} is not JSON`, { details: { path }, cause: e });
  }
  return deploymentFromJson(json);
}

/** Writes a deployment file atomically (a temporary file renamed over it). */
export async function writeDeploymentFile(path: string, deployment: Deployment): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(deploymentToJson(deployment), null, 2)}\n`);
  await rename(tmp, path);
}
