/** Reading the SDK's metrics in-process, from the app's own meter provider. */
import { MetricReader } from '@opentelemetry/sdk-metrics';
import { gaugeTemporality } from '../../src/telemetry/otel.js';

/** A reader collected on demand, with the temporality Vigil's own exporter uses (gauges: as last observed). */
export class InProcessReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: (type) => gaugeTemporality(type) });
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}
