// The retained attribute messages that describe a device to Homie controllers, in the order the
// convention asks for: `$homie` first, then device, node and property attributes. `$state` and
// the values are published by the device around them (init … ready).
import { topics, RDM_EXTENSION_ID } from '../domain/topics';
import type { DeviceModel } from './models/types';

export type HomieMode = '4.0' | '3.0';
export const HOMIE_PAYLOAD: Record<HomieMode, string> = { '4.0': '4.0.0', '3.0': '3.0.1' };
/** Homie 4 dropped $fw, $localip and $mac from the core; this official extension keeps them. */
export const LEGACY_FIRMWARE_EXTENSION_ID = 'org.homie.legacy-firmware:0.1.1:[4.x]';
export const IMPLEMENTATION = 'rdm-reference-firmware';

export interface DescriptionInput {
  deviceId: string;
  model: DeviceModel;
  homie: HomieMode;
  name: string;
  firmwareName: string;
  firmwareVersion: string;
  localIp: string;
  mac: string;
  /** Homie 3: `$stats/interval` (s). */
  statsIntervalS: number;
  /** 'values-only' leaves out nodes and properties (fleet bench mode); not a valid Homie device. */
  detail: 'full' | 'values-only';
}

export type Message = readonly [topic: string, payload: string];

export function describeDevice(d: DescriptionInput): Message[] {
  const id = d.deviceId;
  const attr = (name: string, value: string): Message => [topics.deviceAttribute(id, name), value];
  const out: Message[] = [attr('homie', HOMIE_PAYLOAD[d.homie]), attr('name', d.name)];
  if (d.detail === 'values-only') return out;
  out.push(attr('nodes', d.model.nodes.map((n) => n.id).join(',')), attr('implementation', IMPLEMENTATION));
  if (d.homie === '4.0') out.push(attr('extensions', `${LEGACY_FIRMWARE_EXTENSION_ID},${RDM_EXTENSION_ID}`));
  // Homie 3.0.1 requires these; for 4.0 they come with the legacy-firmware extension above.
  out.push(attr('localip', d.localIp), attr('mac', d.mac), attr('fw/name', d.firmwareName), attr('fw/version', d.firmwareVersion));
  if (d.homie === '3.0') out.push(attr('stats/interval', String(d.statsIntervalS)));
  for (const node of d.model.nodes) {
    out.push(
      [topics.nodeAttribute(id, node.id, 'name'), node.name],
      [topics.nodeAttribute(id, node.id, 'type'), node.type],
      [topics.nodeAttribute(id, node.id, 'properties'), node.properties.map((p) => p.id).join(',')],
    );
    for (const p of node.properties) {
      const pa = (name: string, value: string): Message => [topics.propertyAttribute(id, node.id, p.id, name), value];
      out.push(pa('name', p.name), pa('datatype', p.datatype));
      if (p.unit) out.push(pa('unit', p.unit));
      if (p.format) out.push(pa('format', p.format));
      out.push(pa('settable', String(p.settable ?? false)), pa('retained', String(p.retained ?? true)));
    }
  }
  return out;
}

/** A stable, locally administered MAC derived from the device ID (simulated hardware has none). */
export function simulatedMac(seed: number): string {
  const bytes = [0x02, 0x52, (seed >>> 24) & 0xff, (seed >>> 16) & 0xff, (seed >>> 8) & 0xff, seed & 0xff];
  return bytes.map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
}
