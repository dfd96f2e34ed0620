"""The front door: the ``parkvpp`` command line and the FastAPI gateway for traders,
enterprises and operators. It drives services through their public entry points and Kafka;
it holds no business logic of its own."""
