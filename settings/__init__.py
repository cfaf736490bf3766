"""Typed configuration: the seed's camelCase YAML, environment variables and CLI flags."""
