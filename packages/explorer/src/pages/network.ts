/**
 * Network: the nodes registered in NodeRegistry (stake, endpoint, up or down, log size, latest
 * anchor and witnesses), the models published in ModelRegistry, and recent activity on chain.
 * Everything here is read from the chain over JSON-RPC and from each node's public routes.
 */
import { getAnchorHistory, getLatestAnchor, listNodes, modelRegistryAbi } from '@verity/contracts';
import { type Env, env, getJson, pinDeployment, savedRpcUrl, saveRpcUrl } from '../env.js';
import { errorText, eth, facts, h, short, show } from '../ui.js';

export async function render(): Promise<void> {
  const e = await env();
  const nodes = h('section', { id: 'nodes' }, h('p', { class: 'mut' }, 'Reading the registry…'));
  const models = h('section', { id: 'models' });
  const activity = h('section', { id: 'activity' });
  show(h('h1', null, 'Network'), settings(e), nodes, models, activity);
  if (!e.chain) {
    await thisNodeOnly(e, nodes, models);
    return;
  }
  const { publicClient, deployment } = e.chain;
  const c = deployment.contracts;
  const fromBlock = BigInt((deployment as { block?: number | string }).block ?? 0);
  try {
    const [entries, published, anchors] = await Promise.all([
      listNodes(publicClient, { nodeRegistry: c.nodeRegistry as `0x${string}` }),
      publicClient.getContractEvents({
        address: c.modelRegistry as `0x${string}`,
        abi: modelRegistryAbi,
        eventName: 'ModelPublished',
        fromBlock,
        strict: true,
      }),
      getAnchorHistory(publicClient, { logAnchor: c.logAnchor as `0x${string}`, fromBlock }),
    ]);
    const rows = await Promise.all(
      entries.map(async (n) => {
        const [health, anchor, witnessed] = await Promise.all([
          getJson<{ logSize: number }>(`${n.endpoint}/healthz`, 3_000).catch(() => undefined),
          getLatestAnchor(publicClient, { logAnchor: c.logAnchor as `0x${string}`, node: n.account }),
          fetch(`${n.endpoint}/v1/log/witnessed`, { signal: AbortSignal.timeout(3_000) })
            .then((r) => (r.ok ? r.text() : undefined))
            .catch(() => undefined),
        ]);
        // Cosignature lines of the node's witnesses: every signature line after the log's own.
        const cosigners = witnessed === undefined ? 0 : Math.max(0, witnessed.split('\n— ').length - 2);
        return h(
          'tr',
          { 'data-node': n.account },
          h(
            'td',
            null,
            h('a', { href: `#/log/${encodeURIComponent(n.endpoint)}`, class: 'mono' }, short(n.account, 6)),
          ),
          h('td', null, n.status, n.active ? '' : ' (inactive)'),
          h('td', null, eth(n.stake)),
          h('td', null, h('a', { href: n.endpoint, class: 'mono' }, n.endpoint)),
          h('td', null, h('span', { class: `badge ${health ? 'up' : 'down'}` }, health ? 'up' : 'down')),
          h('td', null, health ? String(health.logSize) : '–'),
          h('td', null, anchor ? `${anchor.treeSize} @ block ${anchor.blockNumber}` : 'none'),
          h('td', null, String(cosigners)),
        );
      }),
    );
    nodes.replaceChildren(
      h('h2', null, `Nodes (${entries.length})`),
      h(
        'div',
        { class: 'wrap' },
        h(
          'table',
          null,
          h(
            'tr',
            null,
            ...['Node', 'Status', 'Stake', 'Endpoint', 'Up', 'Log size', 'Latest anchor', 'Witnesses'].map((t) =>
              h('th', null, t),
            ),
          ),
          ...rows,
        ),
      ),
    );
    models.replaceChildren(
      h('h2', null, `Models (${published.length})`),
      h(
        'div',
        { class: 'wrap' },
        h(
          'table',
          null,
          h('tr', null, ...['Model', 'Manifest CID', 'Publisher', 'Block'].map((t) => h('th', null, t))),
          ...published.map((m) =>
            h(
              'tr',
              { 'data-model': `${m.args.name}@${m.args.version}` },
              h('td', null, h('a', { href: `#/model/${m.args.manifestCid}` }, `${m.args.name}@${m.args.version}`)),
              h('td', { class: 'mono' }, short(m.args.manifestCid, 10)),
              h('td', { class: 'mono' }, short(m.args.publisher, 6)),
              h('td', null, String(m.blockNumber)),
            ),
          ),
        ),
      ),
    );
    const events = [
      ...published.map((m) => ({
        block: m.blockNumber,
        text: `published ${m.args.name}@${m.args.version} (${short(m.args.publisher, 6)})`,
      })),
      ...anchors.map((a) => ({
        block: a.blockNumber,
        text: `${short(a.node, 6)} anchored its log at size ${a.treeSize}`,
      })),
    ]
      .sort((x, y) => Number(y.block - x.block))
      .slice(0, 12);
    activity.replaceChildren(
      h('h2', null, 'Recent activity on chain'),
      h('ul', null, ...events.map((ev) => h('li', null, h('span', { class: 'mut' }, `block ${ev.block}: `), ev.text))),
    );
  } catch (err) {
    nodes.replaceChildren(h('p', { class: 'err' }, `The chain could not be read: ${errorText(err)}`));
  }
}

/** The chain's RPC URL, as this page reads it, and a field to name another. */
function settings(e: Env): HTMLElement {
  const input = h('input', {
    id: 'rpc',
    size: 36,
    placeholder: 'https://… (JSON-RPC of the chain)',
    value: savedRpcUrl() ?? e.chain?.rpcUrl ?? '',
  });
  const chain = e.chain;
  // The deployment every check starts from: the serving node's word unless pinned here.
  const pin = chain
    ? h(
        'p',
        { id: 'deployment' },
        chain.pinned
          ? `Deployment pinned in this browser: NodeRegistry ${chain.deployment.contracts.nodeRegistry}. `
          : `Deployment as this node serves it: NodeRegistry ${chain.deployment.contracts.nodeRegistry}. `,
        h(
          'button',
          {
            id: 'pin-deployment',
            onclick: () => {
              pinDeployment(chain.pinned ? undefined : chain.deployment);
              void render();
            },
          },
          chain.pinned ? 'Unpin' : 'Pin it',
        ),
        chain.servedOther
          ? h(
              'span',
              { class: 'err', id: 'deployment-other' },
              ` This node serves another deployment (chain ${chain.servedOther.chainId}, NodeRegistry ${chain.servedOther.contracts.nodeRegistry}): it is not on the pinned network.`,
            )
          : '',
      )
    : '';
  return h(
    'details',
    { open: e.chain === undefined && !e.noChain?.includes('without a chain') },
    h(
      'summary',
      { class: 'mut' },
      chain
        ? `Chain ${chain.deployment.chainId} over ${chain.rpcUrl}${chain.pinned ? ' (deployment pinned)' : ''}`
        : e.noChain,
    ),
    h(
      'p',
      null,
      input,
      ' ',
      h(
        'button',
        {
          onclick: () => {
            saveRpcUrl(input.value.trim() || undefined);
            void render();
          },
        },
        'Use',
      ),
    ),
    pin,
  );
}

/** Without a chain: what this node says of itself, labelled as such. */
async function thisNodeOnly(e: Env, nodes: HTMLElement, models: HTMLElement): Promise<void> {
  try {
    const [info, health, list] = await Promise.all([
      e.client.node(),
      getJson<{ logSize: number }>('/healthz'),
      e.client.models(),
    ]);
    nodes.replaceChildren(
      h('h2', null, 'This node (its own word: no chain to check it against)'),
      facts([
        ['Address', h('a', { href: '#/log', class: 'mono' }, info.address)],
        ['Log key', h('span', { class: 'mono' }, info.logKey)],
        ['Modes', info.modes.join(', ')],
        ['Log size', String(health.logSize)],
      ]),
    );
    models.replaceChildren(
      h('h2', null, `Models held (${list.length})`),
      h(
        'ul',
        null,
        ...list.map((m) =>
          h(
            'li',
            null,
            h('a', { href: `#/model/${m.id}` }, m.ref),
            ' ',
            h('span', { class: 'mono mut' }, short(m.id, 10)),
          ),
        ),
      ),
    );
  } catch (err) {
    nodes.replaceChildren(h('p', { class: 'err' }, errorText(err)));
  }
}
