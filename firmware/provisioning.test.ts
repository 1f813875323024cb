import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { csvLine } from '../files/csv';
import { DEVICE_CSV_COLUMNS, deviceCsvValues, type DeviceExportRow } from '../files/device-export';
import { syntheticRow } from '../files/synthetic-rows';
import { parseCsv, unguardFormula, csvObjects } from './csv-read';
import { DEFAULT_MQTT_URL, loadProvisioning, loadProvisioningList, parseProvisioningJson, pickDevice, provisioningRows } from './provisioning';

/** devices.csv exactly as the platform writes it (files/csv.ts), with the given mqtt_url per row (or none). */
function exportCsv(rows: DeviceExportRow[], mqttUrls?: (string | null)[]): string {
  return csvLine(DEVICE_CSV_COLUMNS) + rows.map((r, i) => csvLine(deviceCsvValues(mqttUrls ? { ...r, mqttUrl: mqttUrls[i]! } : r))).join('');
}

const tricky: Partial<DeviceExportRow>[] = [
  { info: '=HYPERLINK("http://evil","x")' },
  { info: '-5 °C rated, "outdoor"' },
  { info: 'line one\r\nline two, with comma' },
  { info: "'quoted by the user" },
  { info: '@admin', color: '+red' },
  { info: null, model: 'ev-charger' },
];

describe('parseCsv (RFC 4180)', () => {
  it('reads quoted fields, doubled quotes, commas and line breaks inside quotes, CRLF and LF', () => {
    const text = '\ufeffa,b,c\r\n1,"two, ""2""","three\r\nlines"\n,,\r\n"",x,\r\n';
    expect(parseCsv(text)).toEqual([
      ['a', 'b', 'c'],
      ['1', 'two, "2"', 'three\r\nlines'],
      ['', '', ''],
      ['', 'x', ''],
    ]);
  });

  it('accepts a last record without a line break and refuses an unclosed quote', () => {
    expect(parseCsv('a,b\r\n1,2')).toEqual([
      ['a', 'b'],
      ['1', '2'],
    ]);
    expect(() => parseCsv('a\r\n"open')).toThrow(/not closed/);
  });

  it('removes the formula guard only before a formula character', () => {
    expect(unguardFormula("'=1+1")).toBe('=1+1');
    expect(unguardFormula("'-5")).toBe('-5');
    expect(unguardFormula("'+x")).toBe('+x');
    expect(unguardFormula("'@x")).toBe('@x');
    expect(unguardFormula("'hello")).toBe("'hello");
    expect(unguardFormula("it's")).toBe("it's");
    expect(unguardFormula("''=x")).toBe("'=x"); // the user's own apostrophe, kept: files/csv.ts wrote "'" + "'=x"
  });

  it('refuses records whose field count differs from the header', () => {
    expect(() => csvObjects('a,b\r\n1\r\n')).toThrow(/record 1 has 1 fields/);
  });
});

describe('devices.csv as the platform exports it', () => {
  const rows = tricky.map((over, i) => ({ ...syntheticRow(i), ...over }));

  it('round-trips every field of files/csv.ts output, formula guards removed', () => {
    const { columns, rows: parsed } = csvObjects(exportCsv(rows));
    expect(columns).toEqual([...DEVICE_CSV_COLUMNS]);
    expect(parsed).toHaveLength(rows.length);
    parsed.forEach((p, i) => {
      const expected = deviceCsvValues(rows[i]!);
      DEVICE_CSV_COLUMNS.forEach((c, j) => expect(p[c]).toBe(expected[j] ?? ''));
    });
    expect(parsed[0]!.info).toBe('=HYPERLINK("http://evil","x")');
    expect(parsed[4]!.color).toBe('+red');
  });

  it('picks a device by ID (any case) or by 1-based row, with the fallback broker URL', () => {
    const all = provisioningRows(exportCsv(rows), { broker: 'mqtt://broker.example:1884' });
    const third = pickDevice(all, { device: rows[2]!.deviceId.toLowerCase() });
    expect(third).toEqual({
      deviceId: rows[2]!.deviceId,
      mqttUsername: rows[2]!.deviceId.toLowerCase(),
      secret: rows[2]!.secret,
      mqttUrl: 'mqtt://broker.example:1884',
      pairingCode: rows[2]!.pairingCode,
      model: 'TH-200',
    });
    expect(pickDevice(all, { row: 6 }).model).toBe('ev-charger');
    expect(() => pickDevice(all, { row: 7 })).toThrow(/between 1 and 6/);
    expect(() => pickDevice(all, { device: '0000000000ZZ' })).toThrow(/no device/);
    expect(() => pickDevice(all, {})).toThrow(/several devices/);
  });

  it('takes the broker from the mqtt_url column when the export has it, else --broker, MQTT_URL, default', () => {
    const urls = rows.map((_, i) => (i === 1 ? '' : `mqtts://mqtt${i}.example:8883`));
    const all = provisioningRows(exportCsv(rows, urls), { broker: 'mqtt://flag:1' });
    expect(all[0]!.mqttUrl).toBe('mqtts://mqtt0.example:8883');
    expect(all[1]!.mqttUrl).toBe('mqtt://flag:1'); // empty cell: the fallback
    const noCol = provisioningRows(exportCsv(rows), { env: { MQTT_URL: 'mqtt://env:2' } });
    expect(noCol[0]!.mqttUrl).toBe('mqtt://env:2');
    expect(provisioningRows(exportCsv(rows), { env: {} })[0]!.mqttUrl).toBe(DEFAULT_MQTT_URL);
  });

  it('refuses a file without the needed columns or with a bad device ID', () => {
    expect(() => provisioningRows('device_id,pairing_code\r\nABCDEFGHJKMN,x\r\n')).toThrow(/no "secret" column/);
    expect(() => provisioningRows('device_id,secret\r\nnot-an-id,x\r\n')).toThrow(/not a device ID/);
    expect(() => provisioningRows('device_id,secret\r\nABCDEFGHJKMN,\r\n')).toThrow(/no secret/);
  });

  it('reads files: a devices.csv and a JSON provisioning file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-prov-'));
    try {
      const csv = path.join(dir, 'devices.csv');
      fs.writeFileSync(csv, exportCsv(rows));
      expect(loadProvisioning(csv, { row: 2 }).deviceId).toBe(rows[1]!.deviceId);
      expect(loadProvisioningList(csv)).toHaveLength(rows.length);
      const json = path.join(dir, 'device.json');
      fs.writeFileSync(json, JSON.stringify({ deviceId: rows[0]!.deviceId, secret: 's3cret', mqttUrl: 'mqtt://j:3', pairingCode: 'ABCD', model: 'lock' }));
      expect(loadProvisioning(json, {})).toEqual({ deviceId: rows[0]!.deviceId, mqttUsername: rows[0]!.deviceId.toLowerCase(), secret: 's3cret', mqttUrl: 'mqtt://j:3', pairingCode: 'ABCD', model: 'lock' });
      expect(() => loadProvisioning(json, { device: rows[1]!.deviceId })).toThrow(/is for/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('validates a JSON provisioning file', () => {
    expect(() => parseProvisioningJson('{')).toThrow(/not JSON/);
    expect(() => parseProvisioningJson(JSON.stringify({ deviceId: 'x', secret: 's' }))).toThrow(/deviceId/);
    expect(() => parseProvisioningJson(JSON.stringify({ deviceId: 'ABCDEFGHJKMN', secret: '' }))).toThrow(/secret/);
    expect(() => parseProvisioningJson(JSON.stringify({ deviceId: 'ABCDEFGHJKMN', secret: 's', mqttUrl: 'http://x' }))).toThrow(/not an MQTT URL/);
    expect(parseProvisioningJson(JSON.stringify({ deviceId: 'ABCDEFGHJKMN', secret: 's' }), { env: {} })).toEqual({
      deviceId: 'ABCDEFGHJKMN',
      mqttUsername: 'abcdefghjkmn',
      secret: 's',
      mqttUrl: DEFAULT_MQTT_URL,
      pairingCode: null,
      model: null,
    });
  });
});
