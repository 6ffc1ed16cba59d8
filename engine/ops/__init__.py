"""Operations: telemetry, maintenance, alerts, the GPU seam, health and Prometheus metrics."""
