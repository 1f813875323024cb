// Custom search attributes: how an admin finds a device's or a rollout's workflow in the
// Temporal UI (e.g. `DeviceStatus="manufactured" AND BatchId="..."`). Registered at start-up
// by the embedded dev server's flags or, on a real cluster, by the worker through the operator API.
// Safe for workflows: deterministic imports only.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SEARCH_ATTRIBUTES = {
  DeviceStatus: 'KEYWORD',
  BatchId: 'KEYWORD',
  CompanyId: 'KEYWORD',
  DeviceModel: 'KEYWORD',
  FirmwareVersion: 'KEYWORD',
  RolloutId: 'KEYWORD',
} as const;

export type SearchAttributeName = keyof typeof SEARCH_ATTRIBUTES;

/** `--search-attribute Name=Keyword` flags for `temporal server start-dev`. */
export function devServerSearchAttributeFlags(): string[] {
  return Object.entries(SEARCH_ATTRIBUTES).flatMap(([name, type]) => [
    '--search-attribute',
    `${name}=${type === 'KEYWORD' ? 'Keyword' : type}`,
  ]);
}

// Typed keys for workflows and clients (`@temporalio/common` is deterministic: safe in workflows).

export const SA = {
  DeviceStatus: defineSearchAttributeKey('DeviceStatus', SearchAttributeType.KEYWORD),
  BatchId: defineSearchAttributeKey('BatchId', SearchAttributeType.KEYWORD),
  CompanyId: defineSearchAttributeKey('CompanyId', SearchAttributeType.KEYWORD),
  DeviceModel: defineSearchAttributeKey('DeviceModel', SearchAttributeType.KEYWORD),
  FirmwareVersion: defineSearchAttributeKey('FirmwareVersion', SearchAttributeType.KEYWORD),
  RolloutId: defineSearchAttributeKey('RolloutId', SearchAttributeType.KEYWORD),
} as const;
