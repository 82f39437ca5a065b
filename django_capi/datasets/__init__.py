"""Datasets for platforms: admin-managed datasets, encrypted tokens, per-event routing.

- :mod:`.encryption`: access tokens at rest (Fernet, key rotation);
- :mod:`.routing`: the ``CAPI["ROUTER"]`` hook choosing the dataset(s) of an event.

The model is :class:`django_capi.models.Dataset`; :func:`django_capi.conf.get_dataset` is
the one place that resolves a dataset id to its configuration.
"""
