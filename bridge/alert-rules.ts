// Threshold rules, cached: indexed by node and property so a value costs two map lookups when no
// rule watches it. Refreshed every few seconds, and at once when a rule writer notifies
// (db/repositories/alerts.ts: ALERT_RULES_CHANNEL).
import type { AlertRule } from '../db/repositories/alerts';
import type { DeviceInfo } from '../db/repositories/device-state';
import type { Logger } from '../runtime/logger';

export class RuleSet {
  readonly size: number;
  private readonly index = new Map<string, Map<string, AlertRule[]>>();

  constructor(rules: AlertRule[]) {
    this.size = rules.length;
    for (const r of rules) {
      if (!r.enabled) continue;
      let byProperty = this.index.get(r.node);
      if (!byProperty) this.index.set(r.node, (byProperty = new Map()));
      const list = byProperty.get(r.property);
      if (list) list.push(r);
      else byProperty.set(r.property, [r]);
    }
  }

  /** Rules watching this node/property (any scope), or undefined. */
  for(node: string, property: string): AlertRule[] | undefined {
    return this.index.get(node)?.get(property);
  }
}

/** A rule applies to a device when every scope it names (device, model, company) matches. */
export function ruleApplies(rule: AlertRule, device: DeviceInfo): boolean {
  if (rule.deviceId !== null && rule.deviceId !== device.id) return false;
  if (rule.model !== null && rule.model !== device.model) return false;
  if (rule.companyId !== null && rule.companyId !== device.companyId) return false;
  return true;
}

export class RuleCache {
  current = new RuleSet([]);
  private timer: NodeJS.Timeout | null = null;
  private loading: Promise<void> | null = null;
  private again = false;

  constructor(
    private readonly load: () => Promise<AlertRule[]>,
    private readonly log: Logger,
    private readonly refreshMs = 5_000,
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  /** Reloads the rules; concurrent calls share one load, and a call during a load causes one more. */
  refresh(): Promise<void> {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = (async () => {
      do {
        this.again = false;
        try {
          this.current = new RuleSet(await this.load());
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, 'could not reload alert rules; keeping the previous ones');
        }
      } while (this.again);
    })().finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
