import { dynsecAcls, filterCovers, mayPublish, mayRead, maySubscribe, mosquittoAcl, topicMatches } from './broker-identity';
import { loadConfig } from '../runtime/config';

const u = 'abcdefghjkmn'; // a Homie ID: a device's username

it('matches topics and covers subscriptions as MQTT does', () => {
  expect(topicMatches('homie/#', 'homie/a/b')).toBe(true);
  expect(topicMatches('homie/+/$rdm/#', 'homie/a/$rdm/config/set')).toBe(true);
  expect(topicMatches('#', '$SYS/broker/uptime')).toBe(false);
  expect(topicMatches('homie/+', 'homie/a/b')).toBe(false);
  expect(filterCovers('homie/a/#', 'homie/a/+/+/set')).toBe(true);
  expect(filterCovers('homie/a/#', 'homie/+/#')).toBe(false);
  expect(filterCovers('homie/+/#', 'homie/a/#')).toBe(true);
  expect(filterCovers('homie/a/#', '#')).toBe(false);
  expect(filterCovers('homie/a/b', 'homie/a/b/c')).toBe(false);
});

it('keeps a device in homie/<its username>/#, with no wildcard above it, no $share, no $SYS', () => {
  expect(mayPublish(u, `homie/${u}/env/t`)).toBe(true);
  expect(mayPublish(u, `homie/${u}/env/+`)).toBe(false);
  expect(mayPublish(u, 'homie/zzzzzzzzzzzz/env/t')).toBe(false);
  expect(mayPublish(u.toUpperCase(), `homie/${u.toUpperCase()}/env/t`)).toBe(false); // not a username the platform gives
  expect(maySubscribe(u, `homie/${u}/+/+/set`)).toBe(true);
  for (const f of ['#', 'homie/#', 'homie/+/#', `$share/g/homie/${u}/#`, '$SYS/#', `+/${u}/#`]) expect({ f, ok: maySubscribe(u, f) }).toEqual({ f, ok: false });
  expect(mayRead(u, `homie/${u}/$rdm/config/set`)).toBe(true);
  expect(mayRead(u, '$SYS/broker/uptime')).toBe(false);
});

it("gives each platform client its rights only; the bridge alone shares", () => {
  expect(maySubscribe('rdm-bridge', '$share/rdm-bridge-x/homie/+/#')).toBe(true);
  expect(maySubscribe('rdm-api', '$share/rdm-bridge-x/homie/+/#')).toBe(false);
  expect(mayPublish('rdm-bridge', `homie/${u}/$rdm/config/set`)).toBe(true);
  expect(mayPublish('rdm-bridge', `homie/${u}/env/t/set`)).toBe(false);
  expect(mayPublish('rdm-api', `homie/${u}/env/t/set`)).toBe(true);
  expect(mayPublish('rdm-api', `homie/${u}/env/t`)).toBe(false); // only a device says what its values are
  expect(maySubscribe('rdm-reload-probe', '#')).toBe(false);
});

it('renders the Mosquitto ACL: a section per platform client and one pattern for every device', () => {
  const acl = mosquittoAcl();
  expect(acl).toContain('user rdm-bridge\ntopic read homie/#\ntopic write homie/+/$rdm/config/set');
  expect(acl.trim().split('\n').pop()).toBe('pattern readwrite homie/%u/#');
});

it('reads the MQTT settings: MQTT_PORT 1884 by default, PUBLIC_MQTT_URL as an alias of MQTT_DEVICE_URL, http needing its secret, dynsec its admin password', () => {
  expect(loadConfig({}).MQTT_PORT).toBe(1884);
  expect(loadConfig({ PUBLIC_MQTT_URL: 'mqtt://devices.example:1883' }).MQTT_DEVICE_URL).toBe('mqtt://devices.example:1883');
  expect(() => loadConfig({ MQTT_URL: 'mqtt://b:1883', MQTT_AUTH: 'http' })).toThrow(/MQTT_HTTP_AUTH_SECRET/);
  expect(() => loadConfig({ MQTT_AUTH: 'kerberos' })).toThrow(/MQTT_AUTH/);
  expect(() => loadConfig({ MQTT_URL: 'mqtt://b:1883', MQTT_AUTH: 'dynsec' })).toThrow(/MQTT_DYNSEC_PASSWORD/);
});

it('gives the dynamic-security plugin the same rights: a device its subtree, the bridge its shared subscription', () => {
  const u = 'abcdefghjkmn';
  expect(dynsecAcls(u).map((a) => `${a.acltype} ${a.topic}`)).toEqual([`publishClientSend homie/${u}/#`, `publishClientReceive homie/${u}/#`, `subscribePattern homie/${u}/#`]);
  expect(dynsecAcls('rdm-bridge').map((a) => `${a.acltype} ${a.topic}`)).toContain('subscribePattern $share/+/homie/#');
  expect(dynsecAcls('rdm-api').some((a) => a.topic.startsWith('$share'))).toBe(false);
  expect(() => dynsecAcls('admin')).toThrow(/not a device or platform username/);
});
