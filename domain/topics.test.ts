// The one parser of topic names: what it accepts, and the single spelling of a device's Homie ID.
import { deviceIdOf, deviceInboundFilters, isMiscasedDeviceTopic, parseTopic, topics } from './topics';

const D = '0123456789AB';
const hid = D.toLowerCase();

describe('topics', () => {
  it('builds and parses the tree', () => {
    expect(parseTopic(topics.property(D, 'env', 'temperature'))).toEqual({ kind: 'value', deviceId: D, node: 'env', property: 'temperature' });
    expect(parseTopic(topics.state(D))).toEqual({ kind: 'device-attribute', deviceId: D, attribute: '$state' });
    expect(parseTopic(topics.commandResult(D, 'r1'))).toEqual({ kind: 'command-result', deviceId: D, requestId: 'r1' });
    expect(parseTopic('other/x/y')).toBeNull();
  });

  it('has the pairing topics under $rdm, and a device subscribes to its requests and its owner', () => {
    expect(topics.pairingRequest(D)).toBe(`homie/${hid}/$rdm/pairing/request`);
    expect(parseTopic(topics.pairingRequest(D))).toEqual({ kind: 'pairing-request', deviceId: D });
    expect(parseTopic(topics.pairingResponse(D))).toEqual({ kind: 'pairing-response', deviceId: D });
    expect(parseTopic(topics.owner(D))).toEqual({ kind: 'owner', deviceId: D });
    for (const bad of ['pairing', 'pairing/other', 'pairing/request/x', 'owner/x']) expect(parseTopic(`homie/${hid}/$rdm/${bad}`)).toBeNull();
    expect(deviceInboundFilters(D)).toEqual(expect.arrayContaining([topics.pairingRequest(D), topics.owner(D)]));
    expect(deviceInboundFilters(D)).not.toContain(topics.pairingResponse(D));
  });

  it('has the OTA topics under $rdm: a device subscribes to ota/set and reports on ota', () => {
    expect(topics.otaSet(D)).toBe(`homie/${hid}/$rdm/ota/set`);
    expect(topics.otaReport(D)).toBe(`homie/${hid}/$rdm/ota`);
    expect(topics.firmwareVersion(D)).toBe(`homie/${hid}/$fw/version`);
    expect(parseTopic(topics.otaSet(D))).toEqual({ kind: 'ota-set', deviceId: D });
    expect(parseTopic(topics.otaReport(D))).toEqual({ kind: 'ota-report', deviceId: D });
    expect(parseTopic(topics.firmwareVersion(D))).toEqual({ kind: 'device-attribute', deviceId: D, attribute: '$fw/version' });
    for (const bad of ['ota/x', 'ota/set/x', 'ota/', 'ota/report']) expect(parseTopic(`homie/${hid}/$rdm/${bad}`)).toBeNull();
    expect(deviceInboundFilters(D)).toContain(topics.otaSet(D));
    expect(deviceInboundFilters(D)).not.toContain(topics.otaReport(D));
  });

  it('takes attribute names that can be JSON keys in Postgres, and nothing else', () => {
    expect(parseTopic(`homie/${hid}/$implementation/ota/enabled`)).toMatchObject({ kind: 'device-attribute', attribute: '$implementation/ota/enabled' });
    for (const bad of ['$x\u0000y', '$', '$a//b', `$${'a'.repeat(65)}`, '$a/b/c/d/e', '$a b', '$\ud800']) expect(parseTopic(`homie/${hid}/${bad}`)).toBeNull();
    expect(parseTopic(`homie/${hid}/env/$na\u0000me`)).toBeNull();
    expect(parseTopic(`homie/${hid}/env/t/$unit\u0000`)).toBeNull();
    expect(parseTopic(`homie/${hid}/leds_1/intensity`)).toMatchObject({ kind: 'value', node: 'leds_1' }); // Homie 3 array element
  });

  it('accepts only the lowercase Homie ID, as a broker ACL on homie/<hid>/# does', () => {
    expect(deviceIdOf(hid)).toBe(D);
    expect(deviceIdOf(D)).toBeNull();
    expect(deviceIdOf('0123456789aB')).toBeNull();
    for (const t of [`homie/${D}/env/temperature`, `homie/0123456789Ab/$state`, `homie/${D}/$rdm/log`]) {
      expect(parseTopic(t)).toBeNull();
      expect(isMiscasedDeviceTopic(t)).toBe(true);
    }
    expect(isMiscasedDeviceTopic(topics.state(D))).toBe(false);
    expect(isMiscasedDeviceTopic('homie/NOTADEVICE1/$state')).toBe(false); // not ours at all: an unknown topic
    expect(isMiscasedDeviceTopic('homie')).toBe(false);
  });
});
