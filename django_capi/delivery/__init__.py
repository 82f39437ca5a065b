"""Delivery of stored events to the Graph API: the engine, its Celery tasks and scheduling."""
