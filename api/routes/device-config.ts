// Configuration (stage 3): desired settings kept by the platform and pushed to the device;
// reported settings kept as the device says it applied them; pending = the difference.
//
// Not part of the device lifecycle workflow, by design: delivering settings is reconciliation
// of two versioned documents, not a multi-step process with decisions. The desired document is
// in Postgres; it is published retained (QoS 1), so the broker hands it to the device whenever
// it next connects, and the bridge re-publishes it when a device comes back (or reports) behind,
// in case the broker lost its copy. Nothing waits, so nothing needs Temporal's durability; and
// routing every change through a workflow would grow each device's history with every PATCH.
import type { ApiDeps } from '../deps';
import { route } from '../http/route';
import { configPatchBody, configSchema, deviceParams, errorResponse } from '../schemas';
import type { DesiredConfigMessage, Settings } from '../../domain/device-messages';
import { pendingSettings } from '../../domain/settings';
import { topics } from '../../domain/topics';
import { getConfig, patchDesiredConfig, type DeviceConfig } from '../../db/repositories/device-config';
import { requireDevice } from '../require-device';
import { assertSettable, visibilityOn, type Visibility } from '../property-visibility';
import { SETTINGS_NODE } from '../../domain/sharing';
import { audit } from '../audit';

/** The settings the caller may see (company staff: all; the device's end users: as declared). */
const visible = (v: Visibility, settings: Settings): Settings => Object.fromEntries(Object.entries(settings).filter(([k]) => v.sees(SETTINGS_NODE, k)));

function view(c: DeviceConfig, v: Visibility) {
  const desired = visible(v, c.desired);
  const reported = visible(v, c.reported);
  const pending = pendingSettings(desired, reported);
  return {
    deviceId: c.deviceId,
    desired,
    desiredVersion: c.desiredVersion,
    desiredAt: c.desiredAt,
    reported,
    reportedVersion: c.reportedVersion,
    reportedAt: c.reportedAt,
    sentAt: c.sentAt,
    pending,
    inSync: !c.pending && Object.keys(pending).length === 0,
  };
}

export function deviceConfigRoutes(d: ApiDeps) {
  return [
    route({
      method: 'get',
      path: '/devices/:id/config',
      tag: 'configuration',
      summary: "A device's settings: desired (by the platform), reported (applied by the device) and pending",
      permission: 'devices:telemetry',
      params: deviceParams,
      responses: { 200: { description: 'the configuration', schema: configSchema }, 404: errorResponse('no such device') },
      handler: async ({ params, access }) => {
        const device = await requireDevice(d.db, access, params.id);
        return view(await getConfig(d.db, params.id), await visibilityOn(d.db, device.relation, device));
      },
    }),

    route({
      method: 'patch',
      path: '/devices/:id/config',
      tag: 'configuration',
      summary: 'Change desired settings (JSON merge patch); an offline device gets them when it comes back',
      permission: 'devices:configure',
      params: deviceParams,
      body: configPatchBody,
      responses: {
        200: { description: 'stored and sent; `pending` lists what the device has not applied yet', schema: configSchema },
        400: errorResponse('not a JSON object of settings'),
        403: errorResponse("a setting the caller sees but whose change their access to the device does not allow (nothing is changed)"),
        404: errorResponse('no such device, or a setting the caller may not see (nothing is changed)'),
      },
      handler: async ({ params, body, principal, access }) => {
        const device = await requireDevice(d.db, access, params.id);
        const { companyId } = device;
        const v = await visibilityOn(d.db, device.relation, device);
        for (const key of Object.keys(body)) assertSettable(v, SETTINGS_NODE, key);
        // Stored first, then published: a failed publish leaves the change pending, and the
        // bridge re-sends it when the device is next seen.
        const c = await patchDesiredConfig(d.db, params.id, body, principal.userId);
        // Which settings changed, never their values: settings carry Wi-Fi passwords and the like.
        await audit(d.db, principal, { action: 'device.config_changed', companyId, deviceId: params.id, details: { settings: Object.keys(body), version: c.desiredVersion } });
        const message: DesiredConfigMessage = { version: c.desiredVersion, settings: c.desired };
        await d.devices.publish(topics.configDesired(params.id), JSON.stringify(message), { retain: true }).catch((err: Error) => {
          d.log.warn({ err, deviceId: params.id }, 'desired configuration stored but not published; it is re-sent when the device is next seen');
        });
        return view(await getConfig(d.db, params.id), v);
      },
    }),
  ];
}
