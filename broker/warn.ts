// MQTT_AUTH=none: the contract asks start-up to say so loudly, in every process that connects.
import type { Logger } from '../runtime/logger';

export function warnUnauthenticatedBroker(log: Logger): void {
  log.warn(
    'MQTT_AUTH=none: the platform does not manage device logins on the broker at MQTT_URL. Any client that can reach that broker ' +
      'may publish into any device\'s topics unless the broker itself refuses strangers. Use the embedded broker (leave MQTT_URL unset) ' +
      'or keep this broker private.',
  );
}
