/** `coherent-cache/prometheus`: a prom-client collector (optional peer dependency prom-client). */
export { type PrometheusCollectorOptions, prometheusCollector } from './metrics/prometheus.js'
