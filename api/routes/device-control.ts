// Control (stage 4) and remote diagnostic commands (stage 6): every sensor with its current value,
// a set confirmed by the device's echo, and commands answered by the device. Answers travel over
// MQTT straight to the API (api/device-requests.ts): no workflow waits on them.
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { route } from '../http/route';
import { commandBody, commandParams, commandSchema, deviceParams, errorResponse, listQuery, page, sensorParams, sensorsSchema, setSensorBody, setSensorResult } from '../schemas';
import { ConflictError, DeviceTimeoutError, NotFoundError, UnprocessableError, ValidationError } from '../../domain/errors';
import { parseCommandResult } from '../../domain/device-messages';
import { decodeValue, encodeValue, sameValue } from '../../domain/homie';
import { newEntityId } from '../../domain/ids';
import { homieId, RDM_EXTENSION, HOMIE_ROOT, HOMIE_ID_PATTERN, NODE_ID_PATTERN, topics } from '../../domain/topics';
import { controlTarget, type ControlTarget } from '../../db/repositories/control-targets';
import { listSensorPage } from '../../db/repositories/device-properties';
import { decodeCursor, encodeCursor } from '../../db/pagination';
import { checkDevice, deviceResource, requireDevice } from '../require-device';
import { decide } from '../http/policy';
import { assertSettable, visibilityOn } from '../property-visibility';
import { audit } from '../audit';
import { finishCommand, getCommand, insertCommand, listCommands } from '../../db/repositories/diagnostic-commands';

const DEFAULT_REPLY_TIMEOUT_MS = 5_000;

// A device may store up to the bridge's caps of sensors (BRIDGE_MAX_NODES_PER_DEVICE × _PER_NODE):
// one answer is bounded by `limit` (at most 1000) instead, whatever is stored.
const sensorPageSchema = sensorsSchema.extend({ nextCursor: z.string().nullable().describe('the next page (cursor=...), or null on the last one') });

/** The (node, property) a sensors cursor continues after; 400 for one this API did not write. */
function sensorCursor(cursor: string): { node: string; property: string } {
  const [node, property] = decodeCursor(cursor, ['string', 'string'] as const);
  if (!NODE_ID_PATTERN.test(node) || !HOMIE_ID_PATTERN.test(property)) {
    throw new ValidationError('cursor: not a cursor this API returned', [{ path: 'cursor', message: 'invalid cursor' }]);
  }
  return { node, property };
}

function assertReachable(id: string, t: ControlTarget | null): asserts t is ControlTarget {
  if (!t) throw new NotFoundError('device', id);
  if (t.blocked) throw new ConflictError('device_blocked', `device '${id}' is blocked`);
  if (!t.online) throw new ConflictError('device_offline', `device '${id}' is offline: it cannot confirm a change now (desired settings wait for it: PATCH /devices/${id}/config)`);
}

export function deviceControlRoutes(d: ApiDeps) {
  const replyTimeoutMs = d.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS;

  return [
    route({
      method: 'get',
      path: '/devices/:id/sensors',
      tag: 'control',
      summary: 'The sensors of a device as it described itself (Homie), with their current values: a page of at most `limit`, by node then property',
      permission: 'devices:telemetry',
      params: deviceParams,
      query: listQuery,
      responses: { 200: { description: 'a page of the sensors, by node then property; `nextCursor` fetches the next one', schema: sensorPageSchema }, 404: errorResponse('no such device') },
      handler: async ({ params, query, access }) => {
        const after = query.cursor === undefined ? undefined : sensorCursor(query.cursor);
        const presence = await requireDevice(d.db, access, params.id);
        const v = await visibilityOn(d.db, presence.relation, presence);
        const mayControl = decide(access.principal, 'devices:control', deviceResource(presence, presence.relation)) === 'allow';
        const page = await listSensorPage(d.db, params.id, { limit: query.limit, after });
        // A page may hold fewer than `limit` for a caller who does not see every property; the cursor still goes on.
        const items = page.items
          .filter((s) => v.sees(s.node, s.property))
          .map((s) => {
            const a = v.access(s.node, s.property);
            return { ...s, visibility: a.visibleTo, settableBy: s.settable ? a.settableBy : [], canSet: mayControl && s.settable && v.sets(s.node, s.property) };
          });
        return { deviceId: params.id, online: presence.online, items, nextCursor: page.next ? encodeCursor([page.next.node, page.next.property]) : null };
      },
    }),

    route({
      method: 'put',
      path: '/devices/:id/sensors/:node/:property',
      tag: 'control',
      summary: 'Set a settable sensor; answers once the device has confirmed the new value',
      permission: 'devices:control',
      params: sensorParams,
      body: setSensorBody,
      responses: {
        200: { description: 'the device applied the value and echoed it', schema: setSensorResult },
        403: errorResponse('the caller sees the property but their access to the device (owner, serviceman) does not let them set it'),
        404: errorResponse('no such device, or it has no such property (or none the caller may see)'),
        409: errorResponse('the device is offline (device_offline) or blocked'),
        422: errorResponse('the property is not settable (not_settable) or the value does not fit its datatype/format (invalid_value)'),
        504: errorResponse('the device did not confirm in time (device_timeout)'),
      },
      handler: async ({ params, body, access, principal }) => {
        const { id, node, property } = params;
        const target = await checkDevice(d.db, access, id, await controlTarget(d.db, id, node, property));
        const spec = target.property;
        if (!spec) throw new NotFoundError('property', `${node}/${property}`);
        assertSettable(await visibilityOn(d.db, target.relation, target), node, property);
        if (!spec.settable) throw new UnprocessableError('not_settable', `${node}/${property} is not settable`);
        const encoded = encodeValue(spec, body.value);
        if (!encoded.ok) throw new UnprocessableError('invalid_value', `${node}/${property} (${spec.datatype}${spec.format ? ` ${spec.format}` : ''}): ${encoded.reason}`, [{ path: 'value', message: encoded.reason }]);
        assertReachable(id, target);
        const started = performance.now();
        const payload = await d.devices.request({
          replyTopic: topics.property(id, node, property),
          publishTopic: topics.set(id, node, property),
          payload: encoded.payload,
          accept: (p) => {
            const text = p.toString();
            return sameValue(spec, text, encoded.payload) ? text : undefined;
          },
          timeoutMs: replyTimeoutMs,
          what: `set ${node}/${property}`,
        });
        // The value is left out: a setting may be a secret (a door code).
        await audit(d.db, principal, { action: 'device.sensor_set', companyId: target.companyId, deviceId: id, details: { node, property } });
        return { node, property, value: decodeValue(spec.datatype, payload), payload, confirmedAt: new Date().toISOString(), latencyMs: +(performance.now() - started).toFixed(3) };
      },
    }),

    route({
      method: 'post',
      path: '/devices/:id/commands',
      tag: 'diagnostics',
      summary: 'Run a diagnostic command on a device (ping, self-test, reboot, read-logs) and wait for its answer',
      permission: 'devices:control',
      params: deviceParams,
      body: commandBody,
      responses: {
        200: { description: "the device answered (status succeeded or failed, with the device's result or error)", schema: commandSchema },
        404: errorResponse('no such device'),
        409: errorResponse('the device is offline (device_offline) or blocked'),
        504: errorResponse('the device did not answer in time (device_timeout); the command stays recorded as timed_out'),
      },
      handler: async ({ params, body, principal, access }) => {
        const id = params.id;
        const target = await checkDevice(d.db, access, id, await controlTarget(d.db, id));
        assertReachable(id, target);
        const commandId = newEntityId();
        await insertCommand(d.db, { id: commandId, deviceId: id, command: body.command, args: body.args ?? null, createdBy: principal.userId });
        // Arguments are left out of the log: they may carry anything.
        await audit(d.db, principal, { action: 'device.command_sent', companyId: target.companyId, deviceId: id, target: { type: 'command', id: commandId }, details: { command: body.command } });
        const timeoutMs = body.timeoutMs ?? replyTimeoutMs;
        try {
          const answer = await d.devices.request({
            replyTopic: topics.commandResult(id, commandId),
            // One subscription per device covers all its command answers.
            replyFilter: `${HOMIE_ROOT}/${homieId(id)}/${RDM_EXTENSION}/cmd/+/result`,
            publishTopic: topics.command(id, commandId),
            payload: JSON.stringify({ command: body.command, ...(body.args ? { args: body.args } : {}) }),
            accept: (p) => parseCommandResult(p) ?? undefined,
            timeoutMs,
            what: `command ${body.command}`,
          });
          await finishCommand(d.db, commandId, { status: answer.ok ? 'succeeded' : 'failed', result: answer.result, error: answer.error ?? null });
        } catch (err) {
          if (err instanceof DeviceTimeoutError) await finishCommand(d.db, commandId, { status: 'timed_out', error: err.message });
          throw err;
        }
        return (await getCommand(d.db, id, commandId))!;
      },
    }),

    route({
      method: 'get',
      path: '/devices/:id/commands',
      tag: 'diagnostics',
      summary: 'The diagnostic commands sent to a device, newest first',
      permission: 'devices:telemetry',
      params: deviceParams,
      query: listQuery,
      responses: { 200: { description: 'a page of commands', schema: page(commandSchema) }, 404: errorResponse('no such device') },
      handler: async ({ params, query, access }) => {
        await requireDevice(d.db, access, params.id);
        return listCommands(d.db, params.id, query);
      },
    }),

    route({
      method: 'get',
      path: '/devices/:id/commands/:commandId',
      tag: 'diagnostics',
      summary: 'One diagnostic command and its outcome (an answer that came after the timeout is recorded too)',
      permission: 'devices:telemetry',
      params: commandParams,
      responses: { 200: { description: 'the command', schema: commandSchema }, 404: errorResponse('no such command') },
      handler: async ({ params, access }) => {
        await requireDevice(d.db, access, params.id);
        const c = await getCommand(d.db, params.id, params.commandId);
        if (!c) throw new NotFoundError('command', params.commandId);
        return c;
      },
    }),
  ];
}
