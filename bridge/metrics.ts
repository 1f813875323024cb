// The bridge's metrics, registered once on a registry (the process's, or a test's own).
import { Registry, type CounterChild, type HistogramChild } from '../runtime/metrics';

export const MESSAGE_KINDS = [
  'value', 'device_attribute', 'node_attribute', 'property_attribute', 'config_reported', 'log', 'command_result', 'pairing_response', 'ota_report', 'ignored',
] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];

export const DROP_REASONS = [
  'unknown_topic', 'device_id_case', 'unknown_device', 'invalid_payload', 'too_large', 'too_many_nodes', 'too_many_properties', 'too_many_attributes', 'unannounced', 'write_failed',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export const ROW_TABLES = ['telemetry', 'device_properties', 'devices', 'device_logs', 'device_config', 'device_commands', 'alerts'] as const;
export type RowTable = (typeof ROW_TABLES)[number];

export function createBridgeMetrics(registry: Registry = new Registry()) {
  const messages = registry.counter('rdm_bridge_messages_total', 'MQTT messages accepted by the bridge, by kind', ['kind']);
  const dropped = registry.counter('rdm_bridge_messages_dropped_total', 'MQTT messages dropped (malformed, unknown device, unwritable), by reason', ['reason']);
  const rows = registry.counter('rdm_bridge_rows_written_total', 'Rows inserted or updated in Postgres, by table', ['table']);
  const alerts = registry.counter('rdm_alerts_raised_total', 'Alerts opened, by source (device $state = alert, or a threshold rule)', ['source']);
  const m = {
    registry,
    messages: Object.fromEntries(MESSAGE_KINDS.map((k) => [k, messages.labels({ kind: k })])) as Record<MessageKind, CounterChild>,
    dropped: Object.fromEntries(DROP_REASONS.map((r) => [r, dropped.labels({ reason: r })])) as Record<DropReason, CounterChild>,
    rows: Object.fromEntries(ROW_TABLES.map((t) => [t, rows.labels({ table: t })])) as Record<RowTable, CounterChild>,
    alertsRaised: { device: alerts.labels({ source: 'device' }), rule: alerts.labels({ source: 'rule' }) },
    batchSeconds: registry
      .histogram('rdm_bridge_batch_seconds', 'Time to write one batch (one transaction) to Postgres', [], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])
      .labels() as HistogramChild,
    batchSize: registry.histogram('rdm_bridge_batch_messages', 'Messages per written batch', [], [1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000, 50000]).labels() as HistogramChild,
    batches: registry.counter('rdm_bridge_batches_total', 'Batch write attempts, by result', ['result']),
    buffered: registry.gauge('rdm_bridge_buffered', 'Messages received and not yet committed (the backpressure bound is BRIDGE_MAX_BUFFERED)'),
    paused: registry.gauge('rdm_bridge_paused', '1 while the bridge has stopped reading from the broker (backpressure)'),
    inFlight: registry.gauge('rdm_bridge_batches_in_flight', 'Batches being written').labels(),
    connected: registry.gauge('rdm_bridge_mqtt_connected', '1 while connected to the broker'),
    devicesOnline: registry.gauge('rdm_devices_online', 'Devices whose last $state is init, ready or alert (counted periodically)'),
    configRepublished: registry.counter('rdm_bridge_config_republished_total', 'Desired configurations re-sent to devices that came online behind').labels(),
    redeliveredSkipped: registry.counter('rdm_bridge_redelivered_skipped_total', 'Messages the broker sent again (DUP) that were already committed: acknowledged, not stored again').labels(),
    logsPruned: registry.counter('rdm_bridge_logs_pruned_total', 'Device log rows deleted by retention').labels(),
    signals: registry.counter('rdm_bridge_workflow_signals_total', 'Workflow signals sent for device events, by result', ['result']),
  };
  return m;
}

export type BridgeMetrics = ReturnType<typeof createBridgeMetrics>;
