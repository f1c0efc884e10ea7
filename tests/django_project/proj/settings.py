"""Settings of the test project: its SQLite database is the file SHOP_DB names, its
Redis the one STREAMFLOW_REDIS_URL names (both set by the test)."""

import os

SECRET_KEY = "only-for-tests"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = ["streamflow.contrib.django", "shop"]
ROOT_URLCONF = "proj.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["SHOP_DB"]}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
STREAMFLOW = {"URL": os.environ["STREAMFLOW_REDIS_URL"], "PREFIX": "shop"}
