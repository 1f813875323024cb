// The reference firmware's own version: reported as `$fw/version` (Homie 3, and Homie 4 through
// the legacy-firmware extension), the value OTA updates compare against.
export const FIRMWARE_VERSION = '1.0.0';
