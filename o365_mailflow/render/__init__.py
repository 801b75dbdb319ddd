"""Renderers of a :class:`o365_mailflow.plan.Plan`: ``text`` for terminals, ``json`` for machines,
``markdown`` for pull-request comments. Each is a pure function of the plan."""
