"""The HTTP API: the aiohttp server and the OpenAPI document generated from its routes."""
