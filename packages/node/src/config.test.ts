import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, loadConfig, parsePrices } from './config.js';

const CID = 'bagaaierawhtwabz7d4f5sxmfvuk7mfasw2hjakvlrf22fi5m23bfzrd7rlza'; // a manifest CID (json codec)

describe('loadConfig: peers', () => {
  it('defaults to no local mode, registered CIDs only, and replica quotas', () => {
    expect(loadConfig().peers).toEqual({
      localNetwork: false,
      fetchCids: [],
      maxReplicas: 64,
      maxReplicaBytes: 64 * 1024 * 1024 * 1024,
    });
    expect(DEFAULT_CONFIG.peers.localNetwork).toBe(false);
  });

  it('reads the VERITY_* variables; a list replaces the list below it', () => {
    const config = loadConfig({
      env: {
        VERITY_LOCAL_NETWORK: '1',
        VERITY_FETCH_CIDS: `${CID}, *`,
        VERITY_MAX_REPLICAS: '3',
        VERITY_MAX_REPLICA_BYTES: '1000',
      },
      overrides: { peers: { maxReplicas: 5 } },
    });
    expect(config.peers).toEqual({ localNetwork: true, fetchCids: [CID, '*'], maxReplicas: 5, maxReplicaBytes: 1000 });
    expect(loadConfig({ overrides: { peers: { fetchCids: [CID] } } }).peers.fetchCids).toEqual([CID]);
    expect(loadConfig({ env: { VERITY_LOCAL_NETWORK: '0' } }).peers.localNetwork).toBe(false);
  });

  it('refuses what is not a manifest CID, and bad quotas, with CONFIG_INVALID', () => {
    const artifactCid = 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'; // raw codec
    for (const peers of [
      { fetchCids: ['iris@1.0.0'] },
      { fetchCids: [artifactCid] },
      { fetchCids: 'x' as never },
      { maxReplicas: -1 },
      { maxReplicaBytes: 1.5 },
      { localNetwork: 'yes' as never },
    ]) {
      expect(() => loadConfig({ overrides: { peers } }), JSON.stringify(peers)).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID' }),
      );
    }
  });

  it('serves as a juror by default; VERITY_DISPUTES_JUROR=0 turns it off, VERITY_DISPUTES_INTERVAL_MS sets its pace; bad values are refused', () => {
    expect(loadConfig().disputes).toEqual({ juror: true, intervalMs: 5000 });
    expect(loadConfig({ env: { VERITY_DISPUTES_JUROR: '0' } }).disputes.juror).toBe(false);
    expect(loadConfig({ env: { VERITY_DISPUTES_INTERVAL_MS: '250', VERITY_DISPUTES_JUROR: '0' } }).disputes).toEqual({
      juror: false,
      intervalMs: 250,
    });
    expect(() => loadConfig({ env: { VERITY_DISPUTES_INTERVAL_MS: 'soon' } })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
    for (const disputes of [{ juror: 'yes' as never }, { intervalMs: 0 }, { intervalMs: 1.5 }]) {
      expect(() => loadConfig({ overrides: { disputes } }), JSON.stringify(disputes)).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID' }),
      );
    }
  });

  it('reads payments: prices by name@version or manifest CID, per request or per token; refuses the rest', () => {
    const chain = { rpcUrl: 'http://127.0.0.1:8545', deploymentFile: '/tmp/d.json' };
    const prices = {
      'iris@1.0.0': { request: '1000' },
      bagaaieraiqjw7i2vwntyuekgvulpp2det2kpwt6cd7tx5ayqybqpmhfk76fa: { inputToken: '1', outputToken: '2' },
    };
    expect(loadConfig({ overrides: { chain, payments: { prices } } }).payments).toEqual({
      prices,
      maxTimeoutSeconds: 300,
    });
    expect(loadConfig().payments).toBeUndefined();
    for (const payments of [
      { prices: { 'iris@1.0.0': { request: 1000 as never } } }, // a number, not a decimal string
      { prices: { 'iris@1.0.0': { request: '-1' } } },
      { prices: { 'iris@1.0.0': { request: '01' } } },
      { prices: { iris: { request: '1' } } }, // neither name@version nor a CID
      { prices: { 'iris@1.0.0': { request: '1', inputToken: '1' } as never } },
      { prices: { 'iris@1.0.0': { inputToken: '1' } as never } },
      { prices: {}, token: 'usdc' },
      { prices: {}, maxTimeoutSeconds: 1 },
    ]) {
      expect(() => loadConfig({ overrides: { chain, payments } }), JSON.stringify(payments)).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID' }),
      );
    }
    // Payments are settled on the node's chain: without one they are refused.
    expect(() => loadConfig({ overrides: { payments: { prices } } })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });

  it('reads prices from VERITY_PRICES (MODEL=AMOUNT, MODEL=INPUT/OUTPUT), merged model by model with the others', () => {
    const chain = { rpcUrl: 'http://127.0.0.1:8545', deploymentFile: '/tmp/d.json' };
    const token = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
    const config = loadConfig({
      env: {
        VERITY_PRICES: ' iris@1.0.0=1000 , tiny-chat@1.0.0=10/100,',
        VERITY_PAYMENT_TOKEN: token,
      },
      overrides: { chain, payments: { prices: { 'forecast@1.0.0': { request: '5' } } } },
    });
    expect(config.payments).toEqual({
      token,
      maxTimeoutSeconds: 300,
      prices: {
        'iris@1.0.0': { request: '1000' },
        'tiny-chat@1.0.0': { inputToken: '10', outputToken: '100' },
        'forecast@1.0.0': { request: '5' },
      },
    });
    expect(parsePrices('iris@1.0.0=7')).toEqual({ 'iris@1.0.0': { request: '7' } });
    // Malformed lines, and amounts the config check refuses: CONFIG_INVALID either way.
    for (const bad of [
      'iris@1.0.0',
      '=5',
      'iris@1.0.0=',
      'iris@1.0.0=1/2/3',
      'iris@1.0.0=1/',
      'iris@1.0.0=0x10',
      'iris=5',
    ]) {
      expect(() => loadConfig({ env: { VERITY_PRICES: bad }, overrides: { chain } }), bad).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID' }),
      );
    }
    // Prices need the chain they are settled on.
    expect(() => loadConfig({ env: { VERITY_PRICES: 'iris@1.0.0=5' } })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });

  it('has no fault switch: VERITY_TEST_FAULT is not read', () => {
    const config = loadConfig({ env: { VERITY_TEST_FAULT: 'corrupt-output' } });
    expect(config).toEqual(loadConfig());
    expect(Object.keys(config)).not.toContain('testFault');
  });
});
