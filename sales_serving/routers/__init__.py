"""The service's routes, one router per concern: health (and the model card), predict, protocols, metrics."""
