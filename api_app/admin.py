from api_app import admin_jwt  # noqa: F401
