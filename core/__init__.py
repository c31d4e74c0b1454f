"""The bottom layer every app builds on; it imports no app and owns no table.

- errors.py, api.py, commands.py, admin_mixins.py, logging.py, middleware.py,
  prometheus.py: typed errors and how the API, the commands and the admin show them,
  request ids and JSON logs, Prometheus metrics.
- ml/: the ML contracts every app shares, pure (no database access).
"""
