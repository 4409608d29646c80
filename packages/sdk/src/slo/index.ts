export { sloList, SLO_WINDOWS, BURN_RATE_ALERTS, SLO_GROUP_BY, type Slo, type SloKind } from './model.js';
export { prometheusRules, renderPrometheusRules, promtoolTests, renderPromtoolTests, RECORD_RATIO, RECORD_RATIO_WINDOW, RECORD_OBJECTIVE, ALERT_PAGE, ALERT_TICKET } from './prometheus.js';
export { openSloDocument, renderOpenSlo } from './openslo.js';
