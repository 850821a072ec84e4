"""Applications: recipes that put the layers together for one task (the Weibo talk's systems).

Only what a single application needs lives here; every reusable piece (featurisers, loaders,
towers, losses, methods, metrics) lives in its layer. ``from cl_teach.apps import hashtags``
(and ``open_world``, ``hashtag_tower``: CD-TOM judged on the open world).
"""
