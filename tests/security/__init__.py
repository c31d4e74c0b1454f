"""Security tests (issue 7, item 3): where each requirement is proven.

- No key -> 401 on every authenticated endpoint, health and ready open; a revoked or
  expired key -> 401; a client-bound key kept to its own client (403 for another client's
  id or model, 404 for another client's prediction); an admin session opens nothing in
  the API; the API has no registry write endpoint: test_api_access.py.
- Admin pages require staff (anonymous and non-staff users get the login page); approval
  and deploy permissions in the admin; CSRF on every state-changing admin POST:
  test_admin_access.py (and tests/mlregistry/test_admin_actions.py).
- Approve/reject/deploy/rollback commands without the permission -> permission_denied,
  nothing changed; the creator cannot approve (four eyes): test_command_permissions.py
  (and tests/mlregistry/test_commands.py, tests/mlregistry/test_services.py).
- No stack trace or feature value in any error body or log line: test_error_disclosure.py
  (4xx bodies: tests/predictions/test_bad_input_catalogue.py).
- `manage.py check --deploy` clean with production settings: tests/test_project.py;
  what those settings do to requests: test_production_settings.py.
- Artifacts only unpickled after their hash matches: tests/mlregistry/test_artifacts.py
  (bundle_load) and test_artifact_loading.py (the serving path).

Issue 13, item 6:
- Production refuses DEBUG on, a webhook secret under 32 bytes, no AUDIT_HMAC_KEY, in
  `manage.py check --deploy` and gunicorn: test_refused_settings.py.
- The documented webhook receiver refuses replays older than 5 minutes and tampered bodies:
  test_webhook_receiver.py.
- Admin login lockout: test_admin_lockout.py (and tests/browser/test_login_lockout.py);
  TOTP two-factor login: test_admin_two_factor.py; 8-hour sessions:
  test_admin_session_age.py.
"""
