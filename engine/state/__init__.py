"""The account state mirror and the reconciler (see :mod:`engine.state.mirror` and :mod:`engine.state.reconciler`)."""
