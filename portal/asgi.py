import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
# The web process (uvicorn, gunicorn's uvicorn workers) shares a pool of connections
# among the requests in flight instead of one per request (see DATABASE_POOL_MAX_SIZE in
# portal/settings.py). Only the web imports this module: workers never get a pool.
os.environ.setdefault("DATABASE_POOL_MAX_SIZE", "10")
application = get_asgi_application()
