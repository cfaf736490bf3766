"""A faithful fake ProjectX Gateway (REST + user and market hubs) with seedable fault injection.

It may import :mod:`engine.protocol` (pure wire definitions) and nothing else of the engine.
"""
