"""Command-line tools beside the service: throughput benchmark, evaluation, the submit client."""
