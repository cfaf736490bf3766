"""Authentication: encrypted token storage (:mod:`engine.auth.storage`) and, from a colleague, the token manager
(the driver of the token machine). Import from the modules."""
