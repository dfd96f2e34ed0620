"""What every parkvpp service shares: settings, time, message contracts, Kafka, Redis and
database access, the embedded local services, park scenarios and the simulated outside world."""
