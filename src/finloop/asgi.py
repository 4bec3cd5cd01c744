"""ASGI entry point for uvicorn and other servers: ``uvicorn finloop.asgi:app``."""

from finloop.app import create_app

app = create_app()
