"""The WSGI app `make run` serves: the project's app plus Django's static files handler.

StaticFilesHandler answers STATIC_URL requests from the staticfiles finders (the admin's
CSS and JS) whatever DEBUG says, and passes everything else to pulselytics.wsgi. That is
what `runserver` does; it suits a single machine on loopback, not production, where
static files come from the web server or object storage (docs/deploy.md).
"""

from django.contrib.staticfiles.handlers import StaticFilesHandler

from pulselytics.wsgi import application as django_application

application = StaticFilesHandler(django_application)
