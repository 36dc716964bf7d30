"""Zato: an API-integration platform and backend application server."""

__version__ = '4.0.0.dev0'
