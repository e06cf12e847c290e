"""The gateway's workers: AMQP in, decisions from the pure core, archive and AMQP out."""
