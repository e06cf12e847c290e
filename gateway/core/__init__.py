"""The pure core: the gateway's decisions over plain data.

Nothing in this package does I/O or imports a broker, database or HTTP library;
``tests/gateway/test_layers.py`` imports every module here in a fresh interpreter to hold
that. The I/O shell (workers, archive store, AMQP, HTTP, CLI, console) calls into it."""
