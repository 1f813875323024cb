// Every workflow the worker registers. This file is the root of the workflow bundle.
export { deviceLifecycle } from './device-lifecycle';
export { batchProvisioning } from './batch-provisioning';
export { bulkStatus } from './bulk-status';
export { pairing } from './pairing';
export { unpairDevice } from './unpair';
export { shareExpiry } from './share-expiry';
