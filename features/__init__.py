"""Journey features: event contract, feature definitions, aggregation and the Feast repository."""
