"""Throughput, latency and memory of the gateway against the references a RabbitMQ user has.

``python -m bench.run`` (see bench/README.md) runs every scenario in one go on the local broker.
"""
