/**
 * Deployment references → Prefect deployments. A flow names its deployment by id (UUID) or by
 * 'flow-name/deployment-name'; the name survives a redeploy while the id may not, so resolutions are
 * cached for a short TTL only (not forever), and callers that act on schedules ask for a fresh one.
 */
import { isUuid, type PrefectClient, type PrefectDeployment, type CallOptions } from './client/index.ts';
import { UserInputError } from '../errors.ts';

export const DEFAULT_DEPLOYMENT_TTL_MS = 60_000;

export class DeploymentResolver {
  readonly #client: PrefectClient;
  readonly #ttlMs: number;
  readonly #cache = new Map<string, { deployment: PrefectDeployment; at: number }>();

  constructor(client: PrefectClient, options: { ttlMs?: number } = {}) {
    this.#client = client;
    this.#ttlMs = options.ttlMs ?? DEFAULT_DEPLOYMENT_TTL_MS;
  }

  /** Throws UserInputError for a malformed reference, NotFoundError (permanent) for an unknown one. */
  async resolve(ref: string, options: CallOptions & { fresh?: boolean } = {}): Promise<PrefectDeployment> {
    const key = ref.trim();
    const hit = this.#cache.get(key);
    if (hit && !options.fresh && Date.now() - hit.at < this.#ttlMs) return hit.deployment;
    const call = options.signal ? { signal: options.signal } : {};
    let deployment: PrefectDeployment;
    if (isUuid(key)) {
      deployment = await this.#client.readDeployment(key, call);
    } else {
      const parts = key.split('/');
      if (parts.length !== 2 || !parts[0] || !parts[1]) {
        throw new UserInputError(
          `invalid Prefect deployment reference '${ref}': use a deployment id (UUID) or 'flow-name/deployment-name'`,
        );
      }
      deployment = await this.#client.readDeploymentByName(parts[0], parts[1], call);
    }
    this.#cache.set(key, { deployment, at: Date.now() });
    return deployment;
  }

  forget(ref: string): void {
    this.#cache.delete(ref.trim());
  }
}
